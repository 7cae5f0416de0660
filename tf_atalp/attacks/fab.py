"""FAB-T (Croce & Hein 2020, "Minimally distorted adversarial examples with a fast adaptive
boundary attack"), L-inf, targeted: the smallest perturbation it finds, counted within epsilon.

At each step the decision boundary between the true class y and the target
t is linearised at the current point x_k: {z : f + g . (z - x_k) = 0}, with
f = z_y - z_t (positive while y still wins) and g its input gradient. The
step goes towards the minimal L-inf projections of x_k and of the original
image x_0 onto that hyperplane (inside the [0, 1] box), mixed so as to stay close to
x_0:

    x_{k+1} = clip((1 - a)(x_k + eta d_k) + a (x_0 + eta d_0), 0, 1),
    a = min(|d_k| / (|d_k| + |d_0|), alpha_max),

and once x_{k+1} is adversarial it is kept if it is the closest so far and
pulled back towards x_0 (x_0 + beta (x_{k+1} - x_0)). FAB-T runs this
towards each of the `target_classes` most likely other classes; an example
is broken when an adversarial point within epsilon was found. Defaults are
AutoAttack's standard version (fra31/auto-attack): 100 iterations,
alpha_max 0.1, eta 1.05, beta 0.9, 9 target classes, one restart without
random start.

The projection (`linf_projection`) is derived here: the largest change of
g . z reachable with |d|_inf <= r inside the box is
sum_i |g_i| min(r, room_i), room_i the distance to the box face g_i points
at; it is piecewise linear and increasing in r, so the smallest sufficient
r is found over the sorted rooms.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from tf_atalp.attacks.base import (
    AttackResult, check_images, checked_record_at, correct_predictions)
from tf_atalp.attacks.model_fns import objective_and_gradient

ALPHA_MAX = 0.1
ETA = 1.05
BETA = 0.9


def linf_projection(points: tf.Tensor, normals: tf.Tensor, offsets: tf.Tensor) -> tf.Tensor:
    """The smallest L-inf step d [N, D] with normals . (points + d) = offsets, points + d in [0, 1].

    Args:
      points: [N, D] in [0, 1].
      normals: [N, D], the hyperplanes' normal vectors w.
      offsets: [N], the hyperplanes' offsets b.

    Where the hyperplane cannot be reached inside the box, the step goes as far
    towards it as the box allows (every coordinate to the face w points at).
    """
    points = tf.cast(points, tf.float32)
    normals = tf.cast(normals, tf.float32)
    needed = tf.cast(offsets, tf.float32) - tf.reduce_sum(normals * points, axis=1)  # w . d
    direction = tf.sign(needed)[:, None] * tf.sign(normals)  # each coordinate's move sign
    room = tf.where(direction > 0, 1.0 - points, points)  # how far it can move that way
    weight = tf.abs(normals)
    target = tf.abs(needed)
    order = tf.argsort(room, axis=1)
    room_sorted = tf.gather(room, order, batch_dims=1)
    weight_sorted = tf.gather(weight, order, batch_dims=1)
    # g(r) at r = room_sorted[:, j]: the coordinates below j are full, the others move r.
    full = tf.cumsum(weight_sorted * room_sorted, axis=1, exclusive=True)
    rest = tf.cumsum(weight_sorted, axis=1, reverse=True)
    reach = full + rest * room_sorted  # [N, D], increasing in j
    enough = reach >= target[:, None]
    first = tf.argmax(tf.cast(enough, tf.int32), axis=1, output_type=tf.int32)
    feasible = tf.reduce_any(enough, axis=1)
    full_j = tf.gather(full, first[:, None], batch_dims=1)[:, 0]
    rest_j = tf.gather(rest, first[:, None], batch_dims=1)[:, 0]
    radius = tf.where(feasible, (target - full_j) / tf.maximum(rest_j, 1e-12),
                      tf.reduce_max(room, axis=1))
    radius = tf.maximum(radius, 0.0)
    step = direction * tf.minimum(radius[:, None], room)
    return tf.where(tf.equal(normals, 0.0), 0.0, step)


def _difference_and_gradient(model_fn, images, labels, targets):
    """(f [N] = z_y - z_t, df/dx [N, ...]) at `images` (EoT/BPDA model functions apply)."""
    def difference(logits, y):
        logits = tf.cast(logits, tf.float32)
        return tf.gather(logits, y, batch_dims=1) - tf.gather(logits, targets, batch_dims=1)
    logits, gradient = objective_and_gradient(model_fn, difference, images, labels)
    return difference(logits, labels), gradient


@tf.function(reduce_retracing=True)
def _fab_loop(model_fn, clean, labels, targets, iterations):
    """One FAB-T run; returns (closest adversarial found [N, ...], its L-inf distance [N])."""
    batch = tf.shape(clean)[0]
    flat = tf.reshape(clean, [batch, -1])
    x = clean
    best = clean
    best_distance = 1e10 * tf.ones_like(flat[:, 0])
    for _ in tf.range(iterations):
        difference, gradient = _difference_and_gradient(model_fn, x, labels, targets)
        normals = tf.reshape(gradient, [batch, -1])
        # The linearised boundary: f(x) + g . (z - x) = 0, i.e. g . z = g . x - f(x).
        offsets = tf.reduce_sum(normals * tf.reshape(x, [batch, -1]), axis=1) - difference
        steps = linf_projection(tf.concat([tf.reshape(x, [batch, -1]), flat], 0),
                                tf.concat([normals, normals], 0), tf.concat([offsets, offsets], 0))
        step_x, step_0 = steps[:batch], steps[batch:]
        size_x = tf.maximum(tf.reduce_max(tf.abs(step_x), axis=1), 1e-8)
        size_0 = tf.maximum(tf.reduce_max(tf.abs(step_0), axis=1), 1e-8)
        alpha = tf.clip_by_value(size_x / (size_x + size_0), 0.0, ALPHA_MAX)[:, None]
        moved = tf.clip_by_value(
            (tf.reshape(x, [batch, -1]) + ETA * step_x) * (1.0 - alpha)
            + (flat + ETA * step_0) * alpha, 0.0, 1.0)
        x = tf.reshape(moved, tf.shape(clean))
        adversarial = tf.logical_not(correct_predictions(model_fn(x), labels))
        distance = tf.reduce_max(tf.abs(moved - flat), axis=1)
        closer = tf.logical_and(adversarial, distance < best_distance)
        best = tf.where(closer[:, None, None, None], x, best)
        best_distance = tf.where(closer, distance, best_distance)
        x = tf.where(adversarial[:, None, None, None], clean + BETA * (x - clean), x)
        x = tf.stop_gradient(x)
    return best, best_distance


@keras.saving.register_keras_serializable(package="tf_atalp")
@dataclasses.dataclass(frozen=True)
class FABTargeted:
    """L-inf FAB-T: per target class (the 2nd, 3rd, ... most likely on the clean image).

    Attributes:
      epsilon: the radius a found adversarial must lie within to count.
      iterations: steps per target class (the reference: 100).
      target_classes: how many targets (the reference: 9; at most K - 1).
    """

    epsilon: float
    iterations: int = 100
    target_classes: int = 9

    def __post_init__(self):
        if not 0.0 < self.epsilon <= 1.0:
            raise ValueError(f"`epsilon` must be in (0, 1]. Received: epsilon={self.epsilon}")
        if self.iterations < 1 or self.target_classes < 1:
            raise ValueError("`iterations` and `target_classes` must be >= 1. Received: "
                             f"{self.iterations}, {self.target_classes}")

    def attack(self, model_fn, images, labels, *, seed=None, record_at=None) -> AttackResult:
        """Runs every target; the result holds, per example, the closest adversarial within
        epsilon (else the image).

        `record_at`: counts in [0, iterations]. FAB's iterates are not a
        sequence of ever stronger attacks (it moves back towards the image
        once adversarial), so iterate 0 is scored on the clean image and every
        later count holds the final outcome.
        """
        clean = tf.cast(check_images(images), tf.float32)
        labels = tf.cast(labels, tf.int32)
        record_at = checked_record_at(record_at, self.iterations)
        logits = model_fn(clean)
        correct = correct_predictions(logits, labels)
        ranked = tf.argsort(logits, axis=-1, direction="DESCENDING", stable=True)
        runs = min(self.target_classes, int(logits.shape[-1]) - 1)
        best = clean
        best_distance = tf.fill([tf.shape(clean)[0]], np.float32(1e10))
        for run in range(runs):
            targets = tf.cast(ranked[:, run + 1], tf.int32)
            found, distance = _fab_loop(model_fn, clean, labels, targets,
                                        tf.constant(self.iterations, tf.int32))
            closer = distance < best_distance
            best = tf.where(closer[:, None, None, None], found, best)
            best_distance = tf.where(closer, distance, best_distance)
        broken = tf.logical_and(correct, best_distance <= self.epsilon * (1 + 1e-6))
        adversarial = tf.where(tf.reshape(broken, [-1, 1, 1, 1]), best, clean)
        if record_at is None:
            return AttackResult(adversarial)
        counts = tf.constant(record_at, tf.int32)
        still = tf.logical_and(correct, tf.logical_not(broken))
        correct_at = tf.where(tf.equal(counts, 0)[:, None], correct[None, :], still[None, :])
        return AttackResult(adversarial, counts, correct_at)

    def describe(self) -> dict:
        return {"attack": "fab-t", "norm": "linf", "epsilon": self.epsilon,
                "iterations": self.iterations, "target_classes": self.target_classes,
                "alpha_max": ALPHA_MAX, "eta": ETA, "beta": BETA, "targeted": False,
                "random_start": False}

    def get_config(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config: dict) -> "FABTargeted":
        return cls(**config)
