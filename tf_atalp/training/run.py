"""One training run, from a `RunConfig` to a finished model_dir.

`prepare_run` checks everything that can be checked before work (the data
folder, every image file, the class count, the model_dir) and writes
nothing; `train` then writes the model_dir (names in `tf_atalp.model_dir`):

    run_config.json   the resolved RunConfig (read back by eval_main)
    train.flags       a flagfile that reproduces the run
    class_names.json  the class names in label order
    backup/           BackupAndRestore state: a rerun of the same command resumes
    checkpoints/      epoch_NNN.weights.h5 after every epoch (NNN from 1)
    logs/             TensorBoard
    history.csv       per-epoch metrics, epochs from 1, appended across resumes
    model.keras       the final network (logits + conv-group outputs)
    saved_model/      the serving SavedModel (logits, probabilities; class names)
    training_curves.png  history.csv drawn
    train_results.json  final metrics, total training time, the precision used

Reproducible resume: the data order and augmentation of epoch e depend on
(seed, e) alone and the training attack's random start on (seed, step), so
a run killed and resumed ends with the weights an uninterrupted run has.
"""

import csv
import dataclasses
import hashlib
import io
import json
import os
import shutil
import tempfile
import time

import keras
import tensorflow as tf
from absl import logging

from tf_atalp import data as data_lib
from tf_atalp.data.pipeline import EpochCounter
from tf_atalp.export import export_saved_model
from tf_atalp.io_utils import atomic_write_json, atomic_write_text
from tf_atalp.model_dir import (
    ATTENTION_LOGS_DIR, BACKUP_DIR, CHECKPOINT_PATTERN, CHECKPOINTS_DIR, CLASS_NAMES_FILE, FLAGFILE, HISTORY_FILE,
    LOGS_DIR, MODEL_FILE, RUN_CONFIG_FILE, SAVED_MODEL_DIR, TRAIN_RESULTS_FILE,
    TRAINING_CURVES_FILE, finished_epochs, read_history)
from tf_atalp.models import build_applications_resnet, build_resnet
from tf_atalp.plots import plot_training_curves
from tf_atalp.reporting import report
from tf_atalp.training import summaries
from tf_atalp.training.backup import RunBackup
from tf_atalp.training.callbacks import (
    AttentionMaps, EpochTimer, HistoryCSV, RobustAccuracy, SetDataEpoch)
from tf_atalp.training.config import RunConfig, save_run_config
from tf_atalp.training.overfitting import (
    HELD_OUT_EXAMPLES, CatastrophicOverfitting, check_attack, held_out_batch, last_accuracy,
    overfitting_summary)
from tf_atalp.training.precision import resolve_precision
from tf_atalp.training.schedules import WarmupSchedule
from tf_atalp.training.strategy import WorkerRole, make_strategy, worker_role
from tf_atalp.training.trainer import AdversarialTrainer


@dataclasses.dataclass(frozen=True)
class PreparedRun:
    """A checked run: the config with the dataset's class count filled in.

    Attributes:
      config: the resolved RunConfig.
      info: the dataset (split sizes after dropping corrupt files).
      steps_per_epoch: training steps (batches) per epoch.
      finished_epochs: epochs already finished and backed up in model_dir.
      role: this process's role in a multi-worker cluster (TF_CONFIG).
    """

    config: RunConfig
    info: data_lib.DatasetInfo
    steps_per_epoch: int
    finished_epochs: int = 0
    role: WorkerRole = WorkerRole()

    @property
    def is_finished(self) -> bool:
        """The model_dir holds this run, finished: a rerun changes nothing."""
        model_dir = self.config.train.model_dir
        return (self.finished_epochs >= self.config.train.epochs
                and all(os.path.isfile(os.path.join(model_dir, name))
                        for name in (MODEL_FILE, TRAIN_RESULTS_FILE)))


def prepare_run(config: RunConfig) -> PreparedRun:
    """Validates data (decoding every image file once), model and model_dir.

    Raises ValueError (or FileNotFoundError) before anything is written.
    """
    role = worker_role(config.train.strategy)  # a malformed TF_CONFIG fails here, before work
    data_lib.validate_data_config(config.data)
    info = data_lib.scan_dataset_info(config.data)
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
    finished = finished_epochs(config.train.model_dir)
    _check_model_dir(config, finished)
    return PreparedRun(config, info, steps, finished, role)


