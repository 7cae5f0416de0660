"""One training run, from a `RunConfig` to a finished model_dir.

`prepare_run` checks everything that can be checked before work (the data
folder, the class count, the model_dir) and writes nothing; `train` then
writes the model_dir:

    run_config.json   the resolved RunConfig (read back by eval_main)
    train.flags       a flagfile that reproduces the run
    backup/           BackupAndRestore state: a rerun of the same command resumes
    checkpoints/      epoch_NNN.weights.h5 after every epoch (trainer + optimizer)
    logs/             TensorBoard
    history.csv       per-epoch metrics (appended across resumes)
    model.keras       the final network (logits + conv-group outputs)
    saved_model/      the serving SavedModel (logits, probabilities)
    train_results.json  final metrics of the run
"""

import csv
import dataclasses
import json
import os
import time

import keras
import tensorflow as tf
from absl import logging

from tf_atalp import data as data_lib
from tf_atalp.config import RunConfig, save_run_config
from tf_atalp.io_utils import atomic_write_json, atomic_write_text
from tf_atalp.model_dir import (
    FLAGFILE, HISTORY_FILE, MODEL_FILE, RESULTS_FILE, RUN_CONFIG_FILE, SAVED_MODEL_DIR)
from tf_atalp.models import build_applications_resnet, build_resnet
from tf_atalp.training.schedules import WarmupSchedule
from tf_atalp.training.strategy import make_strategy
from tf_atalp.training.trainer import AdversarialTrainer



@dataclasses.dataclass(frozen=True)
class PreparedRun:
    """A checked run: the config with the dataset's class count filled in."""

    config: RunConfig
    info: data_lib.DatasetInfo
    steps_per_epoch: int


def prepare_run(config: RunConfig) -> PreparedRun:
    """Validates data, model and model_dir; raises ValueError before any write."""
    data_lib.validate_data_config(config.data)
    info = data_lib.get_dataset_info(config.data)
    if config.model.weights_path and not os.path.isfile(config.model.weights_path):
        raise ValueError(f"`weights_path` does not exist: {config.model.weights_path!r}")
    config = dataclasses.replace(
        config, model=dataclasses.replace(config.model, num_classes=info.num_classes))
    full_steps = info.num_train // config.data.batch_size
    if full_steps == 0:
        raise ValueError(
            f"`batch_size` ({config.data.batch_size}) is larger than the training set "
            f"({info.num_train} examples of {info.name}).")
    steps = min(config.train.steps_per_epoch or full_steps, full_steps)
    _check_model_dir(config)
    return PreparedRun(config, info, steps)


def _check_model_dir(config: RunConfig) -> None:
    """A model_dir may be new, or hold a run with the same config (to resume)."""
    path = os.path.join(config.train.model_dir, RUN_CONFIG_FILE)
    if not os.path.exists(path):
        return
    with open(path) as f:
        previous = json.load(f)
    current = json.loads(config.to_json())
    differing = sorted(f"{section}.{key}" for section in current
                       for key in set(current[section]) | set(previous.get(section, {}))
                       if current[section].get(key) != previous.get(section, {}).get(key))
    if differing:
        raise ValueError(
            f"model_dir {config.train.model_dir!r} holds a run with other settings "
            f"({', '.join(differing)}). Use a new --model_dir, or the same flags to resume.")


def build_network(config: RunConfig) -> keras.Model:
    """The network of the run (its defense's model options applied)."""
    model = config.model
    options = dict(config.defense.build().model_options)
    if model.architecture == "applications":
        if options:
            raise ValueError(
                f"Defense {config.defense.name!r} needs model options {sorted(options)}, "
                "which only architecture='resnet' provides.")
        return build_applications_resnet(model.depth, model.num_classes, model.image_size,
                                         weights_path=model.weights_path)
    return build_resnet(model.depth, model.num_classes, model.image_size, model.width,
                        stem=model.stem, **options)


