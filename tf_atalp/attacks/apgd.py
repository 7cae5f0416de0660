"""APGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness...", Algorithm 1), L-inf.

Auto-PGD needs no step size: it starts at 2 * epsilon and halves it at
checkpoints where progress stalled, restarting from the best point found;
each step mixes the new signed-gradient step with the previous move
(momentum 0.75). Losses, by their names in `objectives.py` (PGD's objectives):
cross-entropy ("cross_entropy", APGD-CE) and the Difference of Logits Ratio
("dlr", APGD-DLR; `objectives.dlr_loss`), invariant to shifting and scaling
the logits. APGD-T runs the
targeted DLR towards each of the `target_classes` most likely other classes
(9, or K - 1 with fewer classes) in turn; an example counts as robust only
if it survives every run. Defaults follow the reference code
(fra31/auto-attack, autopgd_base.py): 100 iterations, checkpoints at
p_0 = 0, p_1 = 0.22 and p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06) of
the iterations, rho = 0.75, one restart in the "standard" version.
"""

import dataclasses
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from tf_atalp.attacks.base import (
    AttackBase, AttackResult, check_images, checked_record_at, correct_predictions)
from tf_atalp.attacks.model_fns import objective_and_gradient
from tf_atalp.attacks.objectives import get_objective, targeted_dlr_loss
from tf_atalp.attacks.pgd import linf_project, seed_tensor

LOSSES = ("cross_entropy", "dlr")  # names of `objectives.OBJECTIVES`
# The reference's short names, in the attack's name (APGD-CE, APGD-DLR).
_SHORT_NAMES = {"cross_entropy": "ce", "dlr": "dlr"}
MOMENTUM = 0.75
RHO = 0.75


def checkpoints(iterations: int) -> list[int]:
    """The iterations (1-based counts) after which APGD checks its progress.

    The reference code's schedule: the first window is max(int(0.22 n), 1)
    steps, and each next one max(int(0.03 n), 1) shorter, but at least
    max(int(0.06 n), 1).
    """
    window = max(int(0.22 * iterations), 1)
    shrink, shortest = max(int(0.03 * iterations), 1), max(int(0.06 * iterations), 1)
    marks, at = [], 0
    while at + window <= iterations:
        at += window
        marks.append(at)
        window = max(window - shrink, shortest)
    return marks


def _apgd_loop(model_fn, clean, labels, targets, start, epsilon, iterations, is_checkpoint,
               window, *, loss: str, targeted_loss: bool):
    """One APGD run from `start`; returns (best adversarial [N, ...], correct_at [iterations + 1, N]).

    `is_checkpoint[i]` (bool [iterations]) marks the end of a window of
    `window[i]` steps after step i (0-based).
    """
    if targeted_loss:
        def objective(logits, y):
            return targeted_dlr_loss(logits, y, targets)
    else:
        objective = get_objective(loss)

    def evaluate(images):
        logits, gradient = objective_and_gradient(model_fn, objective, images, labels)
        return objective(logits, labels), gradient, correct_predictions(logits, labels)

    x = start
    loss_now, grad, correct = evaluate(x)
    step = 2.0 * epsilon * tf.ones_like(clean[..., :1, :1, :1])
    x_old = x
    x_best, grad_best, loss_best = x, grad, loss_now
    x_adv = x
    fooled = tf.logical_not(correct)
    correct_at = tf.TensorArray(tf.bool, size=iterations + 1).write(0, correct)
    loss_previous = loss_now
    increases = tf.zeros_like(loss_now)
    reduced_last = tf.zeros_like(correct)
    loss_best_last = loss_best
    for i in tf.range(iterations):
        momentum = tf.where(i > 0, MOMENTUM, 1.0)
        moved = x - x_old
        x_old = x
        z = linf_project(x + step * tf.sign(grad), clean, epsilon)
        x = linf_project(x + momentum * (z - x) + (1.0 - momentum) * moved, clean, epsilon)
        loss_now, grad, correct = evaluate(x)
        newly = tf.logical_and(tf.logical_not(correct), tf.logical_not(fooled))
        x_adv = tf.where(newly[:, None, None, None], x, x_adv)
        fooled = tf.logical_or(fooled, tf.logical_not(correct))
        correct_at = correct_at.write(i + 1, correct)
        increases += tf.cast(loss_now > loss_previous, tf.float32)
        loss_previous = loss_now
        better = loss_now > loss_best
        shaped = better[:, None, None, None]
        x_best = tf.where(shaped, x, x_best)
        grad_best = tf.where(shaped, grad, grad_best)
        loss_best = tf.where(better, loss_now, loss_best)
        if is_checkpoint[i]:
            oscillating = increases <= tf.cast(window[i], tf.float32) * RHO
            no_progress = tf.logical_and(tf.logical_not(reduced_last),
                                         loss_best_last >= loss_best)
            reduce = tf.logical_or(oscillating, no_progress)
            reduced_last = reduce
            loss_best_last = loss_best
            shaped = reduce[:, None, None, None]
            step = tf.where(shaped, step / 2.0, step)
            x = tf.where(shaped, x_best, x)
            grad = tf.where(shaped, grad_best, grad)
            increases = tf.zeros_like(increases)
        x = tf.stop_gradient(x)
    x_adv = tf.where(fooled[:, None, None, None], x_adv, x_best)
    return x_adv, correct_at.stack()


