"""What the paper protocol runs: the two PGD settings and the models, as plain checked data.

The paper attacks with L-inf PGD of step 1/256 for 10 to 200 iterations at
epsilon 0.25 and 0.5. With that step, k steps move a pixel at most k/256, so
the points before k = 64 cannot even reach epsilon 0.25 from the clean image:
the "paper" setting measures a weaker attack than its epsilon says there.
The "strong" setting is the usual remedy (Madry et al.; Carlini et al.
2019): a random start and a step of about 2.5 x epsilon / iterations, so the
run can cross the ball several times. Both are reported side by side.
"""

import dataclasses

from tf_atalp.attacks import FGSM, PGD
from tf_atalp.evaluation.config import PAPER_EPSILONS, PAPER_STEP_SIZE
from tf_atalp.validation import check

PAPER = "paper"
STRONG = "strong"
SETTINGS = (PAPER, STRONG)
# Figure 3 of the paper: accuracy after 10, 20, ..., 200 iterations.
PAPER_SWEEP = tuple(range(10, 201, 10))
STRONG_ITERATIONS = 100
STRONG_STEP_FACTOR = 2.5  # step = factor * epsilon / iterations


@dataclasses.dataclass(frozen=True)
class AttackSetting:
    """One PGD setting of the protocol, for any epsilon.

    Attributes:
      name: "paper" or "strong" (how the report labels it).
      iterations: the length of the one run per batch.
      record_at: the step counts scored from that run (each <= iterations).
      step_size: a fixed step in pixel units, or None to use `step_factor`.
      step_factor: step = step_factor * epsilon / iterations (when
        `step_size` is None).
      random_start: start at a uniform point of the epsilon-ball.
      restarts: random restarts (white-box only; transfer is one run).
    """

    name: str
    iterations: int
    record_at: tuple[int, ...]
    step_size: float | None = None
    step_factor: float | None = None
    random_start: bool = False
    restarts: int = 1

    def __post_init__(self):
        check(self.iterations >= 1, f"`iterations` must be >= 1. Received: {self.iterations}")
        counts = tuple(sorted({int(k) for k in self.record_at}))
        check(bool(counts) and counts[0] >= 1 and counts[-1] <= self.iterations,
              f"`record_at` must lie in [1, {self.iterations}]. Received: {list(self.record_at)}")
        object.__setattr__(self, "record_at", counts)
        check((self.step_size is None) != (self.step_factor is None),
              "Exactly one of `step_size` and `step_factor` must be set. Received: "
              f"step_size={self.step_size}, step_factor={self.step_factor}")
        check(self.step_size is None or 0 < self.step_size <= 1,
              f"`step_size` must be in (0, 1]. Received: {self.step_size}")
        check(self.step_factor is None or self.step_factor > 0,
              f"`step_factor` must be > 0. Received: {self.step_factor}")
        check(self.restarts >= 1, f"`restarts` must be >= 1. Received: {self.restarts}")
        check(self.restarts == 1 or self.random_start,
              f"`restarts` > 1 needs a random start. Received: restarts={self.restarts}")

    def step_for(self, epsilon: float) -> float:
        """The step size at `epsilon`, pixel units."""
        if self.step_size is not None:
            return self.step_size
        return min(1.0, self.step_factor * epsilon / self.iterations)

    def pgd(self, epsilon: float, early_stop: bool = False) -> PGD:
        """The PGD attack of this setting at `epsilon`."""
        return PGD(epsilon=epsilon, step_size=self.step_for(epsilon),
                   iterations=self.iterations, random_start=self.random_start,
                   early_stop=early_stop)

    def describe(self) -> dict:
        return dataclasses.asdict(self) | {"record_at": list(self.record_at)}


def paper_setting(record_at=PAPER_SWEEP, step_size: float = PAPER_STEP_SIZE,
                  random_start: bool = False) -> AttackSetting:
    """The paper's PGD: step 1/256, one run of max(record_at) steps from the clean image."""
    return AttackSetting(PAPER, iterations=max(record_at), record_at=tuple(record_at),
                         step_size=step_size, random_start=random_start)


def strong_setting(iterations: int = STRONG_ITERATIONS,
                   step_factor: float = STRONG_STEP_FACTOR, restarts: int = 1) -> AttackSetting:
    """Random start, step = step_factor x epsilon / iterations, scored every 10 steps."""
    record_at = tuple(k for k in PAPER_SWEEP if k <= iterations) or (iterations,)
    return AttackSetting(STRONG, iterations=iterations,
                         record_at=tuple(sorted(set(record_at) | {iterations})),
                         step_factor=step_factor, random_start=True, restarts=restarts)


def single_step(epsilon: float) -> FGSM:
    """The single-step yardstick of the sanity checks (FGSM at the full radius)."""
    return FGSM(epsilon=epsilon)


