"""One training run, from a `RunConfig` to a finished model_dir.

`prepare_run` checks everything that can be checked before work (the data
folder, every image file, the class count, the model_dir: a folder this
process can write, with room for one checkpoint) and writes nothing;
`train` then holds the model_dir's lock (run.lock: one process per run) and
writes it (names in `tf_atalp.model_dir`):

    run_config.json   the resolved RunConfig (read back by eval_main)
    train.flags       a flagfile that reproduces the run
    class_names.json  the class names in label order
    backup/           the last committed epoch (RunBackup): a rerun of the same command resumes
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
Every file is written atomically and the backup is committed last of an
epoch's writes, so a kill at any moment (in a checkpoint write, in the
SavedModel export) or a full disk leaves the last committed epoch whole: a
full disk ends with NoSpaceError naming the file and that checkpoint.
"""

import dataclasses
import hashlib
import json
import math
import os
import shutil
import tempfile
import time

import keras
import tensorflow as tf
from absl import logging

from tf_atalp import data as data_lib
from tf_atalp.data.pipeline import EpochCounter
from tf_atalp.data.subset import balanced_examples
from tf_atalp.export import check_export_dir, export_saved_model
from tf_atalp.io_utils import (
    NoSpaceError, atomic_save, atomic_write_json, atomic_write_text, no_space_error,
    remove_temporary_files, writing)
from tf_atalp.model_dir import (
    ATTENTION_LOGS_DIR, BACKUP_DIR, CHECKPOINT_PATTERN, CHECKPOINTS_DIR, CLASS_NAMES_FILE, FLAGFILE, HISTORY_FILE,
    LOGS_DIR, MODEL_FILE, ROBUST_ACCURACY_FILE, RUN_CONFIG_FILE, SAVED_MODEL_DIR,
    TRAIN_RESULTS_FILE, TRAINING_CURVES_FILE, finished_epochs, keep_history_up_to,
    last_epoch_metrics, read_history, total_training_seconds)
