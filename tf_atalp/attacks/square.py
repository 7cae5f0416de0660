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

from tf_atalp.attacks.base import AttackBase, AttackResult, check_images, checked_record_at
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


def _candidate(clean, low, high, best, window, epsilon, seed):
    """A new square at `window` for every example: `best` with the window's signs redrawn.

    Args:
      clean, low, high, best: float32 [A, H, W, C]: the images, the ball's
        bounds (clipped to [0, 1]) and the best point so far.
      window: int32 [3]: top, left, side of the square (shared by the batch,
        as the reference code).
      seed: int64 [2], the stateless seed of this query's signs.
    """
    shape = tf.shape(clean)
    top, left, side = window[0], window[1], window[2]
    begin, size = tf.stack([0, top, left, 0]), tf.stack([-1, side, side, -1])
    # Only the window changes: the resampling works on [A, side, side, C] slices.
    clean_w, low_w, high_w, best_w = (tf.slice(t, begin, size) for t in (clean, low, high, best))

    def draw(attempt):
        uniform = tf.random.stateless_uniform(
            [shape[0], 1, 1, shape[3]], seed + tf.stack([tf.constant(0, tf.int64), attempt]))
        return tf.where(uniform < 0.5, -epsilon, epsilon)

    def moved(signs):
        return tf.clip_by_value(clean_w + signs, low_w, high_w)

    def changed(signs):  # the reference resamples while the window would stay as it is
        return tf.reduce_any(tf.abs(moved(signs) - best_w) >= 1e-7, axis=[1, 2, 3])

    def resample(attempt, signs, done):
        signs = tf.where(done[:, None, None, None], signs, draw(attempt))
        return attempt + 1, signs, changed(signs)

    signs = draw(tf.constant(0, tf.int64))
    _, signs, _ = tf.while_loop(
        lambda attempt, signs, done: tf.logical_and(
            attempt < RESAMPLING_ATTEMPTS, tf.logical_not(tf.reduce_all(done))),
        resample, (tf.constant(1, tf.int64), signs, changed(signs)))
    rows, cols = tf.range(shape[1]), tf.range(shape[2])
    mask = tf.logical_and(tf.logical_and(rows >= top, rows < top + side)[:, None],
                          tf.logical_and(cols >= left, cols < left + side)[None, :])
    placed = tf.pad(moved(signs), [[0, 0], [top, shape[1] - top - side],
                                   [left, shape[2] - left - side], [0, 0]])
    return tf.where(mask[None, :, :, None], placed, best)


@tf.function(reduce_retracing=True)
def _search(model_fn, clean, low, high, best, labels, windows, epsilon, signs_seed):
    """Every query of one Square run, in one compiled loop.

    Query q (1-based) is one forward pass of the examples still correctly
    classified; an example leaves the loop at the query that fools it (the
    remaining ones are gathered only when some leave). Nothing returns to
    the host until the loop ends.

    Args:
      clean, low, high, best: float32 [N, H, W, C]: the images, the ball's
        bounds and the start (the stripes).
      labels: int32 [N].
      windows: int32 [Q, 3]: query q's window (top, left, side) in row q - 1.
      epsilon: float32 scalar.
      signs_seed: int64 scalar; query q draws its signs from
        (signs_seed, q * RESAMPLING_ATTEMPTS + attempt).

    Returns (the best point of each example [N, H, W, C], the query that
    first fooled it int32 [N]: 0 at the start, Q + 1 if none did).
    """
    queries = tf.shape(windows)[0]
    margin = _margin(model_fn, best, labels)
    first_fooled = tf.where(margin <= 0, 0, queries + 1)
    found = best
    alive = tf.where(margin > 0)[:, 0]  # int64 [A]: the examples still searched
    state = [tf.gather(t, alive) for t in (clean, low, high, best, margin, labels)]

    def search_on(query, alive, first_fooled, found, *state):
        return tf.logical_and(query <= queries, tf.size(alive) > 0)

    def one_query(query, alive, first_fooled, found, clean, low, high, best, margin, labels):
        seed = tf.stack([signs_seed, tf.cast(query, tf.int64) * RESAMPLING_ATTEMPTS])
        candidate = _candidate(clean, low, high, best, windows[query - 1], epsilon, seed)
        new_margin = _margin(model_fn, candidate, labels)
        improved = new_margin < margin
        best = tf.where(improved[:, None, None, None], candidate, best)
        margin = tf.where(improved, new_margin, margin)
        fooled = new_margin <= 0  # (then also improved: margin was > 0)

        def leave():
            gone = tf.boolean_mask(alive, fooled)[:, None]
            stay = tf.logical_not(fooled)
            return (tf.boolean_mask(alive, stay),
                    tf.tensor_scatter_nd_update(first_fooled, gone,
                                                tf.fill(tf.shape(gone)[:1], query)),
                    tf.tensor_scatter_nd_update(found, gone, tf.boolean_mask(best, fooled)),
                    *[tf.boolean_mask(t, stay)
                      for t in (clean, low, high, best, margin, labels)])

        def stay():
            return alive, first_fooled, found, clean, low, high, best, margin, labels

        return (query + 1, *tf.cond(tf.reduce_any(fooled), leave, stay))

    images = tf.TensorShape([None]).concatenate(clean.shape[1:])
    vector = tf.TensorShape([None])
    _, alive, first_fooled, found, _, _, _, best, _, _ = tf.while_loop(
        search_on, one_query, (tf.constant(1), alive, first_fooled, found, *state),
        shape_invariants=(tf.TensorShape([]), vector, first_fooled.shape, found.shape,
                          images, images, images, images, vector, vector))
    return tf.tensor_scatter_nd_update(found, alive[:, None], best), first_fooled


