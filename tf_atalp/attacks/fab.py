"""FAB (Croce & Hein 2020, "Minimally distorted adversarial examples with a fast adaptive
boundary attack"), L-inf, untargeted (`FAB`) and targeted (`FABTargeted`, FAB-T): the
smallest perturbation it finds, counted within epsilon.

At each step a decision boundary between the true class y and another class
c is linearised at the current point x_k: {z : f + g . (z - x_k) = 0}, with
f = z_y - z_c (positive while y still beats c) and g its input gradient.
FAB-T takes c = its target t. Untargeted FAB takes, at every step, the class
whose linearised boundary is closest, c = argmin_{c != y} |f_c| / ||g_c||_1
(the L-inf distance to that hyperplane, box ignored, as the reference code),
which needs the input gradient of all K - 1 logit differences per step: for
a plain model function one forward pass and one Jacobian of the K - 1
differences (`GradientTape.batch_jacobian`, a vectorized backward pass); for
one that defines its own gradient (EoT, BPDA: `model_fns`) one
forward-backward pass per class, in a loop that keeps only the closest so
far (the memory of one gradient). The step goes
towards the minimal L-inf projections of x_k and of the original image x_0
onto that hyperplane (inside the [0, 1] box), mixed so as to stay close to
x_0:

    x_{k+1} = clip((1 - a)(x_k + eta d_k) + a (x_0 + eta d_0), 0, 1),
    a = min(|d_k| / (|d_k| + |d_0|), alpha_max),

and once x_{k+1} is adversarial it is kept if it is the closest so far and
pulled back towards x_0 (x_0 + beta (x_{k+1} - x_0)). FAB-T runs this
towards each of the `target_classes` most likely other classes; an example
is broken when an adversarial point within epsilon was found. Defaults are
AutoAttack's (fra31/auto-attack): 100 iterations, alpha_max 0.1, eta 1.05,
beta 0.9; FAB-T 9 target classes and one restart (every version), FAB 5
restarts (the "plus" version).

Restarts: the first run (per target, for FAB-T) starts at the image, every
later one at x_0 + (epsilon / 2) t / max|t|, t uniform in [-1, 1] per pixel,
clipped to [0, 1], and runs only on the examples that no run has broken
within epsilon yet. This is AutoAttack's FAB (fab_pt.py: `perturb` restarts
on the points still robust, and `attack_single_run` starts at
min(res, eps) / 2 with res, the distance found in that run, still 1e10:
epsilon / 2). The original FAB code's min(best distance so far, epsilon) / 2
is the same on those examples, whose best distance, if any, exceeds epsilon.

The projection (`linf_projection`) is derived here: the largest change of
g . z reachable with |d|_inf <= r inside the box is
sum_i |g_i| min(r, room_i), room_i the distance to the box face g_i points
at; it is piecewise linear, increasing and concave in r, so Newton's steps
from r = 0 find the smallest sufficient r exactly in a few passes (the
reference sorts the rooms instead: the same r, a sort per row per step).
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from tf_atalp.attacks.apgd import random_point_at_radius
from tf_atalp.attacks.base import (
    AttackBase, AttackResult, check_images, checked_record_at, correct_predictions)
from tf_atalp.attacks.composite import restart_seed
from tf_atalp.attacks.model_fns import (
    defines_own_gradient, objective_and_gradient, objectives_and_jacobian)
from tf_atalp.attacks.pgd import seed_tensor

ALPHA_MAX = 0.1
ETA = 1.05
BETA = 0.9
RESTART_RADIUS = 0.5  # restarts start at this fraction of epsilon from the image
GRADIENT_FLOOR = 1e-12  # in |f| / ||g||_1, as the reference code
SUCCESS_SLACK = 1 + 1e-6  # a distance this close above epsilon still counts


def _smallest_radius(room: tf.Tensor, weight: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """float32 [N]: the smallest r >= 0 with reach(r) = sum_i weight_i min(r, room_i) >= target.

    reach is increasing, concave and piecewise linear in r, so Newton's steps
    from r = 0 (each solving the linear piece through the current r, the
    coordinates with room_i <= r full) rise to the answer without passing it,
    and the step after which no more coordinates fill is exact: typically a
    few passes over [N, D] instead of sorting each row. Rows that cannot
    reach `target` come back as large values (the caller replaces them).
    """
    def newton_step(radius, filled_count, _):
        full = room <= radius[:, None]
        filled = tf.reduce_sum(tf.where(full, weight * room, 0.0), axis=1)
        free = tf.reduce_sum(tf.where(full, 0.0, weight), axis=1)
        radius = tf.maximum(radius, (target - filled) / tf.maximum(free, 1e-12))
        count = tf.reduce_sum(tf.cast(room <= radius[:, None], tf.int32), axis=1)
        return radius, count, tf.reduce_any(count != filled_count)

    start = tf.zeros_like(target)
    count = tf.reduce_sum(tf.cast(room <= 0.0, tf.int32), axis=1)
    radius, _, _ = tf.while_loop(lambda radius, count, changed: changed, newton_step,
                                 (start, count, tf.constant(True)),
                                 maximum_iterations=tf.shape(room)[1] + 1)
    return radius


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
    feasible = tf.reduce_sum(weight * room, axis=1) >= target
    radius = tf.where(feasible, _smallest_radius(room, weight, target),
                      tf.reduce_max(room, axis=1))
    radius = tf.maximum(radius, 0.0)
    step = direction * tf.minimum(radius[:, None], room)
    return tf.where(tf.equal(normals, 0.0), 0.0, step)


def _difference_and_gradient(model_fn, images, labels, others):
    """(f [N] = z_y - z_c, df/dx [N, ...]) at `images` for classes `others` [N] (EoT/BPDA apply)."""
    def difference(logits, y):
        logits = tf.cast(logits, tf.float32)
        return tf.gather(logits, y, batch_dims=1) - tf.gather(logits, others, batch_dims=1)
    logits, gradient = objective_and_gradient(model_fn, difference, images, labels)
    return difference(logits, labels), gradient


def _any_batch_size(*tensors) -> list:
    """Loop shape invariants: each tensor's shape with the batch size left open.

    (The static batch sizes of the arguments and of a model's output need not
    agree inside a trace, so the loop variables may not keep theirs.)
    """
    return [(tensor, tf.TensorShape([None]).concatenate(tensor.shape[1:])) for tensor in tensors]


def _closest_boundary(model_fn, images, labels, candidates):
    """(f [N], df/dx [N, ...]) of the candidate class [N, C] whose linearised boundary is closest.

    L-inf distance |f| / ||g||_1. A model function with a gradient of its own
    (EoT, BPDA) takes one forward-backward pass per candidate column
    (`_closest_boundary_per_class`); the others one forward pass and one
    Jacobian of all C differences (`_closest_boundary_at_once`): the same
    choice and gradient, without C - 1 of the forward passes. With C = 1
    (FAB-T) both are that class's boundary.
    """
    if defines_own_gradient(model_fn) or candidates.shape[1] == 1:
        return _closest_boundary_per_class(model_fn, images, labels, candidates)
    return _closest_boundary_at_once(model_fn, images, labels, candidates)


def _closest_boundary_at_once(model_fn, images, labels, candidates):
    """`_closest_boundary` from one forward pass and the Jacobian of every difference."""
    def differences(logits, y):
        logits = tf.cast(logits, tf.float32)
        return (tf.gather(logits, y, batch_dims=1)[:, None]
                - tf.gather(logits, candidates, batch_dims=1))

    values, gradients = objectives_and_jacobian(model_fn, differences, images, labels)
    norms = tf.reduce_sum(tf.abs(tf.reshape(
        gradients, tf.concat([tf.shape(values), [-1]], 0))), axis=2)
    # The first closest column, as the per-class loop keeps (strictly closer only).
    closest = tf.argmin(tf.abs(values) / (norms + GRADIENT_FLOOR), axis=1, output_type=tf.int32)
    return (tf.gather(values, closest[:, None], batch_dims=1)[:, 0],
            tf.gather(gradients, closest, batch_dims=1))


def _closest_boundary_per_class(model_fn, images, labels, candidates):
    """`_closest_boundary` with one forward-backward pass per candidate column, each kept only
    while it is the closest so far (the memory of one gradient)."""
    batch = tf.shape(images)[0]
    best_difference = tf.zeros([batch])
    best_gradient = tf.zeros_like(images)
    best_distance = tf.fill([batch], np.float32(np.inf))
    for column in tf.range(tf.shape(candidates)[1]):
        tf.autograph.experimental.set_loop_options(shape_invariants=_any_batch_size(
            best_difference, best_gradient, best_distance))
        difference, gradient = _difference_and_gradient(model_fn, images, labels,
                                                         candidates[:, column])
        norm = tf.reduce_sum(tf.abs(tf.reshape(gradient, [batch, -1])), axis=1)
        distance = tf.abs(difference) / (norm + GRADIENT_FLOOR)
        closer = distance < best_distance
        best_difference = tf.where(closer, difference, best_difference)
        best_gradient = tf.where(closer[:, None, None, None], gradient, best_gradient)
        best_distance = tf.where(closer, distance, best_distance)
    return best_difference, best_gradient


@tf.function(reduce_retracing=True)
def _fab_loop(model_fn, clean, start, labels, candidates, iterations):
    """One FAB run from `start` towards the closest boundary with a class of `candidates` [N, C].

    Returns (closest adversarial found [N, ...], its L-inf distance from `clean` [N], 1e10
    where none was found).
    """
    batch = tf.shape(clean)[0]
    flat = tf.reshape(clean, [batch, -1])
    x = start
    best = clean
    best_distance = 1e10 * tf.ones_like(flat[:, 0])
    for _ in tf.range(iterations):
        tf.autograph.experimental.set_loop_options(
            shape_invariants=_any_batch_size(x, best, best_distance))
        difference, gradient = _closest_boundary(model_fn, x, labels, candidates)
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


class _MinimalDistortionSearch(AttackBase):
    """What FAB and FAB-T share: the checks, the runs on the points still robust, the result.

    A subclass is a frozen dataclass with `epsilon`, `iterations` and
    `restarts`, and defines `name` and `_candidates`.
    """

    name = ""

    def __post_init__(self):
        super().__post_init__()
        counts = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)
                  if field.name != "epsilon"}
        if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1
               for v in counts.values()):
            raise ValueError(f"`{'`, `'.join(counts)}` must be ints >= 1. Received: {counts}")

    def _candidates(self, logits: tf.Tensor, labels: tf.Tensor) -> list[tf.Tensor]:
        """One int32 [N, C] tensor per run: the classes whose boundaries that run may go to."""
        raise NotImplementedError

    def attack(self, model_fn, images, labels, *, seed=None, record_at=None) -> AttackResult:
        """Every run; the result holds, per example, the closest adversarial within epsilon
        (else the image).

        Each run attacks only the correctly classified examples not yet broken
        within epsilon. `record_at`: counts in [0, iterations]. FAB's iterates
        are not a sequence of ever stronger attacks (it moves back towards the
        image once adversarial), so iterate 0 is scored on the clean image and
        every later count holds the final outcome.
        """
        clean = tf.cast(check_images(images), tf.float32)
        labels = tf.cast(labels, tf.int32)
        record_at = checked_record_at(record_at, self.iterations)
        logits = model_fn(clean)
        correct = correct_predictions(logits, labels)
        best = clean
        best_distance = tf.fill([tf.shape(clean)[0]], np.float32(1e10))
        limit = self.epsilon * SUCCESS_SLACK
        runs = [(candidates, restart) for candidates in self._candidates(logits, labels)
                for restart in range(self.restarts)]
        for run, (candidates, restart) in enumerate(runs):
            alive = tf.where(tf.logical_and(correct, best_distance > limit))[:, 0]
            if tf.executing_eagerly() and int(tf.size(alive)) == 0:
                break  # (in a graph the remaining runs get empty batches)
            run_clean = tf.gather(clean, alive)
            start = run_clean if restart == 0 else random_point_at_radius(
                run_clean, RESTART_RADIUS * self.epsilon, seed_tensor(restart_seed(seed, run)))
            found, distance = _fab_loop(model_fn, run_clean, start, tf.gather(labels, alive),
                                        tf.gather(candidates, alive),
                                        tf.constant(self.iterations, tf.int32))
            previous = tf.gather(best_distance, alive)
            kept = tf.where((distance < previous)[:, None, None, None], found,
                            tf.gather(best, alive))
            best = tf.tensor_scatter_nd_update(best, alive[:, None], kept)
            best_distance = tf.tensor_scatter_nd_update(best_distance, alive[:, None],
                                                        tf.minimum(distance, previous))
        broken = tf.logical_and(correct, best_distance <= limit)
        adversarial = tf.where(tf.reshape(broken, [-1, 1, 1, 1]), best, clean)
        if record_at is None:
            return AttackResult(adversarial)
        counts = tf.constant(record_at, tf.int32)
        still = tf.logical_and(correct, tf.logical_not(broken))
        correct_at = tf.where(tf.equal(counts, 0)[:, None], correct[None, :], still[None, :])
        return AttackResult(adversarial, counts, correct_at)

    def describe(self) -> dict:
        return {"attack": self.name, "norm": "linf", "epsilon": self.epsilon,
                "iterations": self.iterations, "restarts": self.restarts,
                "alpha_max": ALPHA_MAX, "eta": ETA, "beta": BETA, "targeted": False,
                "random_start": self.restarts > 1,
                "restart_radius": RESTART_RADIUS * self.epsilon if self.restarts > 1 else None}


@keras.saving.register_keras_serializable(package="tf_atalp")
@dataclasses.dataclass(frozen=True)
class FAB(_MinimalDistortionSearch):
    """Untargeted L-inf FAB: each step towards the closest linearised boundary of any class.

    Attributes:
      epsilon: the radius a found adversarial must lie within to count; also
        sets the restarts' random starts (epsilon / 2 from the image).
      iterations: steps per run (the reference: 100); each takes one
        forward pass and the Jacobian of the K - 1 logit differences, plus
        one forward pass (with EoT or BPDA: K - 1 forward-backward passes,
        one per other class, and one forward pass).
      restarts: runs; the first from the image, the others from random points
        (the reference: 1, and 5 in AutoAttack's "plus" version).
    """

    epsilon: float
    iterations: int = 100
    restarts: int = 1

    name = "fab"

    def _candidates(self, logits, labels):
        classes = int(logits.shape[-1])
        # Every class but y, in class order (y's one-hot 1 sorts last).
        others = tf.argsort(tf.one_hot(labels, classes), axis=-1, stable=True)[:, :-1]
        return [tf.cast(others, tf.int32)]


@keras.saving.register_keras_serializable(package="tf_atalp")
@dataclasses.dataclass(frozen=True)
class FABTargeted(_MinimalDistortionSearch):
    """L-inf FAB-T: per target class (the 2nd, 3rd, ... most likely on the clean image).

    Attributes:
      epsilon: the radius a found adversarial must lie within to count.
      iterations: steps per target class (the reference: 100).
      target_classes: how many targets (the reference: 9; at most K - 1).
      restarts: runs per target; the first from the image, the others from
        random points epsilon / 2 away (the reference: 1).
    """

    epsilon: float
    iterations: int = 100
    target_classes: int = 9
    restarts: int = 1

    name = "fab-t"

    def _candidates(self, logits, labels):
        ranked = tf.argsort(logits, axis=-1, direction="DESCENDING", stable=True)
        runs = min(self.target_classes, int(logits.shape[-1]) - 1)
        return [tf.cast(ranked[:, run + 1:run + 2], tf.int32) for run in range(runs)]

    def describe(self) -> dict:
        return {**super().describe(), "target_classes": self.target_classes}
