"""Square Attack (Andriushchenko et al. 2020), L-inf: score-based, no gradients.

Random search over vertical-stripe and square perturbations at the corners
of the epsilon-ball: start from x + epsilon * s with s = +-1 per (column,
channel); at query i, pick a square window of side
round(sqrt(p_i * H * W)) at a random place (one place for the batch, as the
reference code) and give each channel of it a new random sign, keeping the
change only where it lowers the margin loss z_y - max_{j != y} z_j. The
window share p_i follows the reference schedule (p_init = 0.8, halved at
10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 of every 10000 queries, or at
those query counts with `rescale_schedule=False`, as AutoAttack). An
example stops being queried once it is misclassified. Because it never
uses a gradient, Square breaks models whose gradients are masked (rounded
inputs, shattered gradients) when gradient attacks cannot: the AutoAttack
check "Square succeeds where the gradient attacks failed" rests on it.
"""

import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf

from tf_atalp.attacks.base import AttackResult, check_images, checked_record_at
from tf_atalp.attacks.objectives import margin_objective

P_INIT = 0.8
# (fraction of 10000 queries after which p halves once more)
HALVING_POINTS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def window_share(p_init: float, query: int, queries: int, rescale: bool = True) -> float:
    """p at `query` of `queries` (the reference code's `p_selection`).

    rescale: stretch the schedule of 10000 queries over `queries` (the
    Square paper's code); False halves at the fixed query counts, as
    AutoAttack's standard version (`resc_schedule=False`).
    """
    scaled = int(query / queries * 10000) if rescale else query
    halvings = sum(1 for point in HALVING_POINTS if scaled > point)
    return p_init / 2 ** halvings


RESAMPLING_ATTEMPTS = 32  # draws of a window's signs until the window changes


def _margin(model_fn, images, labels) -> tf.Tensor:
    """float32 [N]: z_y - max_{j != y} z_j (> 0: still correct)."""
    return -margin_objective(tf.cast(model_fn(images), tf.float32), labels)


@tf.function(reduce_retracing=True)
def _start_margin(model_fn, images, labels):
    return _margin(model_fn, images, labels)


@tf.function(reduce_retracing=True)
def _query(model_fn, clean, low, high, best, margin, labels, window, epsilon, seed):
    """One query for every example given: a new square at `window`, kept where it helps.

    Args:
      clean, low, high, best: float32 [A, H, W, C]: the images, the ball's
        bounds (clipped to [0, 1]) and the best point so far.
      margin: float32 [A], the margin at `best`.
      window: int32 [3]: top, left, side of the square (shared by the batch,
        as the reference code).
      seed: int64 [2], the stateless seed of this query's signs.

    Returns (best, margin, the margin of this query's candidates), each as the inputs.
    """
    shape = tf.shape(clean)
    rows = tf.range(shape[1])
    cols = tf.range(shape[2])
    in_rows = tf.logical_and(rows >= window[0], rows < window[0] + window[2])
    in_cols = tf.logical_and(cols >= window[1], cols < window[1] + window[2])
    mask = tf.logical_and(in_rows[:, None], in_cols[None, :])[None, :, :, None]

    def draw(attempt):
        uniform = tf.random.stateless_uniform(
            [shape[0], 1, 1, shape[3]], seed + tf.stack([tf.constant(0, tf.int64), attempt]))
        return tf.where(uniform < 0.5, -epsilon, epsilon)

    def moved(signs):
        return tf.clip_by_value(clean + signs, low, high)

    def changed(signs):  # the reference resamples while the window would stay as it is
        return tf.reduce_any(tf.logical_and(mask, tf.abs(moved(signs) - best) >= 1e-7),
                             axis=[1, 2, 3])

    def resample(attempt, signs, done):
        signs = tf.where(done[:, None, None, None], signs, draw(attempt))
        return attempt + 1, signs, changed(signs)

    signs = draw(tf.constant(0, tf.int64))
    _, signs, _ = tf.while_loop(
        lambda attempt, signs, done: tf.logical_and(
            attempt < RESAMPLING_ATTEMPTS, tf.logical_not(tf.reduce_all(done))),
        resample, (tf.constant(1, tf.int64), signs, changed(signs)))
    candidate = tf.where(mask, moved(signs), best)
    new_margin = _margin(model_fn, candidate, labels)
    improved = new_margin < margin
    return (tf.where(improved[:, None, None, None], candidate, best),
            tf.where(improved, new_margin, margin), new_margin)


