"""A deterministic, class-balanced subset of a held-out split.

Split files are sorted by class, so "the first N" is one or two classes.
Instead the classes take turns (class 0, 1, ..., K-1, 0, 1, ...), each giving
its next example in split order, until N are chosen; a class that runs out
drops out of the rotation. The rule needs no seed and is recorded with the
results (`describe_subset`). eval_main's `--max_examples`, the protocol, and
the training callbacks (`RobustAccuracy`, train_main's `AttentionMaps`
images) all use it.
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


def balanced_examples(data, max_examples: int | None,
                      class_names=None) -> tuple[np.ndarray, np.ndarray, dict]:
    """The class-balanced subset of held-out data, read into memory.

    Args:
      data: a batched tf.data.Dataset of (images, labels) in a fixed order,
        read in two full passes (its labels, then the chosen examples; a
        cached dataset is filled, never left half-read), or (images, labels)
        arrays.
      max_examples: how many to keep (None: all).
      class_names: names for the record (None: the labels as text, "0", "1", ...).

    Returns:
      (images float32 [n, ...], labels int32 [n], the `describe_subset` record),
      in split order.

    Raises:
      ValueError: the data hold no examples, or a dataset changed its order between passes.
    """
    if isinstance(data, tf.data.Dataset):
        labels = split_labels(data)
    else:
        all_images, labels = data
        labels = np.asarray(labels).astype(np.int32)
    if len(labels) == 0:
        raise ValueError("The held-out data yielded no examples.")
    indices = (np.arange(len(labels), dtype=np.int64) if max_examples is None
               else balanced_subset(labels, max_examples))
    if isinstance(data, tf.data.Dataset):
        chosen = list(select_examples(data, indices, batch_size=256).as_numpy_iterator())
        images = np.concatenate([batch for batch, _ in chosen])
        if not np.array_equal(np.concatenate([batch for _, batch in chosen]), labels[indices]):
            raise ValueError("The held-out dataset must yield its examples in the same order "
                             "on every pass (do not shuffle it).")
    else:
        images = np.asarray(all_images)[indices]
    if class_names is None:
        class_names = [str(label) for label in range(int(labels.max()) + 1)]
    return (images.astype(np.float32, copy=False), labels[indices],
            describe_subset(labels, indices, class_names))


def subset_text(record: dict) -> str:
    """A `describe_subset` record in words: "256 of 272 images, class-balanced: 17 classes,
    15-16 each"."""
    counts = list(record["per_class"].values())
    present = [count for count in counts if count > 0]
    low, high = min(present), max(present)
    classes = (f"{len(present)} classes" if len(present) == len(counts)
               else f"{len(present)} of {len(counts)} classes")
    each = f"{low} each" if low == high else f"{low}-{high} each"
    return (f"{record['num_examples']} of {record['split_size']} images, class-balanced: "
            f"{classes}, {each}")
