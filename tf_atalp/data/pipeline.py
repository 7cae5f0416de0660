"""The shared tail of every pipeline: shard, cache, shuffle, augment, batch, prefetch."""

import numpy as np
import tensorflow as tf

from tf_atalp.data.config import DataConfig
from tf_atalp.data.images import augment, to_unit_float

AUTOTUNE = tf.data.AUTOTUNE


def derive_seed(seed: int, *keys: int | str) -> int:
    """A 31-bit seed derived from `seed` and `keys` (different keys -> independent seeds)."""
    words = [seed] + [k if isinstance(k, int) else int.from_bytes(k.encode(), "little")
                      for k in keys]
    return int(np.random.SeedSequence(words).generate_state(1)[0] >> 1)


def per_replica_batch_size(batch_size: int,
                           input_context: tf.distribute.InputContext | None) -> int:
    """The batch size of one replica's pipeline (the global one without a context)."""
    if input_context is None:
        return batch_size
    return input_context.get_per_replica_batch_size(batch_size)


def shard(dataset: tf.data.Dataset,
          input_context: tf.distribute.InputContext | None) -> tf.data.Dataset:
    """Keeps every n-th element for input pipeline `input_pipeline_id` of n > 1."""
    if input_context is None or input_context.num_input_pipelines <= 1:
        return dataset
    return dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)


def pipeline_id(input_context: tf.distribute.InputContext | None) -> int:
    """The input pipeline's index (0 without a context)."""
    return 0 if input_context is None else input_context.input_pipeline_id


def check_enough_examples(num_examples: int, batch_size: int, training: bool, where: str) -> None:
    """Raises if a pipeline would yield no batch (training drops the remainder)."""
    if num_examples == 0 or (training and num_examples < batch_size):
        raise ValueError(
                f"The {where} has {num_examples} examples, fewer than one batch of the "
                f"per-replica `batch_size`. Received: batch_size={batch_size}")


def finish_pipeline(dataset: tf.data.Dataset, config: DataConfig, training: bool,
                    batch_size: int, cache: bool, seed: int) -> tf.data.Dataset:
    """Turns decoded examples into batches.

    Args:
        dataset: elements (image uint8 or float32 [S, S, 3], label int32 []),
            not augmented, already sharded.
        config: uses `augment`, `shuffle_buffer`.
        training: shuffle, augment (if `config.augment`), drop the remainder.
        batch_size: this pipeline's batch size B.
        cache: cache the elements in memory (before shuffle and augmentation).
        seed: the seed of the shuffle and the augmentation.

    Returns:
        Batches (images float32 [B, S, S, 3] in [0, 1], labels int32 [B]).
    """
    if cache:
        dataset = dataset.cache()
    if training:
        dataset = dataset.shuffle(config.shuffle_buffer, seed=derive_seed(seed, "shuffle"),
                                  reshuffle_each_iteration=True)
    if training and config.augment:
        seeds = tf.data.Dataset.random(seed=derive_seed(seed, "augment"),
                                       rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip((dataset, seeds)).map(
                lambda example, s: (augment(to_unit_float(example[0]), s), example[1]),
                num_parallel_calls=AUTOTUNE)
    else:
        dataset = dataset.map(lambda image, label: (to_unit_float(image), label),
                              num_parallel_calls=AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=training, num_parallel_calls=AUTOTUNE)
    return dataset.prefetch(AUTOTUNE)
