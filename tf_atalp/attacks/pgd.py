"""L-inf projected gradient descent (Madry et al.) and FGSM, as `Attack` objects.

Composed from small parts, as in the deepmind adversarial-robustness code:
`random_start` (initialise), an objective (`objectives.py`), `linf_step`
(step) and `linf_project` (project onto the epsilon-ball intersected with
[0, 1]). Images are float in [0, 1] and epsilon and step size are in the
same pixel units (0.25 = 64/256).

    attack = PGD(epsilon=8/255, step_size=2/255, iterations=10)
    result = attack.attack(inference_logits(model), images, labels, seed=0)

Cost: `iterations` x (forward + input gradient); with a trace asked for
(`record_at`), one more forward pass scores the final iterate; an objective
that compares with the clean prediction (`kl_to_clean`) one forward pass more.

The model function says how the network runs: `inference_logits(model)`
(BatchNorm frozen) or `training_logits(model)` (`tf_atalp.attacks.model_fns`).
"""

import dataclasses
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from tf_atalp.attacks.base import (
    AttackBase, AttackResult, check_images, checked_record_at, correct_predictions)
from tf_atalp.attacks.model_fns import objective_and_gradient
from tf_atalp.attacks.objectives import Objective, get_objective, objective_name

START_NOISES = ("uniform", "gaussian")
# The gaussian start's standard deviation, pixel units: TRADES' and MART's code
# (yaodongyu/TRADES trades.py, YisenWang/MART mart.py) start at clean + 0.001 * N(0, 1).
GAUSSIAN_START_STDDEV = 0.001


def linf_project(images: tf.Tensor, clean_images: tf.Tensor, epsilon) -> tf.Tensor:
    """Projects onto {x : |x - clean|_inf <= epsilon} intersected with [0, 1]."""
    images = tf.clip_by_value(images, clean_images - epsilon, clean_images + epsilon)
    return tf.clip_by_value(images, 0.0, 1.0)


def random_start(clean_images: tf.Tensor, epsilon, seed=None, noise: str = "uniform"
                 ) -> tf.Tensor:
    """A random point near the images, in the epsilon-ball and [0, 1].

    `noise`: "uniform" (a uniform draw from the epsilon-ball, Madry et al.) or
    "gaussian" (clean + GAUSSIAN_START_STDDEV * N(0, 1), TRADES and MART).
    `seed`: None for a fresh draw every call, or a shape-[2] int tensor for a
    stateless (reproducible) draw.
    """
    if noise not in START_NOISES:
        raise ValueError(f"`noise` must be one of {START_NOISES}. Received: noise={noise!r}")
    shape = tf.shape(clean_images)
    if noise == "gaussian":
        draw = (tf.random.normal(shape) if seed is None
                else tf.random.stateless_normal(shape, seed))
        offset = GAUSSIAN_START_STDDEV * draw
    else:
        draw = (tf.random.uniform(shape, -1.0, 1.0) if seed is None
                else tf.random.stateless_uniform(shape, seed, -1.0, 1.0))
        offset = epsilon * draw
    return linf_project(clean_images + offset, clean_images, epsilon)


def linf_step(images: tf.Tensor, gradient: tf.Tensor, step_size) -> tf.Tensor:
    """One signed-gradient ascent step (FGSM direction)."""
    return images + step_size * tf.sign(gradient)


def seed_tensor(seed):
    """None, or the int64 [2] stateless seed of an int or of a [2] seed tensor."""
    if seed is None:
        return None
    if isinstance(seed, int):
        return tf.constant([seed, 0], tf.int64)
    seed = tf.cast(seed, tf.int64)
    if seed.shape.rank != 1 or seed.shape[0] != 2:
        raise ValueError(f"`seed` must be an int or a [2] tensor. Received shape: {seed.shape}")
    return seed


def _not_yet_fooled(logits, labels, targeted):
    """bool [N]: the attack has not (yet) succeeded on this example."""
    correct = correct_predictions(logits, labels)
    return tf.logical_not(correct) if targeted else correct