@dataclasses.dataclass(frozen=True)
class ProtocolConfig:
    """The models and settings of one `--protocol=paper` run.

    Attributes:
      targets: model_dirs of the defended models (a row of Table 1 each).
      gray_box_sources: model_dirs of separately trained models with the
        targets' architecture; their images are scored on every target.
      black_box_sources: model_dirs of a different (deeper) architecture.
      same_defense_sources: gray-box sources scored only on the targets
        trained with the same defense (an attacker who trains a copy).
      paired_sources: (target, source) model_dir pairs: the source has the
        target's architecture and defense (other weights: the paper's
        gray-box attacker) and is scored on that target only; it may itself
        be another target.
      output_dir: where cells, tables, figures and report.md go.
      epsilons: L-inf radii, pixel units.
      settings: the PGD settings (paper and strong).
      max_examples: a class-balanced subset of the test split, or None: all.
      batch_size, seed: of the evaluation.
      drop_broken: white-box: stop attacking an example once fooled.
      dataset, data_dir: override the targets' training data.
      eot_samples, random_draws: for a randomized target's white-box cells
        (None: the evaluation defaults, 30 and 3); 1 and 1 for the others.
      figure_images: test images drawn in Figure 4 (0: no Figure 4).
      figure_epsilon: the radius of Figure 4's adversarial images (the
        paper: gray-box PGD at 0.25).
      landscape_grid: points per axis of Figure 6 (0: no Figure 6).
      landscape_radius: Figure 6's largest |a|, |b|; None: the smallest epsilon.
      masks_dir: per-image key-region masks mirroring the image folder
        (Table 2); None: no Table 2.
      figure_targets: the targets (folder names) drawn in Figures 3, 4 and 6;
        None: all.
    """

    targets: tuple[str, ...]
    output_dir: str
    gray_box_sources: tuple[str, ...] = ()
    black_box_sources: tuple[str, ...] = ()
    same_defense_sources: tuple[str, ...] = ()
    paired_sources: tuple[tuple[str, str], ...] = ()
    epsilons: tuple[float, ...] = PAPER_EPSILONS
    settings: tuple[AttackSetting, ...] = (paper_setting(), strong_setting())
    max_examples: int | None = None
    batch_size: int = 64
    seed: int = 0
    drop_broken: bool = True
    dataset: str | None = None
    data_dir: str | None = None
    eot_samples: int | None = None
    random_draws: int | None = None
    figure_images: int = 4
    figure_epsilon: float = 0.25
    landscape_grid: int = 21
    landscape_radius: float | None = None
    masks_dir: str | None = None
    figure_targets: tuple[str, ...] | None = None

    def __post_init__(self):
        check(len(self.targets) >= 1, "`targets` must name at least one model_dir. Received: []")
        check(bool(self.output_dir), "`output_dir` must be set. Received: ''")
        for name in ("targets", "gray_box_sources", "black_box_sources", "same_defense_sources"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        pairs = tuple(tuple(pair) for pair in self.paired_sources)
        check(all(len(pair) == 2 and all(pair) for pair in pairs),
              "`paired_sources` must be (target, source) pairs of model_dirs. Received: "
              f"{list(self.paired_sources)}")
        object.__setattr__(self, "paired_sources", pairs)
        if self.figure_targets is not None:
            object.__setattr__(self, "figure_targets", tuple(self.figure_targets))
        check(len(self.epsilons) >= 1 and all(0 < e <= 1 for e in self.epsilons),
              f"`epsilons` must be in (0, 1]. Received: {list(self.epsilons)}")
        object.__setattr__(self, "epsilons", tuple(sorted(float(e) for e in self.epsilons)))
        names = [s.name for s in self.settings]
        check(bool(names) and len(set(names)) == len(names),
              f"`settings` must have distinct names. Received: {names}")
        check(self.max_examples is None or self.max_examples >= 1,
              f"`max_examples` must be >= 1. Received: {self.max_examples}")
        check(self.batch_size >= 1, f"`batch_size` must be >= 1. Received: {self.batch_size}")
        check(self.figure_images >= 0, f"`figure_images` must be >= 0. Received: "
              f"{self.figure_images}")
        check(0 < self.figure_epsilon <= 1,
              f"`figure_epsilon` must be in (0, 1]. Received: {self.figure_epsilon}")
        check(self.landscape_radius is None or 0 < self.landscape_radius <= 1,
              f"`landscape_radius` must be in (0, 1]. Received: {self.landscape_radius}")
        for name in ("eot_samples", "random_draws"):
            value = getattr(self, name)
            check(value is None or value >= 1, f"`{name}` must be >= 1. Received: {value}")
        check(self.landscape_grid == 0 or self.landscape_grid >= 3,
              f"`landscape_grid` must be 0 or >= 3. Received: {self.landscape_grid}")