from tf_atalp.models import build_applications_resnet, build_resnet
from tf_atalp.output_checks import check_output_dir, check_output_file
from tf_atalp.plots import plot_training_curves
from tf_atalp.reporting import report
from tf_atalp.run_lock import RunLock
from tf_atalp.training import summaries
from tf_atalp.training.backup import (
    CHECKPOINT_MARGIN, EpochCheckpoint, RunBackup, checkpoint_bytes, committed_backup)
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

    The folders and files the run writes are probed (`tf_atalp.output_checks`):
    a file where a folder must be, a folder this process cannot write, or
    less free space than one checkpoint of the model is refused.

    Raises ValueError (or FileNotFoundError) before anything is written.
    """
    role = worker_role(config.train.strategy)  # a malformed TF_CONFIG fails here, before work
    data_lib.validate_data_config(config.data)
    write_dir = _write_dir(config.train.model_dir, role)
    _check_output_paths(config, write_dir, role)  # before the scan, which may take minutes
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
    prepared = PreparedRun(config, info, steps, finished, role)
    if not prepared.is_finished:
        _check_checkpoint_space(config, write_dir)
    return prepared


def _write_dir(model_dir: str, role: WorkerRole) -> str:
    """Where this process writes: the model_dir on the chief, a scratch folder on other workers."""
    return model_dir if role.is_chief else worker_scratch_dir(model_dir, role.index)


def _check_output_paths(config: RunConfig, write_dir: str, role: WorkerRole) -> None:
    """Every folder and file the run writes can be written (ValueError if not); writes nothing."""
    for folder in (write_dir, *(os.path.join(write_dir, name)
                                for name in (BACKUP_DIR, CHECKPOINTS_DIR, LOGS_DIR))):
        check_output_dir(folder, name="model_dir")
    if not role.is_chief:
        return
    model_dir = config.train.model_dir
    for name in (RUN_CONFIG_FILE, FLAGFILE, CLASS_NAMES_FILE, HISTORY_FILE, MODEL_FILE,
                 TRAIN_RESULTS_FILE, TRAINING_CURVES_FILE):
        check_output_file(os.path.join(model_dir, name), name="model_dir")
    if config.train.export_saved_model:
        check_export_dir(os.path.join(model_dir, SAVED_MODEL_DIR))


def network_size(config: RunConfig) -> tuple[int, int]:
    """(all weights, trainable weights) of the run's network: counts of numbers.

    Counted on a copy built in a throwaway graph (no pretrained weights
    read): nothing runs eagerly, so a multi-worker strategy can still be
    created afterwards.
    """
    model = dataclasses.replace(config.model, weights_path=None)
    with tf.Graph().as_default():
        network = build_network(dataclasses.replace(config, model=model))
        return (network.count_params(),
                sum(math.prod(weight.shape) for weight in network.trainable_weights))


def optimizer_slots(train) -> int:
    """Numbers the optimizer keeps per trainable weight: Adam's two moments, SGD's momentum."""
    if train.optimizer == "sgd":
        return 1 if train.momentum else 0
    return 2


def _check_checkpoint_space(config: RunConfig, write_dir: str) -> None:
    """ValueError unless `write_dir` has room for one checkpoint (weights + optimizer state)."""
    weights, trainable = network_size(config)
    slots = optimizer_slots(config.train)
    check_output_dir(
        write_dir, checkpoint_bytes(weights, trainable, slots), name="model_dir",
        needed_for=f"one checkpoint of this model ({weights:,} weights and {slots} "
                   f"{config.train.optimizer} slot(s) per trainable one, float32, "
                   f"+{CHECKPOINT_MARGIN:.0%} and 1 MiB)")


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
    """RobustAccuracy and AttentionMaps on unaugmented test images, as the flags ask.

    Both take class-balanced test images (`tf_atalp.data.subset`; the test
    split lists class by class), read once here: RobustAccuracy its
    `robust_accuracy_examples`, recorded in ROBUST_ACCURACY_FILE (the run
    summary and training_curves.png name them), AttentionMaps one per class
    up to `attention_map_images`.
    """
    train = config.train
    callbacks = []
    attack = config.robust_accuracy_attack
    if attack is not None or train.attention_maps_every:
        test_data = data_lib.make_dataset(config.data, "test", training=False)
    if attack is not None:
        robust_accuracy = RobustAccuracy(
            test_data, attack, every_n_epochs=train.robust_accuracy_every,
            max_examples=train.robust_accuracy_examples, batch_size=config.data.batch_size,
            seed=train.seed, class_names=data_lib.get_dataset_info(config.data).class_names,
            verbose=1)
        atomic_write_json(os.path.join(train.model_dir, ROBUST_ACCURACY_FILE),
                          robust_accuracy.describe())
        callbacks.append(robust_accuracy)
    if train.attention_maps_every:
        images, labels, _ = balanced_examples(test_data, train.attention_map_images)
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
    watching = _watching_callbacks(config) if role.is_chief else []
    sometimes_logged = tuple(c.name for c in watching if isinstance(c, RobustAccuracy))
    return [
        SetDataEpoch(counter),
        *watching,  # add to the logs first
        EpochTimer(),  # after them (their time counts), before the callbacks that record logs
        HistoryCSV(os.path.join(write_dir, HISTORY_FILE), append=True, columns=sometimes_logged),
        EpochCheckpoint(os.path.join(write_dir, CHECKPOINTS_DIR, CHECKPOINT_PATTERN)),
        keras.callbacks.TensorBoard(os.path.join(write_dir, LOGS_DIR)),
        # Last: its commit says every write of the epoch before it is done, so an epoch
        # killed (or out of space) in any of them is run again on resume.
        RunBackup(os.path.join(write_dir, BACKUP_DIR),
                  restore_from=os.path.join(model_dir, BACKUP_DIR)),
    ]


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
    finished no epoch starts afresh. The chief holds the model_dir's
    `RunLock` throughout (FolderInUseError when another live process holds
    it; a killed one's stale lock is taken over). With
    --strategy=multi_worker every worker runs this; only the chief writes
    the model_dir, the others write into a temporary folder that is removed
    at the end.

    Raises NoSpaceError on a full disk, naming the file being written and
    the last complete checkpoint; what the failed write began is removed.
    """
    model_dir = prepared.config.train.model_dir
    try:
        if not prepared.role.is_chief:
            return _train_worker(prepared, verbose)
        with RunLock(model_dir, name="model_dir"):
            return _train_chief(prepared, flagfile_text, verbose)
    except Exception as error:
        full = no_space_error(error, model_dir)
        if full is None:
            raise
        raise NoSpaceError(full.path, last_complete_checkpoint(model_dir)) from error