def _pgd_loop(model_fn, clean_images, labels, epsilon, step_size, iterations, record_at,
              *, random_init, objective, targeted, trace, seed, start=None,
              start_noise="uniform"):
    """The attack loop; `record_at` is a tensor.

    `iterations`: a tensor (a `tf.range` loop, one trace for every count) or
    a Python int (the loop unrolled: what XLA needs, see `_loop_count`).
    `start`: the first iterate (continuing an earlier run), else the random
    start or the clean images.
    """
    clean_images = tf.cast(clean_images, tf.float32)
    labels = tf.cast(labels, tf.int32)
    epsilon = tf.cast(epsilon, tf.float32)
    step_size = tf.cast(step_size, tf.float32)
    objective_fn = get_objective(objective).bind(model_fn, clean_images)
    sign = -1.0 if targeted else 1.0

    def signed_objective(logits, attack_labels):
        return sign * objective_fn(logits, attack_labels)

    if start is not None:
        images = tf.cast(start, tf.float32)
    else:
        images = (random_start(clean_images, epsilon, seed, start_noise) if random_init
                  else clean_images)
    batch = tf.shape(labels)[0]
    correct_at = tf.ones([tf.shape(record_at)[0], batch], tf.bool)

    for i in range(iterations) if isinstance(iterations, int) else tf.range(iterations):
        logits, gradient = objective_and_gradient(model_fn, signed_objective, images, labels)
        if trace:
            recorded_now = tf.equal(record_at, i)[:, None]
            correct_at = tf.where(recorded_now, _not_yet_fooled(logits, labels, targeted)[None, :],
                                  correct_at)
        images = linf_project(linf_step(images, gradient, step_size), clean_images, epsilon)
        images = tf.stop_gradient(images)

    if trace:
        correct = _not_yet_fooled(model_fn(images), labels, targeted)
        correct_at = tf.where(tf.equal(record_at, iterations)[:, None], correct[None, :],
                              correct_at)
    return images, correct_at


_compiled_loops: dict[bool, Callable] = {}
# With early stop, the examples that have been fooled are dropped every this many steps.
EARLY_STOP_SEGMENT = 10


def _compiled_loop(jit_compile: bool) -> Callable:
    """One `tf.function` per XLA setting; it retraces per model function and options only."""
    if jit_compile not in _compiled_loops:
        _compiled_loops[jit_compile] = tf.function(
            _pgd_loop, jit_compile=jit_compile, reduce_retracing=True)
    return _compiled_loops[jit_compile]


def _loop_count(iterations: int, unrolled: bool):
    """The loop's `iterations` argument: a Python int to unroll it, else an int32 tensor.

    Under XLA the loop is unrolled: XLA:CPU emits the convolutions inside a
    while loop as naive loops instead of calls to its convolution runtime
    (9.4x slower; `bench/xla_probe.py`), and unrolled it matches plain
    `tf.function`. The price is one trace per count and a compile time that
    grows with it.
    """
    return int(iterations) if unrolled else tf.constant(iterations, tf.int32)


def _attack_labels(labels, targeted, target_labels):
    """The labels the objective is computed against."""
    if targeted:
        if target_labels is None:
            raise ValueError("A targeted attack needs `target_labels`.")
        return tf.cast(target_labels, tf.int32)
    if target_labels is not None:
        raise ValueError("`target_labels` were given, but the attack is untargeted.")
    return tf.cast(labels, tf.int32)