def make_optimizer(config: RunConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimizer with its warm-up + decay schedule (decoupled weight decay)."""
    train = config.train
    schedule = WarmupSchedule(
        peak=train.learning_rate, total_steps=train.epochs * steps_per_epoch,
        warmup_steps=int(train.warmup_epochs * steps_per_epoch), kind=train.lr_schedule)
    decay = train.weight_decay or None
    if train.optimizer == "sgd":
        return keras.optimizers.SGD(schedule, momentum=train.momentum, nesterov=True,
                                    weight_decay=decay)
    if train.optimizer == "adam":
        return keras.optimizers.Adam(schedule, weight_decay=decay)
    return keras.optimizers.AdamW(schedule, weight_decay=train.weight_decay)


def _datasets(config: RunConfig, strategy: tf.distribute.Strategy):
    """(train, validation) datasets, distributed when the strategy has replicas."""
    if strategy.num_replicas_in_sync == 1:
        return (data_lib.make_dataset(config.data, "train", training=True),
                data_lib.make_dataset(config.data, "test", training=False))
    return tuple(strategy.distribute_datasets_from_function(
        data_lib.make_input_fn(config.data, split, training))
        for split, training in (("train", True), ("test", False)))


def _callbacks(model_dir: str) -> list[keras.callbacks.Callback]:
    return [
        keras.callbacks.BackupAndRestore(os.path.join(model_dir, "backup"),
                                         save_freq="epoch", delete_checkpoint=False),
        keras.callbacks.ModelCheckpoint(
            os.path.join(model_dir, "checkpoints", "epoch_{epoch:03d}.weights.h5"),
            save_weights_only=True),
        keras.callbacks.TensorBoard(os.path.join(model_dir, "logs")),
        keras.callbacks.CSVLogger(os.path.join(model_dir, HISTORY_FILE), append=True),
    ]


def last_epoch_metrics(history_path: str) -> dict:
    """The metrics of the last finished epoch in history.csv (spans resumes)."""
    if not os.path.exists(history_path):
        return {}
    with open(history_path) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    return {key: float(value) for key, value in rows[-1].items() if key != "epoch" and value}


def save_keras_model_atomically(network: keras.Model, path: str) -> None:
    """Saves to a temporary .keras file in the same folder, then renames."""
    temporary = os.path.join(os.path.dirname(path), ".tmp-" + os.path.basename(path))
    network.save(temporary)
    os.replace(temporary, path)


def train(prepared: PreparedRun, flagfile_text: str | None = None, verbose="auto") -> dict:
    """Runs (or resumes) the training and writes the model_dir; returns final metrics."""
    config = prepared.config
    model_dir = config.train.model_dir
    os.makedirs(os.path.join(model_dir, "checkpoints"), exist_ok=True)
    save_run_config(config, model_dir)
    if flagfile_text is not None:
        atomic_write_text(os.path.join(model_dir, FLAGFILE), flagfile_text)

    keras.mixed_precision.set_global_policy(config.train.mixed_precision)
    keras.utils.set_random_seed(config.train.seed)
    strategy = make_strategy(config.train.strategy, config.train.tpu)
    if config.data.batch_size % strategy.num_replicas_in_sync:
        raise ValueError(
            f"`batch_size` ({config.data.batch_size}) must divide evenly over "
            f"{strategy.num_replicas_in_sync} replicas.")
    train_data, validation_data = _datasets(config, strategy)

    with strategy.scope():
        network = build_network(config)
        trainer = AdversarialTrainer(
            network, config.defense.build(), attack=config.attack,
            eval_attack=config.eval_attack, attack_jit_compile=config.train.attack_jit_compile)
        trainer.compile(optimizer=make_optimizer(config, prepared.steps_per_epoch),
                        jit_compile=config.train.jit_compile,
                        steps_per_execution=config.train.steps_per_execution)
        size = config.model.image_size
        trainer(tf.zeros([1, size, size, 3]))  # builds it, as BackupAndRestore needs

    started = time.time()
    history = trainer.fit(
        train_data, validation_data=validation_data, epochs=config.train.epochs,
        steps_per_epoch=prepared.steps_per_epoch if config.train.steps_per_epoch else None,
        callbacks=_callbacks(model_dir), verbose=verbose, shuffle=False)  # the dataset shuffles
    seconds = time.time() - started

    save_keras_model_atomically(network, os.path.join(model_dir, MODEL_FILE))
    if config.train.export_saved_model:
        from tf_atalp.export import export_saved_model  # TensorFlow-only, imported late.
        export_saved_model(network, os.path.join(model_dir, SAVED_MODEL_DIR))
    final = last_epoch_metrics(os.path.join(model_dir, HISTORY_FILE))
    results = {
        "dataset": prepared.info.name, "num_train": prepared.info.num_train,
        "num_test": prepared.info.num_test, "num_classes": prepared.info.num_classes,
        "epochs": config.train.epochs, "epochs_run_by_this_process": len(history.epoch),
        "steps_per_epoch": prepared.steps_per_epoch, "seconds_this_process": round(seconds, 1),
        "final_metrics": final,
    }
    atomic_write_json(os.path.join(model_dir, RESULTS_FILE), results)
    logging.info("Training finished: %s", results)
    keras.mixed_precision.set_global_policy("float32")
    return results
