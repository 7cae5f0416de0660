"""A deterministic, class-balanced subset of an evaluation split (`--max_examples`).

Split files are sorted by class, so "the first N" is one or two classes.
Instead the classes take turns (class 0, 1, ..., K-1, 0, 1, ...), each giving
its next example in split order, until N are chosen; a class that runs out
drops out of the rotation. The rule needs no seed and is recorded in the
results (`describe_subset`).
"""

import numpy as np
import tensorflow as tf

SUBSET_RULE = ("class-balanced: classes take turns, each giving its next example in split "
               "order, until max_examples are chosen")


def balanced_subset(labels: np.ndarray, max_examples: int) -> np.ndarray:
    """Sorted int64 indices into `labels` (int [N]) of the class-balanced subset.

    All N indices when max_examples >= N.
    """
    if max_examples < 1:
        raise ValueError(f"`max_examples` must be >= 1. Received: max_examples={max_examples}")
    labels = np.asarray(labels)
    if max_examples >= len(labels):
        return np.arange(len(labels), dtype=np.int64)
    # Rank of each example within its class (0 for the first of its class, ...):
    # taking turns means choosing by (rank, class).
    rank = np.zeros(len(labels), np.int64)
    for value in np.unique(labels):
        members = np.flatnonzero(labels == value)
        rank[members] = np.arange(len(members))
    turn_order = np.lexsort((labels, rank))
    return np.sort(turn_order[:max_examples]).astype(np.int64)


def split_labels(dataset: tf.data.Dataset) -> np.ndarray:
    """int32 [N]: the labels of a batched (images, labels) dataset, in order (one pass)."""
    labels = [np.asarray(batch_labels) for _, batch_labels in dataset.as_numpy_iterator()]
    return np.concatenate(labels).astype(np.int32) if labels else np.zeros([0], np.int32)


def select_examples(dataset: tf.data.Dataset, indices: np.ndarray,
                    batch_size: int) -> tf.data.Dataset:
    """The examples of a batched dataset at `indices` (sorted), in order, re-batched."""
    keep = np.zeros(int(indices.max()) + 1 if len(indices) else 0, bool)
    keep[indices] = True
    keep = tf.constant(keep)
    limit = tf.shape(keep, out_type=tf.int64)[0]

    def chosen(index, example):
        return tf.logical_and(index < limit, tf.gather(keep, tf.minimum(index, limit - 1)))

    selected = dataset.unbatch().enumerate().filter(chosen).map(lambda _, example: example)
    return selected.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def describe_subset(labels: np.ndarray, indices: np.ndarray, class_names) -> dict:
    """The subset's record for the results file: rule, size and examples per class."""
    counts = np.bincount(np.asarray(labels)[indices], minlength=len(class_names))
    return {"rule": SUBSET_RULE, "num_examples": int(len(indices)),
            "split_size": int(len(labels)),
            "per_class": {name: int(count) for name, count in zip(class_names, counts)}}