def _differing_settings(config: RunConfig) -> list[str]:
    """The settings ("section.key") in which model_dir's run_config.json differs from `config`."""
    path = os.path.join(config.train.model_dir, RUN_CONFIG_FILE)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        previous = json.load(f)
    try:  # Read through RunConfig, so an earlier version's form of the same run compares equal.
        previous = RunConfig.from_dict(previous).to_dict()
    except (KeyError, TypeError, ValueError):
        pass
    current = config.to_dict()
    return sorted(f"{section}.{key}" for section in current
                  for key in set(current[section]) | set(previous.get(section, {}))
                  if current[section].get(key) != previous.get(section, {}).get(key))


def _check_model_dir(config: RunConfig, finished: int) -> None:
    """A model_dir may be new, hold no finished epoch, or hold the same run (to resume)."""
    differing = _differing_settings(config)
    if differing and finished > 0:
        raise ValueError(
            f"model_dir {config.train.model_dir!r} holds a run with other settings "
            f"({', '.join(differing)}) and {finished} finished epoch(s). Use a new "
            "--model_dir, or the same flags to resume.")


def _clear_unfinished_run(model_dir: str) -> None:
    """Removes what an earlier start that finished no epoch left (our names only)."""
    for name in (BACKUP_DIR, CHECKPOINTS_DIR, LOGS_DIR):
        shutil.rmtree(os.path.join(model_dir, name), ignore_errors=True)
    for name in (HISTORY_FILE, RUN_CONFIG_FILE, FLAGFILE, CLASS_NAMES_FILE):
        path = os.path.join(model_dir, name)
        if os.path.exists(path):
            os.remove(path)


def build_network(config: RunConfig) -> keras.Model:
    """The network of the run (its defense's model options applied)."""
    model = config.model
    options = config.defense.model_options()
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
    updates = steps_per_epoch * config.defense.updates_per_batch()  # Free-AT: m per batch
    schedule = WarmupSchedule(
        peak=train.learning_rate, total_steps=train.epochs * updates,
        warmup_steps=int(train.warmup_epochs * updates), kind=train.lr_schedule)
    decay = train.weight_decay or None
    if train.optimizer == "sgd":
        return keras.optimizers.SGD(schedule, momentum=train.momentum, nesterov=True,
                                    weight_decay=decay)
    if train.optimizer == "adam":
        return keras.optimizers.Adam(schedule, weight_decay=decay)
    return keras.optimizers.AdamW(schedule, weight_decay=train.weight_decay)


def _shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Lets Keras split each global batch over the replicas and workers (DATA sharding).

    Keras distributes a plain dataset itself (`experimental_distribute_dataset`):
    every worker runs the same seeded pipeline and keeps its share of each
    global batch. (A dataset already distributed with
    `distribute_datasets_from_function` trips Keras 3's symbolic build under
    MultiWorkerMirroredStrategy.)
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _datasets(config: RunConfig, strategy: tf.distribute.Strategy, counter: EpochCounter,
              steps_per_epoch: int):
    """(train, validation) datasets of global batches; Keras distributes them over replicas.

    Each training pass is one epoch of `steps_per_epoch` batches whose order
    and augmentation are keyed by `counter` (the epoch number).
    """
    train = data_lib.make_dataset(config.data, "train", training=True, epoch_counter=counter,
                                  max_batches=steps_per_epoch)
    validation = data_lib.make_dataset(config.data, "test", training=False)
    if strategy.num_replicas_in_sync == 1:
        return train, validation
    return _shard_by_data(train), _shard_by_data(validation)


def _watching_callbacks(config: RunConfig) -> list[keras.callbacks.Callback]:
    """RobustAccuracy and AttentionMaps on unaugmented test images, as the flags ask."""
    train = config.train
    callbacks = []
    attack = config.robust_accuracy_attack
    if attack is not None or train.attention_maps_every:
        test_data = data_lib.make_dataset(config.data, "test", training=False)
    if attack is not None:
        callbacks.append(RobustAccuracy(
            test_data, attack, every_n_epochs=train.robust_accuracy_every,
            max_examples=train.robust_accuracy_examples, seed=train.seed, verbose=1))
    if train.attention_maps_every:
        images, labels = next(iter(test_data.unbatch().batch(train.attention_map_images)))
        callbacks.append(AttentionMaps(
            images, labels, os.path.join(train.model_dir, LOGS_DIR, ATTENTION_LOGS_DIR),
            every_n_epochs=train.attention_maps_every, seed=train.seed))
    if config.checks_overfitting:
        images, labels = held_out_batch(data_lib.make_dataset(config.data, "test", training=False))
        history = read_history(os.path.join(train.model_dir, HISTORY_FILE))
        callbacks.append(CatastrophicOverfitting(images, labels, check_attack(config.attack),
                                                 seed=train.seed,
                                                 previous_accuracy=last_accuracy(history)))
    return callbacks


