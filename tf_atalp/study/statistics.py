"""How sure a study is: spread over seeds and paired comparisons on the same test images.

Every number of a study is an accuracy over the same N test images, per
seed. Two defenses A and B are compared per image:

- McNemar's exact test: only the discordant images count (A right and B
  wrong: b; A wrong and B right: c). Under "A and B are equally accurate"
  each discordant image goes either way with probability 1/2, so
  p = min(1, 2 * P[Binomial(b + c, 1/2) <= min(b, c)]). With several
  seeds, seed s of A is paired with seed s of B and the discordant counts
  are summed over the seeds (a sum of independent Binomial(n_s, 1/2) is
  Binomial(sum n_s, 1/2), so the test stays exact).
- A paired bootstrap 95% interval of accuracy(A) - accuracy(B): the images
  are resampled with replacement (the same draw for A and B), and, with
  several seeds, each defense's seeds are resampled too, so the interval
  covers both the choice of test images and the training seed.

The verdict at 95% is "higher" or "lower" only when the interval excludes 0
and McNemar's p < 0.05; otherwise "not distinguishable".
"""

import dataclasses
import math

import numpy as np

CONFIDENCE = 0.95
HIGHER, LOWER, NOT_DISTINGUISHABLE = "higher", "lower", "not distinguishable"


def binomial_cdf_half(k: int, n: int) -> float:
    """P[Binomial(n, 1/2) <= k], exactly (in floating point)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return math.fsum(math.comb(n, i) for i in range(k + 1)) / 2.0 ** n


def mcnemar_exact(b: int, c: int) -> float:
    """The two-sided exact McNemar p-value from the discordant counts b and c."""
    if b < 0 or c < 0:
        raise ValueError(f"Discordant counts must be >= 0. Received: b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    return min(1.0, 2.0 * binomial_cdf_half(min(b, c), n))


def _as_runs(outcomes) -> np.ndarray:
    """bool [S, N] from a [N] vector or a list of S [N] vectors (one per seed)."""
    runs = np.asarray(outcomes, dtype=bool)
    if runs.ndim == 1:
        runs = runs[None, :]
    if runs.ndim != 2 or runs.shape[1] == 0:
        raise ValueError(f"Outcomes must be [N] or [seeds, N] with N >= 1. Received shape "
                         f"{runs.shape}")
    return runs


def discordant_counts(a, b) -> tuple[int, int]:
    """(A right and B wrong, A wrong and B right), summed over seed pairs (seed s with s)."""
    a, b = _as_runs(a), _as_runs(b)
    if a.shape != b.shape:
        raise ValueError("A paired comparison needs the same seeds and images on both sides. "
                         f"Received shapes {a.shape} and {b.shape}")
    return int(np.sum(a & ~b)), int(np.sum(~a & b))


def paired_bootstrap_interval(a, b, samples: int = 2000, seed: int = 0,
                              confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile interval of mean accuracy(A) - mean accuracy(B) over seeds and images.

    a, b: bool [N] or [S, N] (S seeds may differ between A and B; N, the
    images, must be the same and in the same order).
    """
    a, b = _as_runs(a).astype(np.float64), _as_runs(b).astype(np.float64)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"Both sides must score the same images. Received {a.shape[1]} and "
                         f"{b.shape[1]}")
    rng = np.random.default_rng(seed)
    n = a.shape[1]
    differences = np.empty(samples)
    for index in range(samples):
        images = rng.integers(0, n, n)
        seeds_a = rng.integers(0, a.shape[0], a.shape[0])
        seeds_b = rng.integers(0, b.shape[0], b.shape[0])
        differences[index] = (a[seeds_a][:, images].mean() - b[seeds_b][:, images].mean())
    tail = (1 - confidence) / 2
    low, high = np.quantile(differences, [tail, 1 - tail])
    return float(low), float(high)


@dataclasses.dataclass(frozen=True)
class Spread:
    """A number over seeds: mean, sample standard deviation (None for one seed), values."""

    mean: float
    std: float | None
    values: tuple[float, ...]

    def describe(self) -> dict:
        return {"mean": self.mean, "std": self.std, "values": list(self.values),
                "seeds": len(self.values)}


def spread(values) -> Spread:
    """Mean and sample standard deviation (ddof=1) of per-seed values; std None for one seed."""
    values = tuple(float(v) for v in values)
    if not values:
        raise ValueError("`values` must not be empty.")
    std = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return Spread(float(np.mean(values)), std, values)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """A paired comparison of A with B on the same images.

    Attributes:
      difference: mean accuracy of A minus that of B (fraction, over seeds).
      interval: the bootstrap 95% interval of the difference.
      a_only, b_only: discordant images (A right, B wrong; and the reverse),
        summed over seed pairs.
      p_value: McNemar's exact two-sided p.
      verdict: HIGHER, LOWER or NOT_DISTINGUISHABLE (A against B, at 95%).
      seed_pairs: how many seed pairs the discordant counts sum over.
    """

    difference: float
    interval: tuple[float, float]
    a_only: int
    b_only: int
    p_value: float
    verdict: str
    seed_pairs: int

    def describe(self) -> dict:
        return dataclasses.asdict(self) | {"interval": list(self.interval)}


def verdict(interval: tuple[float, float], p_value: float, alpha: float = 1 - CONFIDENCE) -> str:
    """HIGHER / LOWER when the interval excludes 0 and p < alpha, else NOT_DISTINGUISHABLE."""
    if p_value < alpha and interval[0] > 0:
        return HIGHER
    if p_value < alpha and interval[1] < 0:
        return LOWER
    return NOT_DISTINGUISHABLE


def compare(a, b, samples: int = 2000, seed: int = 0) -> Comparison:
    """A (bool [S, N] or [N]) against B on the same images; seed s paired with seed s.

    When A and B have different seed counts, McNemar's test uses the first
    min(S_A, S_B) seed pairs; the interval uses every seed.
    """
    a_runs, b_runs = _as_runs(a), _as_runs(b)
    pairs = min(len(a_runs), len(b_runs))
    a_only, b_only = discordant_counts(a_runs[:pairs], b_runs[:pairs])
    p_value = mcnemar_exact(a_only, b_only)
    interval = paired_bootstrap_interval(a_runs, b_runs, samples=samples, seed=seed)
    difference = float(a_runs.mean() - b_runs.mean())
    return Comparison(difference, interval, a_only, b_only, p_value,
                      verdict(interval, p_value), pairs)
