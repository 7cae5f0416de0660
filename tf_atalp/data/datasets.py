"""The public entry points: dataset info, validation, and the tf.data pipelines."""

from typing import Callable

import tensorflow as tf

from tf_atalp.data.config import DataConfig, DatasetInfo
from tf_atalp.data.folder_source import folder_dataset_info, folder_examples, list_config_folder
from tf_atalp.data.pipeline import (
    EpochCounter, check_enough_examples, finish_pipeline, per_replica_batch_size, pipeline_id)
from tf_atalp.data.synthetic_source import synthetic_dataset_info, synthetic_examples
from tf_atalp.data.tfds_source import check_tfds_config, tfds_dataset_info, tfds_examples
from tf_atalp.seeds import derive_seed

SPLITS = ("train", "test")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}")


def get_dataset_info(config: DataConfig) -> DatasetInfo:
    """Class names and split sizes; lists files or reads metadata, decodes nothing.

    Counts are of listed files: with `skip_corrupt`, corrupt files found later
    by `make_dataset` are not subtracted. A TFDS dataset not yet prepared is
    prepared first (one time).
    """
    source = config.resolved_source
    if source == "synthetic":
        return synthetic_dataset_info(config)
    if source == "folder":
        return folder_dataset_info(config)
    return tfds_dataset_info(config)


def validate_data_config(config: DataConfig) -> None:
    """Checks the data exist and fit the config, before any work; raises ValueError.

    Folder source: `data_dir` exists and holds class folders with images
    (listing only). TFDS source: the builder exists, `manual_dir` (if set)
    exists. All: with `expected_num_classes`, the dataset has that many classes.
    """
    source = config.resolved_source
    if source == "folder":
        list_config_folder(config)
    elif source == "tfds":
        check_tfds_config(config)
    if config.expected_num_classes is not None:
        num_classes = get_dataset_info(config).num_classes
        if num_classes != config.expected_num_classes:
            raise ValueError(
                    f"`expected_num_classes` must match the {num_classes} classes of "
                    f"dataset={config.dataset!r} (else labels fall out of range). "
                    f"Received: expected_num_classes={config.expected_num_classes}")


def scan_dataset_info(config: DataConfig) -> DatasetInfo:
    """`get_dataset_info` after decoding every listed image file once (folder source).

    A corrupt file raises a ValueError naming it, or with `skip_corrupt` is
    dropped (one warning) and not counted in the split sizes. The scan is
    remembered for the process, so the pipelines do not decode twice to check.
    """
    if config.resolved_source == "folder":
        return folder_dataset_info(config, decode=True)
    return get_dataset_info(config)


def make_dataset(config: DataConfig, split: str, training: bool,
                 input_context: tf.distribute.InputContext | None = None,
                 epoch_counter: EpochCounter | None = None,
                 max_batches: int | None = None) -> tf.data.Dataset:
    """The batched pipeline of one split.

    Args:
        config: the data configuration.
        split: "train" or "test".
        training: True shuffles (seeded), augments (if `config.augment`) and
            drops the last partial batch; False keeps the order and remainder.
            No repeat: one pass is one epoch.
        input_context: from `distribute_datasets_from_function`; sets the
            per-replica batch size and shards when num_input_pipelines > 1.
        epoch_counter: (training) keys each pass's shuffle and augmentation
            by its epoch number (see `EpochCounter`); None: passes 0, 1, ...
        max_batches: end each pass after this many batches.

    Returns:
        Batches (images float32 [B, S, S, 3] in [0, 1], labels int32 [B]),
        B = the per-replica batch size, S = `config.image_size`.
    """
    _check_split(split)
    validate_data_config(config)
    batch_size = per_replica_batch_size(config.batch_size, input_context)
    source = config.resolved_source
    if source == "synthetic":
        dataset, count = synthetic_examples(config, split, input_context)
    elif source == "folder":
        dataset, count = folder_examples(config, split, training, input_context)
    else:
        dataset, count = tfds_examples(config, split, training, input_context)
    if count >= 0:
        check_enough_examples(count, batch_size, training,
                              f"{split} split of {config.dataset!r} (this input pipeline)")
    seed = derive_seed(config.seed, "pipeline", pipeline_id(input_context))
    cache = config.cache and source != "synthetic"  # synthetic data already sit in memory
    dataset = finish_pipeline(dataset, config, training, batch_size, cache, seed, epoch_counter)
    if max_batches is not None:
        dataset = dataset.take(max_batches)
    if training and count >= 0:  # Known again (the per-epoch pass hides it), for progress bars.
        batches = count // batch_size
        batches = batches if max_batches is None else min(batches, max_batches)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    return dataset


def make_input_fn(config: DataConfig, split: str, training: bool,
                  epoch_counter: EpochCounter | None = None, max_batches: int | None = None
                  ) -> Callable[[tf.distribute.InputContext], tf.data.Dataset]:
    """A `dataset_fn` for `strategy.distribute_datasets_from_function`; validates now."""
    _check_split(split)
    validate_data_config(config)

    def input_fn(input_context: tf.distribute.InputContext) -> tf.data.Dataset:
        return make_dataset(config, split, training, input_context, epoch_counter, max_batches)

    return input_fn


def first_examples(batches, max_examples: int | None):
    """The (images, labels) batches of `batches`, cut after `max_examples` examples (None: all).

    `batches` is any iterable of (images [B, ...], labels [B]) pairs (a batched
    tf.data.Dataset, say); the last batch kept may be cut short.
    """
    remaining = max_examples
    for images, labels in batches:
        if remaining is not None:
            images, labels = images[:remaining], labels[:remaining]
            remaining -= int(labels.shape[0])
        yield images, labels
        if remaining is not None and remaining <= 0:
            return
