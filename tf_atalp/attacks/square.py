"""Square Attack (Andriushchenko et al. 2020), L-inf: score-based, no gradients.

Random search over vertical-stripe and square perturbations at the corners
of the epsilon-ball: start from x + epsilon * s with s = +-1 per (column,
channel); at query i, pick a square window of side
round(sqrt(p_i * H * W)) at a random place (one place for the batch, as the
reference code) and give each channel of it a new random sign, keeping the
change only where it lowers the margin loss z_y - max_{j != y} z_j. The
window share p_i follows the reference schedule (p_init = 0.8, halved at
10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 of every 10000 queries). An
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


def window_share(p_init: float, query: int, queries: int) -> float:
    """p at `query` of `queries` (the reference code's `p_selection`)."""
    scaled = int(query / queries * 10000)
    halvings = sum(1 for point in HALVING_POINTS if scaled > point)
    return p_init / 2 ** halvings


def _margin(model_fn, images, labels) -> np.ndarray:
    """float [N]: z_y - max_{j != y} z_j (> 0: still correct)."""
    return -margin_objective(model_fn(tf.constant(images)), tf.constant(labels)).numpy()


@keras.saving.register_keras_serializable(package="tf_atalp")
@dataclasses.dataclass(frozen=True)
class Square:
    """L-inf Square Attack.

    Attributes:
      epsilon: radius, pixel units in (0, 1].
      queries: model queries per example at most (the reference: 5000).
      p_init: the first window's share of the image (the reference: 0.8).
    """

    epsilon: float
    queries: int = 5000
    p_init: float = P_INIT

    def __post_init__(self):
        if not 0.0 < self.epsilon <= 1.0:
            raise ValueError(f"`epsilon` must be in (0, 1]. Received: epsilon={self.epsilon}")
        if self.queries < 1:
            raise ValueError(f"`queries` must be >= 1. Received: queries={self.queries}")
        if not 0.0 < self.p_init <= 1.0:
            raise ValueError(f"`p_init` must be in (0, 1]. Received: p_init={self.p_init}")

    def attack(self, model_fn, images, labels, *, seed=None, record_at=None) -> AttackResult:
        """Runs the random search; `record_at` counts queries (0: the stripe start).

        Runs eagerly (numpy between queries). `seed`: an int, or None.
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
        margin = _margin(model_fn, best, labels)
        # correct_at[q]: still correct after q queries (0 is the stripe start).
        first_fooled = np.where(margin <= 0, 0, self.queries + 1)
        for query in range(1, self.queries + 1):
            active = np.flatnonzero(margin > 0)
            if active.size == 0:
                break
            side = max(int(round(math.sqrt(window_share(self.p_init, query - 1, self.queries)
                                           * height * width))), 1)
            side = min(side, height, width)
            top = rng.integers(0, height - side + 1)
            left = rng.integers(0, width - side + 1)
            window = (slice(None), slice(top, top + side), slice(left, left + side))
            current = best[active]
            candidate = current.copy()
            rows = np.arange(active.size)
            for _ in range(32):  # the reference resamples until the window changes
                signs = rng.choice([-eps, eps], size=(rows.size, 1, 1, channels))
                moved = np.clip(clean[active[rows]][window] + signs,
                                low[active[rows]][window], high[active[rows]][window])
                changed = np.any(np.abs(moved - current[rows][window]) >= 1e-7, axis=(1, 2, 3))
                block = candidate[rows]
                block[window] = moved
                candidate[rows] = block
                rows = rows[~changed]
                if rows.size == 0:
                    break
            new_margin = _margin(model_fn, candidate, labels[active])
            improved = new_margin < margin[active]
            best[active[improved]] = candidate[improved]
            margin[active[improved]] = new_margin[improved]
            fooled_now = active[new_margin <= 0]
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
                "loss": "margin", "targeted": False, "random_start": True}

    def get_config(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config: dict) -> "Square":
        return cls(**config)