@keras.saving.register_keras_serializable(package="tf_atalp")
@dataclasses.dataclass(frozen=True)
class PGD(AttackBase):
    """L-inf PGD (Madry et al.): `iterations` signed-gradient steps, projected.

    Attributes:
      epsilon: radius of the L-inf ball, pixel units in [0, 1].
      step_size: size of one signed-gradient step, pixel units in (0, 1].
      iterations: number of steps (>= 0; 0 returns the start point).
      random_start: start at a random point near the image (`start_noise`) or
        at the image.
      objective: "cross_entropy", "margin" (Carlini-Wagner: best other logit
        minus true logit), "kl_to_clean" (KL from the clean prediction, the
        TRADES attack; untargeted), or an `objectives.Objective`.
      targeted: move towards `target_labels` instead of away from the labels.
      jit_compile: compile the loop with XLA, unrolled (one compilation per
        iteration count, its time growing with the count). How the attack
        runs, not what it computes: left out of `describe()`.
      early_stop: with `record_at`, stop attacking an example once an iterate
        has fooled the model (checked every EARLY_STOP_SEGMENT steps; run
        eagerly, not inside a `tf.function`). Worst-iterate accuracy is
        exactly that of attacking every example to the end; the accuracy at
        a later count k counts such an example as fooled (the attacker keeps
        the point that fooled the model), so it equals worst-iterate accuracy.
      start_noise: the random start: "uniform" in the epsilon-ball (Madry) or
        "gaussian", clean + 0.001 * N(0, 1) (TRADES, MART).
    """

    epsilon: float
    step_size: float
    iterations: int
    random_start: bool = True
    objective: str | Objective = "cross_entropy"
    targeted: bool = False
    jit_compile: bool = False
    early_stop: bool = False
    start_noise: str = "uniform"

    zero_epsilon_allowed = True  # epsilon 0: the clean accuracy through the same code

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 < self.step_size <= 1.0:
            raise ValueError(
                f"`step_size` must be in (0, 1]. Received: step_size={self.step_size}")
        if self.iterations < 0:
            raise ValueError(
                f"`iterations` must be >= 0. Received: iterations={self.iterations}")
        objective = get_objective(self.objective)  # raises for an unknown name
        try:  # a registered objective is held by name: one form, saved as it is
            object.__setattr__(self, "objective", objective_name(objective))
        except ValueError:
            pass
        if objective.needs_clean_logits and self.targeted:
            raise ValueError(f"The objective {objective.name!r} is untargeted. "
                             "Received: targeted=True")
        if self.start_noise not in START_NOISES:
            raise ValueError(f"`start_noise` must be one of {START_NOISES}. "
                             f"Received: start_noise={self.start_noise!r}")

    def attack(self, model_fn, images, labels, *, seed=None, record_at=None,
               target_labels=None) -> AttackResult:
        """Runs the attack on `model_fn`; see `tf_atalp.attacks.base.Attack`.

        `record_at`: iteration counts in [0, iterations] whose iterates are
        scored into `result.correct_at`. `target_labels`: int [N], required
        when `targeted`. Callable inside a `tf.function`.
        """
        images = check_images(images)
        record_at = checked_record_at(record_at, self.iterations)
        if self.early_stop and record_at is not None and tf.executing_eagerly():
            return self._attack_with_early_stop(
                model_fn, images, _attack_labels(labels, self.targeted, target_labels), seed,
                record_at)
        record_tensor = tf.constant(record_at or [], tf.int32)
        adversarial, correct_at = _compiled_loop(self.jit_compile)(
            model_fn, images, _attack_labels(labels, self.targeted, target_labels),
            *self._radius_and_step(), _loop_count(self.iterations, self.jit_compile),
            record_tensor,
            random_init=self.random_start, objective=self.objective, targeted=self.targeted,
            trace=record_at is not None, seed=seed_tensor(seed), start_noise=self.start_noise)
        if record_at is None:
            return AttackResult(adversarial)
        return AttackResult(adversarial, record_tensor, correct_at)

    def _radius_and_step(self) -> tuple[tf.Tensor, tf.Tensor]:
        """epsilon and step_size as float32 tensors: one trace of the loop serves every value."""
        return tf.constant(self.epsilon, tf.float32), tf.constant(self.step_size, tf.float32)

    def _start_point(self, clean: tf.Tensor, seed) -> tf.Tensor:
        """Iterate 0 for the whole batch: the random start (drawn from `seed`) or the images."""
        if not self.random_start:
            return clean
        return random_start(clean, tf.constant(self.epsilon, tf.float32), seed_tensor(seed),
                            self.start_noise)

    def _attack_with_early_stop(self, model_fn, images, attack_labels, seed,
                                record_at: list[int]) -> AttackResult:
        """`attack` in segments of EARLY_STOP_SEGMENT steps, each on the examples not yet fooled.

        The random start is drawn for the whole batch (as without early stop),
        so every example follows the same path as in one full run until it is
        dropped.
        """
        clean = tf.cast(images, tf.float32)
        current = self._start_point(clean, seed).numpy()
        record = np.asarray(record_at)
        correct = np.ones([len(record), current.shape[0]], bool)
        active = np.arange(current.shape[0])
        loop = _compiled_loop(self.jit_compile)
        boundaries = sorted(set(range(0, self.iterations, EARLY_STOP_SEGMENT))
                            | {self.iterations})
        for begin, end in zip(boundaries[:1] + boundaries[:-1], boundaries):
            if begin == end and begin > 0 or active.size == 0:
                continue
            steps = end - begin
            adversarial, correct_at = loop(
                model_fn, tf.gather(clean, active), tf.gather(attack_labels, active),
                *self._radius_and_step(), _loop_count(steps, self.jit_compile),
                tf.range(steps + 1, dtype=tf.int32), random_init=False,
                objective=self.objective, targeted=self.targeted, trace=True, seed=None,
                start=tf.constant(current[active]))
            correct_at = correct_at.numpy()  # [steps + 1, active]: every iterate begin..end
            current[active] = adversarial.numpy()
            rows = np.flatnonzero((record >= begin) & (record <= end))
            correct[np.ix_(rows, active)] = correct_at[record[rows] - begin]
            fooled = ~correct_at.all(axis=0)
            correct[np.ix_(np.flatnonzero(record > end), active[fooled])] = False
            active = active[~fooled]
        return AttackResult(tf.constant(current), tf.constant(record, tf.int32),
                            tf.constant(correct))

    def iterates(self, model_fn, images, labels, *, at: Sequence[int], seed=None,
                 target_labels=None) -> dict[int, tf.Tensor]:
        """{k: the iterate after k steps} for each k in `at`, from ONE run of max(at) steps.

        The run is made in segments between the counts, each continuing from
        the last iterate, so the iterates are those of a single run of
        `max(at)` steps with the same seed (what a transfer attack scores on
        other models). Runs eagerly.
        """
        counts = sorted({int(k) for k in at})
        if not counts or counts[0] < 0 or counts[-1] > self.iterations:
            raise ValueError(f"`at` must lie in [0, iterations={self.iterations}]. "
                             f"Received: at={list(at)}")
        clean = tf.cast(check_images(images), tf.float32)
        attack_labels = _attack_labels(labels, self.targeted, target_labels)
        current = self._start_point(clean, seed)
        loop = _compiled_loop(self.jit_compile)
        iterates, done = {}, 0
        for count in counts:
            if count > done:
                current, _ = loop(
                    model_fn, clean, attack_labels, *self._radius_and_step(),
                    _loop_count(count - done, self.jit_compile), tf.constant([], tf.int32),
                    random_init=False, objective=self.objective, targeted=self.targeted,
                    trace=False, seed=None, start=current)
                done = count
            iterates[count] = current
        return iterates

    def describe(self) -> dict:
        """The attack's settings as a JSON-ready dict."""
        described = {"attack": "pgd", "norm": "linf", "epsilon": self.epsilon,
                     "step_size": self.step_size, "iterations": self.iterations,
                     "random_start": self.random_start,
                     "objective": get_objective(self.objective).name,
                     "targeted": self.targeted}
        if self.random_start and self.start_noise != "uniform":
            described["start_noise"] = self.start_noise
        if self.early_stop:
            described["early_stop"] = True
        return described

    def get_config(self) -> dict:
        """The fields, JSON-ready (the objective by name; ValueError for an unregistered one)."""
        return {**super().get_config(), "objective": objective_name(self.objective)}