@keras.saving.register_keras_serializable(package="tf_atalp")
@dataclasses.dataclass(frozen=True)
class Square:
    """L-inf Square Attack.

    Attributes:
      epsilon: radius, pixel units in (0, 1].
      queries: model queries per example at most (the reference: 5000).
      p_init: the first window's share of the image (the reference: 0.8).
      rescale_schedule: stretch p's schedule of 10000 queries over
        `queries` (the Square paper's code); AutoAttack uses False.
    """

    epsilon: float
    queries: int = 5000
    p_init: float = P_INIT
    rescale_schedule: bool = True

    def __post_init__(self):
        if not 0.0 < self.epsilon <= 1.0:
            raise ValueError(f"`epsilon` must be in (0, 1]. Received: epsilon={self.epsilon}")
        if self.queries < 1:
            raise ValueError(f"`queries` must be >= 1. Received: queries={self.queries}")
        if not 0.0 < self.p_init <= 1.0:
            raise ValueError(f"`p_init` must be in (0, 1]. Received: p_init={self.p_init}")

    def attack(self, model_fn, images, labels, *, seed=None, record_at=None) -> AttackResult:
        """Runs the random search; `record_at` counts queries (0: the stripe start).

        Each query is one compiled step over the examples not yet fooled.
        `seed`: an int, or None.
        """
        clean = np.asarray(check_images(images), np.float32)
        labels = np.asarray(labels, np.int32)
        record_at = checked_record_at(record_at, self.queries, "queries")
        rng = np.random.default_rng(None if seed is None else int(np.asarray(seed).ravel()[0]))
        n, height, width, channels = clean.shape
        eps = self.epsilon
        low, high = np.clip(clean - eps, 0, 1), np.clip(clean + eps, 0, 1)
        stripes = rng.choice([-eps, eps], size=(n, 1, width, channels)).astype(np.float32)
        best = np.clip(clean + stripes, low, high)
        margin = _start_margin(model_fn, tf.constant(best), tf.constant(labels)).numpy()
        # first_fooled: the query count at which each example was first misclassified.
        first_fooled = np.where(margin <= 0, 0, self.queries + 1)
        signs_seed = int(rng.integers(0, 2 ** 62))
        epsilon = tf.constant(eps, tf.float32)
        for query in range(1, self.queries + 1):
            active = np.flatnonzero(margin > 0)
            if active.size == 0:
                break
            side = max(int(round(math.sqrt(window_share(self.p_init, query - 1, self.queries,
                                                        self.rescale_schedule)
                                           * height * width))), 1)
            side = min(side, height, width)
            window = tf.constant([rng.integers(0, height - side + 1),
                                  rng.integers(0, width - side + 1), side], tf.int32)
            every = active.size == n
            pick = (lambda array: array) if every else (lambda array: array[active])
            new_best, new_margin, queried = _query(
                model_fn, tf.constant(pick(clean)), tf.constant(pick(low)),
                tf.constant(pick(high)), tf.constant(pick(best)), tf.constant(pick(margin)),
                tf.constant(pick(labels)), window, epsilon,
                tf.constant([signs_seed, query * RESAMPLING_ATTEMPTS], tf.int64))
            best[active] = new_best.numpy()
            margin[active] = new_margin.numpy()
            fooled_now = active[queried.numpy() <= 0]
            first_fooled[fooled_now] = np.minimum(first_fooled[fooled_now], query)
        adversarial = tf.constant(best)
        if record_at is None:
            return AttackResult(adversarial)
        counts = np.asarray(record_at)
        correct_at = counts[:, None] < first_fooled[None, :]
        return AttackResult(adversarial, tf.constant(counts, tf.int32), tf.constant(correct_at))

    def describe(self) -> dict:
        return {"attack": "square", "norm": "linf", "epsilon": self.epsilon,
                "iterations": self.queries, "queries": self.queries, "p_init": self.p_init,
                "rescale_schedule": self.rescale_schedule,
                "loss": "margin", "targeted": False, "random_start": True}

    def get_config(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config: dict) -> "Square":
        return cls(**config)
