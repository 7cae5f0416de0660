"""Attack objectives: per-example scores an untargeted attack maximises (larger = more wrong)."""

from collections.abc import Callable

import tensorflow as tf

OBJECTIVES = ("cross_entropy", "margin")


def cross_entropy_objective(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Per-example cross-entropy, float32 [N]; larger means more wrong."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def margin_objective(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Per-example CW margin max_{j != y} z_j - z_y, float32 [N]; > 0 means wrong."""
    classes = tf.range(tf.shape(logits)[-1], dtype=labels.dtype)
    true_mask = tf.equal(classes[None, :], labels[:, None])
    true_logit = tf.reduce_max(tf.where(true_mask, logits, -float("inf")), axis=-1)
    best_other = tf.reduce_max(tf.where(true_mask, -float("inf"), logits), axis=-1)
    return best_other - true_logit


def get_objective(name: str) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """The objective function called `name` (one of OBJECTIVES)."""
    if name == "cross_entropy":
        return cross_entropy_objective
    if name == "margin":
        return margin_objective
    raise ValueError(f"`objective` must be one of {OBJECTIVES}. Received: objective={name!r}")