def _callbacks(config: RunConfig, counter: EpochCounter, role: WorkerRole,
               write_dir: str) -> list[keras.callbacks.Callback]:
    """The run's callbacks; they write into `write_dir` (the model_dir on the chief).

    Every worker restores from the model_dir's backup; only the chief watches
    robustness (its figures go into the chief's logs).
    """
    model_dir = config.train.model_dir
    return [
        SetDataEpoch(counter),
        *(_watching_callbacks(config) if role.is_chief else []),  # add to the logs first
        EpochTimer(),  # after them (their time counts), before the callbacks that record logs
        HistoryCSV(os.path.join(write_dir, HISTORY_FILE), append=True),
        RunBackup(os.path.join(write_dir, BACKUP_DIR),
                  restore_from=os.path.join(model_dir, BACKUP_DIR)),
        keras.callbacks.ModelCheckpoint(
            os.path.join(write_dir, CHECKPOINTS_DIR, CHECKPOINT_PATTERN),
            save_weights_only=True),
        keras.callbacks.TensorBoard(os.path.join(write_dir, LOGS_DIR)),
    ]


def _keep_history_up_to(history_path: str, finished: int) -> None:
    """Drops rows of epochs after `finished` (written before a kill, not backed up)."""
    rows = read_history(history_path)
    if not rows or all(int(row["epoch"]) <= finished for row in rows):
        return
    kept = [row for row in rows if int(row["epoch"]) <= finished]
    if not kept:
        os.remove(history_path)
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(kept)
    atomic_write_text(history_path, buffer.getvalue())


def last_epoch_metrics(rows: list[dict[str, str]]) -> dict:
    """The metrics of the last finished epoch, from the rows of history.csv."""
    if not rows:
        return {}
    return {key: float(value) for key, value in rows[-1].items()
            if key != "epoch" and value not in ("", "NA", None)}


def total_training_seconds(rows: list[dict[str, str]]) -> float:
    """Wall time of every finished epoch (rows of history.csv), over all processes of the run."""
    return sum(float(row.get("epoch_seconds") or 0.0) for row in rows)


def save_keras_model_atomically(network: keras.Model, path: str) -> None:
    """Saves to a temporary .keras file in the same folder, then renames."""
    temporary = os.path.join(os.path.dirname(path), ".tmp-" + os.path.basename(path))
    network.save(temporary)
    os.replace(temporary, path)


def _write_run_files(prepared: PreparedRun, flagfile_text: str | None) -> None:
    """run_config.json, train.flags and class_names.json: written once every check passed."""
    config, model_dir = prepared.config, prepared.config.train.model_dir
    os.makedirs(os.path.join(model_dir, CHECKPOINTS_DIR), exist_ok=True)
    save_run_config(config, model_dir)
    if flagfile_text is not None:
        atomic_write_text(os.path.join(model_dir, FLAGFILE), flagfile_text)
    atomic_write_json(os.path.join(model_dir, CLASS_NAMES_FILE),
                      {"class_names": list(prepared.info.class_names)})


def _build_trainer(prepared: PreparedRun, strategy: tf.distribute.Strategy) -> tuple:
    """(network, trainer), built and compiled in the strategy's scope."""
    config = prepared.config
    with strategy.scope():
        network = build_network(config)
        trainer = AdversarialTrainer(
            network, config.defense, attack=config.attack, eval_attack=config.eval_attack,
            attack_batchnorm_training=config.train.attack_batchnorm_training,
            seed=config.train.seed)
        trainer.compile(optimizer=make_optimizer(config, prepared.steps_per_epoch),
                        jit_compile=config.train.jit_compile,
                        steps_per_execution=config.train.steps_per_execution)
        size = config.model.image_size
        trainer(tf.zeros([1, size, size, 3]))  # builds it, as BackupAndRestore needs
    return network, trainer


def worker_scratch_dir(model_dir: str, index: int) -> str:
    """The temporary folder of non-chief worker `index` of the run in `model_dir`.

    Named from the model_dir, so a worker restarted after a kill removes what
    the killed one left.
    """
    key = hashlib.sha256(os.path.abspath(model_dir).encode()).hexdigest()[:12]
    return os.path.join(tempfile.gettempdir(), f"tf_atalp-{key}-worker{index}")