@keras.saving.register_keras_serializable(package="tf_atalp")
@dataclasses.dataclass(frozen=True)
class FGSM(AttackBase):
    """FGSM (Goodfellow et al.): one signed-gradient step of size epsilon from the image.

    Attributes: `epsilon` in (0, 1], pixel units; `objective`, `targeted` and
    `jit_compile` as in `PGD`.
    """

    epsilon: float
    objective: str = "cross_entropy"
    targeted: bool = False
    jit_compile: bool = False

    def __post_init__(self):
        super().__post_init__()
        # Checks the objective, and holds a registered one by name (as PGD does).
        object.__setattr__(self, "objective", self.as_pgd().objective)

    def as_pgd(self) -> PGD:
        """The same attack as a one-step PGD without random start."""
        return PGD(self.epsilon, step_size=self.epsilon, iterations=1, random_start=False,
                   objective=self.objective, targeted=self.targeted,
                   jit_compile=self.jit_compile)

    def attack(self, model_fn, images, labels, *, seed=None, record_at=None,
               target_labels=None) -> AttackResult:
        return self.as_pgd().attack(model_fn, images, labels, seed=seed, record_at=record_at,
                                    target_labels=target_labels)

    def describe(self) -> dict:
        return {**self.as_pgd().describe(), "attack": "fgsm"}