def last_complete_checkpoint(model_dir: str) -> str | None:
    """The committed backup a rerun resumes from, as "<path> (epoch N)"; None if none."""
    try:
        backup = committed_backup(os.path.join(model_dir, BACKUP_DIR))
    except ValueError:
        return None
    return None if backup is None else f"{backup.weights_path} (epoch {backup.epoch})"


def _finished_results(prepared: PreparedRun) -> dict:
    config, model_dir = prepared.config, prepared.config.train.model_dir
    with open(os.path.join(model_dir, TRAIN_RESULTS_FILE)) as f:
        results = json.load(f)
    report(f"{model_dir} already holds this run, finished ({config.train.epochs} epochs); "
           "nothing to do.")
    report(summaries.run_summary(model_dir, results))
    return results


def _train_chief(prepared: PreparedRun, flagfile_text: str | None, verbose) -> dict:
    """The chief's run, under the model_dir's lock: the model_dir is read again first."""
    config, model_dir = prepared.config, prepared.config.train.model_dir
    finished = finished_epochs(model_dir)  # another process may have run since prepare_run
    _check_model_dir(config, finished)
    prepared = dataclasses.replace(prepared, finished_epochs=finished)
    if prepared.is_finished:
        return _finished_results(prepared)
    if finished == 0:
        _clear_unfinished_run(model_dir)
    for folder in (model_dir, os.path.join(model_dir, BACKUP_DIR),
                   os.path.join(model_dir, CHECKPOINTS_DIR)):
        remove_temporary_files(folder)  # what writes killed mid-way left
    _write_run_files(prepared, flagfile_text)
    return _train(prepared, prepared.role, model_dir, verbose)


def _train_worker(prepared: PreparedRun, verbose) -> dict:
    """A non-chief worker's run: it writes only its own scratch folder."""
    if prepared.is_finished:
        return _finished_results(prepared)
    role, model_dir = prepared.role, prepared.config.train.model_dir
    write_dir = worker_scratch_dir(model_dir, role.index)
    shutil.rmtree(write_dir, ignore_errors=True)  # what a killed start of it left
    report(f"Worker {role.index} of {role.num_workers} (not the chief): the chief writes "
           f"{model_dir}; this worker's own files go to {write_dir} (removed at the end).")
    try:
        return _train(prepared, role, write_dir, verbose)
    finally:
        shutil.rmtree(write_dir, ignore_errors=True)


def _train(prepared: PreparedRun, role: WorkerRole, write_dir: str, verbose) -> dict:
    config = prepared.config
    model_dir = config.train.model_dir
    report(summaries.dataset_summary(config.data, prepared.info, prepared.steps_per_epoch))
    for caveat in config.defense.caveats():
        logging.warning("%s", caveat)
        report(f"Note: {caveat}")
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
        keep_history_up_to(history_path, prepared.finished_epochs)
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
        atomic_save(os.path.join(model_dir, MODEL_FILE), network.save)
        if config.train.export_saved_model:
            export_dir = os.path.join(model_dir, SAVED_MODEL_DIR)
            with writing(export_dir):
                export_saved_model(config.defense.inference_model(network), export_dir,
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