def train(prepared: PreparedRun, flagfile_text: str | None = None, verbose="auto") -> dict:
    """Runs (or resumes) the training and writes the model_dir; returns final metrics.

    A finished run is left as it is (its results are returned); a run that
    finished no epoch starts afresh. With --strategy=multi_worker every worker
    runs this; only the chief writes the model_dir, the others write into a
    temporary folder that is removed at the end.
    """
    config = prepared.config
    model_dir = config.train.model_dir
    results_path = os.path.join(model_dir, TRAIN_RESULTS_FILE)
    if prepared.is_finished:
        with open(results_path) as f:
            results = json.load(f)
        report(f"{model_dir} already holds this run, finished ({config.train.epochs} epochs); "
               "nothing to do.")
        report(summaries.run_summary(model_dir, results))
        return results
    role = prepared.role
    if role.is_chief:
        if prepared.finished_epochs == 0:
            _clear_unfinished_run(model_dir)
        _write_run_files(prepared, flagfile_text)
        write_dir = model_dir
    else:
        write_dir = worker_scratch_dir(model_dir, role.index)
        shutil.rmtree(write_dir, ignore_errors=True)  # what a killed start of it left
        report(f"Worker {role.index} of {role.num_workers} (not the chief): the chief writes "
               f"{model_dir}; this worker's own files go to {write_dir} (removed at the end).")
    try:
        return _train(prepared, role, write_dir, verbose)
    finally:
        if not role.is_chief:
            shutil.rmtree(write_dir, ignore_errors=True)


def _train(prepared: PreparedRun, role: WorkerRole, write_dir: str, verbose) -> dict:
    config = prepared.config
    model_dir = config.train.model_dir
    report(summaries.dataset_summary(config.data, prepared.info, prepared.steps_per_epoch))
    precision = resolve_precision(config.train.mixed_precision, config.train.strategy)
    logging.info("Mixed precision: %s (%s)", precision.policy, precision.reason)
    report(f"Precision: {precision.policy} ({precision.reason})")
    keras.mixed_precision.set_global_policy(precision.policy)
    try:
        keras.utils.set_random_seed(config.train.seed)
        strategy = make_strategy(config.train.strategy, config.train.tpu)
        if config.data.batch_size % strategy.num_replicas_in_sync:
            raise ValueError(
                f"`batch_size` ({config.data.batch_size}) must divide evenly over "
                f"{strategy.num_replicas_in_sync} replicas.")
        counter = EpochCounter()
        train_data, validation_data = _datasets(config, strategy, counter,
                                                prepared.steps_per_epoch)
        network, trainer = _build_trainer(prepared, strategy)
        history_path = os.path.join(write_dir, HISTORY_FILE)
        _keep_history_up_to(history_path, prepared.finished_epochs)
        if prepared.finished_epochs:
            report(f"Resuming from epoch {prepared.finished_epochs + 1} of "
                   f"{config.train.epochs}: epochs 1-{prepared.finished_epochs} are restored "
                   f"from {os.path.join(model_dir, BACKUP_DIR)}.")

        started = time.time()
        history = trainer.fit(train_data, validation_data=validation_data,
                              epochs=config.train.epochs,
                              callbacks=_callbacks(config, counter, role, write_dir),
                              verbose=verbose, shuffle=False)  # the dataset shuffles
        seconds = time.time() - started
        if not role.is_chief:
            return {"worker": role.index, "epochs_run_by_this_process": len(history.epoch),
                    "seconds_this_process": round(seconds, 1)}
        save_keras_model_atomically(network, os.path.join(model_dir, MODEL_FILE))
        if config.train.export_saved_model:
            export_saved_model(config.defense.inference_model(network),
                               os.path.join(model_dir, SAVED_MODEL_DIR),
                               class_names=prepared.info.class_names,
                               randomization=config.defense.randomization())
    finally:
        keras.mixed_precision.set_global_policy("float32")
    plot_training_curves(history_path, os.path.join(model_dir, TRAINING_CURVES_FILE))
    history_rows = read_history(history_path)
    results = {
        "dataset": prepared.info.name, "num_train": prepared.info.num_train,
        "num_test": prepared.info.num_test, "num_classes": prepared.info.num_classes,
        "epochs": config.train.epochs, "epochs_run_by_this_process": len(history.epoch),
        "steps_per_epoch": prepared.steps_per_epoch,
        "workers": role.num_workers,
        "training_seconds": round(total_training_seconds(history_rows), 1),
        "seconds_this_process": round(seconds, 1),
        "precision": {"policy": precision.policy, "reason": precision.reason},
        "final_metrics": last_epoch_metrics(history_rows),
    }
    overfitting = overfitting_summary(history_rows, check_attack(config.attack),
                                      min(HELD_OUT_EXAMPLES, prepared.info.num_test))
    if overfitting is not None:
        results["catastrophic_overfitting"] = overfitting
    atomic_write_json(os.path.join(model_dir, TRAIN_RESULTS_FILE), results)
    report(summaries.run_summary(model_dir, results))
    return results