_compiled = tf.function(_apgd_loop, reduce_retracing=True)


def random_point_at_radius(clean: tf.Tensor, radius: float, seed) -> tf.Tensor:
    """The reference code's random start: x + radius * t / max|t|, clipped to [0, 1].

    t is uniform in [-1, 1] per pixel, so before clipping the point lies at
    L-inf distance exactly `radius` (APGD: epsilon; FAB's restarts: epsilon / 2).
    `seed`: None (a fresh draw) or an int64 [2] stateless seed.
    """
    shape = tf.shape(clean)
    noise = (tf.random.uniform(shape, -1.0, 1.0) if seed is None
             else tf.random.stateless_uniform(shape, seed, -1.0, 1.0))
    scale = tf.reduce_max(tf.abs(noise), axis=tf.range(1, tf.rank(clean)), keepdims=True)
    return tf.clip_by_value(clean + radius * noise / scale, 0.0, 1.0)


@keras.saving.register_keras_serializable(package="tf_atalp")
@dataclasses.dataclass(frozen=True)
class APGD(AttackBase):
    """L-inf APGD-CE / APGD-DLR, or APGD-T with `target_classes` > 0.

    Attributes:
      epsilon: radius, pixel units in [0, 1].
      iterations: steps per run (per target class for APGD-T).
      loss: "cross_entropy" or "dlr" (objectives' names; ignored by APGD-T,
        which uses the targeted DLR).
      target_classes: 0 for the untargeted attack; > 0 for APGD-T: that many
        runs, towards the 2nd, 3rd, ... most likely class on the clean image
        (at most K - 1).
      random_start: start at the reference code's random point (else the image).
    """

    epsilon: float
    iterations: int = 100
    loss: str = "cross_entropy"
    target_classes: int = 0
    random_start: bool = True

    def __post_init__(self):
        super().__post_init__()
        if self.iterations < 1:
            raise ValueError(f"`iterations` must be >= 1. Received: {self.iterations}")
        if self.loss not in LOSSES:
            renamed = ' ("ce" is now "cross_entropy")' if self.loss == "ce" else ""
            raise ValueError(f"`loss` must be one of {LOSSES}{renamed}. "
                             f"Received: loss={self.loss!r}")
        if self.target_classes < 0:
            raise ValueError(f"`target_classes` must be >= 0. Received: {self.target_classes}")

    @property
    def name(self) -> str:
        return "apgd-t" if self.target_classes else f"apgd-{_SHORT_NAMES[self.loss]}"

    def _schedule(self):
        marks = set(checkpoints(self.iterations))
        is_checkpoint = np.zeros(self.iterations, bool)
        window = np.zeros(self.iterations, np.int32)
        previous = 0
        for mark in sorted(marks):
            is_checkpoint[mark - 1] = True
            window[mark - 1] = mark - previous
            previous = mark
        return tf.constant(is_checkpoint), tf.constant(window)

    def _run(self, model_fn, clean, labels, targets, seed, targeted_loss):
        start = random_point_at_radius(clean, self.epsilon, seed) if self.random_start else clean
        is_checkpoint, window = self._schedule()
        return _compiled(model_fn, clean, labels, targets, start,
                         tf.constant(self.epsilon, tf.float32),
                         tf.constant(self.iterations, tf.int32), is_checkpoint, window,
                         loss=self.loss, targeted_loss=targeted_loss)

    def attack(self, model_fn, images, labels, *, seed=None,
               record_at: Sequence[int] | None = None) -> AttackResult:
        """Runs APGD (or each APGD-T target in turn); see `tf_atalp.attacks.base.Attack`.

        For APGD-T, each target runs only on the examples the earlier targets
        did not fool; iterate k of the result is correct only if iterate k of
        every run on it is, and the adversarial image is the first run's that
        fooled the model (else the last run's best).
        """
        clean = tf.cast(check_images(images), tf.float32)
        labels = tf.cast(labels, tf.int32)
        record_at = checked_record_at(record_at, self.iterations)
        seed = seed_tensor(seed)
        if not self.target_classes:
            adversarial, correct_at = self._run(model_fn, clean, labels, labels, seed, False)
        else:
            logits = model_fn(clean)
            classes = int(logits.shape[-1])
            runs = min(self.target_classes, classes - 1)
            ranked = tf.argsort(logits, axis=-1, direction="DESCENDING", stable=True)
            adversarial, correct_at = None, None
            for run in range(runs):
                targets = tf.cast(ranked[:, run + 1], tf.int32)
                run_seed = None if seed is None else seed + tf.constant([0, run + 1], tf.int64)
                if adversarial is None:
                    adversarial, correct_at = self._run(model_fn, clean, labels, targets,
                                                        run_seed, True)
                    continue
                # Later targets attack only the examples no earlier run fooled (as the
                # reference code): a fooled example keeps its image and its record.
                alive = tf.where(tf.reduce_all(correct_at, axis=0))[:, 0]
                if tf.executing_eagerly() and int(tf.size(alive)) == 0:
                    break
                images_run, correct_run = self._run(
                    model_fn, tf.gather(clean, alive), tf.gather(labels, alive),
                    tf.gather(targets, alive), run_seed, True)
                adversarial = tf.tensor_scatter_nd_update(adversarial, alive[:, None],
                                                          images_run)
                rows = tf.transpose(correct_at)
                correct_at = tf.transpose(tf.tensor_scatter_nd_update(
                    rows, alive[:, None], tf.logical_and(tf.gather(rows, alive),
                                                         tf.transpose(correct_run))))
        if record_at is None:
            return AttackResult(adversarial)
        record = tf.constant(record_at, tf.int32)
        return AttackResult(adversarial, record, tf.gather(correct_at, record))

    def describe(self) -> dict:
        described = {"attack": self.name, "norm": "linf", "epsilon": self.epsilon,
                     "iterations": self.iterations, "loss": "dlr-targeted"
                     if self.target_classes else self.loss, "random_start": self.random_start,
                     "targeted": False, "momentum": MOMENTUM, "rho": RHO,
                     "initial_step_size": 2 * self.epsilon}
        if self.target_classes:
            described["target_classes"] = self.target_classes
        return described


def apgd_total_steps(attack: APGD, num_classes: int) -> int:
    """Forward-backward passes per example of one run of `attack` (budget comparisons)."""
    runs = min(attack.target_classes, num_classes - 1) if attack.target_classes else 1
    return runs * (attack.iterations + 1)