def _margin(model_fn, images, labels) -> tf.Tensor:
    """float32 [N]: z_y - max_{j != y} z_j (> 0: still correct)."""
    return -margin_objective(tf.cast(model_fn(images), tf.float32), labels)


@keras.saving.register_keras_serializable(package="tf_atalp")
@dataclasses.dataclass(frozen=True)
class Square(AttackBase):
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
        super().__post_init__()
        if self.queries < 1:
            raise ValueError(f"`queries` must be >= 1. Received: queries={self.queries}")
        if not 0.0 < self.p_init <= 1.0:
            raise ValueError(f"`p_init` must be in (0, 1]. Received: p_init={self.p_init}")

    def attack(self, model_fn, images, labels, *, seed=None, record_at=None) -> AttackResult:
        """Runs the random search; `record_at` counts queries (0: the stripe start).

        The whole search is one compiled loop (`_search`): each query one
        forward pass of the examples not yet fooled. `seed`: an int, or None.
        """
        clean = np.asarray(check_images(images), np.float32)
        labels = np.asarray(labels, np.int32)
        record_at = checked_record_at(record_at, self.queries, "queries")
        rng = np.random.default_rng(None if seed is None else int(np.asarray(seed).ravel()[0]))
        n, height, width, channels = clean.shape
        eps = self.epsilon
        low, high = np.clip(clean - eps, 0, 1), np.clip(clean + eps, 0, 1)
        stripes = rng.choice([-eps, eps], size=(n, 1, width, channels)).astype(np.float32)
        start = np.clip(clean + stripes, low, high)
        signs_seed = int(rng.integers(0, 2 ** 62))
        best, first_fooled = _search(
            model_fn, tf.constant(clean), tf.constant(low), tf.constant(high),
            tf.constant(start), tf.constant(labels), tf.constant(self._windows(rng, height, width)),
            tf.constant(eps, tf.float32), tf.constant(signs_seed, tf.int64))
        if record_at is None:
            return AttackResult(best)
        counts = np.asarray(record_at)
        correct_at = counts[:, None] < first_fooled.numpy()[None, :]
        return AttackResult(best, tf.constant(counts, tf.int32), tf.constant(correct_at))

    def _windows(self, rng, height: int, width: int) -> np.ndarray:
        """int32 [queries, 3]: each query's window (top, left, side), drawn from `rng`."""
        windows = np.zeros([self.queries, 3], np.int32)
        for query in range(self.queries):
            side = max(int(round(math.sqrt(window_share(self.p_init, query, self.queries,
                                                        self.rescale_schedule)
                                           * height * width))), 1)
            side = min(side, height, width)
            windows[query] = (rng.integers(0, height - side + 1),
                              rng.integers(0, width - side + 1), side)
        return windows

    def describe(self) -> dict:
        return {"attack": "square", "norm": "linf", "epsilon": self.epsilon,
                "iterations": self.queries, "queries": self.queries, "p_init": self.p_init,
                "rescale_schedule": self.rescale_schedule,
                "loss": "margin", "targeted": False, "random_start": True}
