"""`StudyConfig`: what one study trains and attacks, as plain checked data.

A study is the paper's experiment on one dataset: every entry (a defense,
with its train_main flags) trained once per seed (the targets, Table 1's
rows); each target's faithful gray-box source is the same entry trained with
the next seed (seed s is attacked with images crafted on seed s+1 mod S, so
no extra training); black-box sources are other (deeper) networks. Every
model is then evaluated under the paper protocol and white-box AutoAttack,
and the report compares a reference entry (AT+ALP) with every other.
"""

import dataclasses
import os
import re

from tf_atalp.attacks.autoattack import COMPONENTS as AUTOATTACK_COMPONENTS
from tf_atalp.attacks.autoattack import VERSIONS as AUTOATTACK_VERSIONS
from tf_atalp.protocol.settings import PAPER_SWEEP, STRONG_ITERATIONS
from tf_atalp.validation import check

GRAY_BOX_MODES = ("paired", "none")  # paired: seed s attacked from seed s+1 (mod S)
LABEL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
RUNS_DIR = "runs"  # trained model_dirs (never committed)
LOGS_DIR = "logs"  # each training command's output (never committed)
ITERATES_DIR = "iterates"  # the black-box sources' PGD iterates, kept for resumes (never committed)
REPORT_DIR = "report"  # report.md, tables, figures, cells (committed)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One trained network of the study: a label and the train_main flags it adds.

    Attributes:
      label: the name in tables and folder names ("at_alp", "pat_awp", ...).
      flags: train_main flags added to the study's base flags, e.g.
        ("--defense=pat", "--awp_gamma=0.005"); typed flags override the
        base flagfile's.
    """

    label: str
    flags: tuple[str, ...] = ()

    def __post_init__(self):
        check(bool(LABEL_PATTERN.match(self.label)),
              "An entry label must be letters, digits, '_', '.', '+' or '-' (it names "
              f"folders). Received: {self.label!r}")
        object.__setattr__(self, "flags", tuple(self.flags))
        for flag in self.flags:
            check(flag.startswith("--"), f"Entry {self.label!r}: flags must look like "
                  f"--name=value. Received: {flag!r}")


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """A study over one dataset.

    Attributes:
      name: the study's name (report title).
      study_dir: the one folder the study writes: runs/ and logs/ (never
        committed) and report/ (committed: report.md, tables, figures, the
        finished cells).
      train_flags: train_main flags of every run (a --flagfile=..., overrides).
      entries: Table 1's rows, each trained once per seed.
      seeds: the targets' seeds (>= 2 for paired gray-box sources).
      gray_box: "paired" (each target attacked from the same entry's next
        seed: the paper's gray-box attacker) or "none".
      black_box: the black-box sources (e.g. a deeper ResNet, undefended and
        PGD-trained), each trained once with the first seed.
      reference: the label compared with every other entry in the verdict.
      epsilons: the radii of the protocol and AutoAttack; None: the
        training epsilon, 0.25 and 0.5.
      paper_iterations: the paper setting's scored PGD counts (one run of the
        largest, step 1/256 from the clean image).
      strong_iterations: the strong setting's run length (random start,
        step 2.5 eps / iterations).
      autoattack_version: AutoAttack for deterministic targets ("standard");
        randomized targets get "rand" (expectation over transformation).
      autoattack_iterations, square_queries: APGD/FAB steps and Square's
        queries in AutoAttack (the reference's 100 and 5000).
      autoattack_attacks: the attacks of version "custom" (e.g. apgd-ce, fab,
        square on a 2-class task, where DLR is undefined).
      rand_attacks: the attacks of version "rand" on randomized targets
        (empty: AutoAttack's APGD-CE and APGD-DLR).
      max_examples: a class-balanced subset of the test split (None: all).
      eval_batch_size: evaluation batch size.
      eot_samples, random_draws: a randomized target's white-box PGD cells
        (expectation over that many draws, repeated that many times).
      figure_seed: the seed whose targets Figures 3, 4 and 6 of the
        protocol draw (None: the first seed).
      bootstrap_samples: resamples of the paired bootstrap intervals.
      run_first: entries trained and evaluated before the others, in this
        order (the reference comes next if not named, then the rest in
        `entries` order): the order in which a study cut short has its
        entries done. Tables keep the `entries` order.
    """

    name: str
    study_dir: str
    train_flags: tuple[str, ...]
    entries: tuple[Entry, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    gray_box: str = "paired"
    black_box: tuple[Entry, ...] = ()
    reference: str = "at_alp"
    epsilons: tuple[float, ...] | None = None
    paper_iterations: tuple[int, ...] = PAPER_SWEEP
    strong_iterations: int = STRONG_ITERATIONS
    autoattack_version: str = "standard"
    autoattack_iterations: int = 100
    square_queries: int = 5000
    autoattack_attacks: tuple[str, ...] = ()
    rand_attacks: tuple[str, ...] = ()
    max_examples: int | None = None
    eval_batch_size: int = 64
    eot_samples: int = 10
    random_draws: int = 1
    figure_seed: int | None = None
    bootstrap_samples: int = 2000
    run_first: tuple[str, ...] = ()

    def __post_init__(self):
        for name in ("train_flags", "entries", "seeds", "black_box", "paper_iterations",
                     "run_first"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        check(bool(self.name), "`name` must be set. Received: ''")
        check(bool(self.study_dir), "`study_dir` must be set. Received: ''")
        check(len(self.entries) >= 1, "`entries` must name at least one defense. Received: []")
        labels = [e.label for e in self.entries + self.black_box]
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        check(not repeated, f"Entry labels must be distinct. Received twice: {repeated}")
        check(len(self.seeds) >= 1 and all(s >= 0 for s in self.seeds)
              and len(set(self.seeds)) == len(self.seeds),
              f"`seeds` must be distinct integers >= 0. Received: {list(self.seeds)}")
        check(self.gray_box in GRAY_BOX_MODES,
              f"`gray_box` must be one of {GRAY_BOX_MODES}. Received: {self.gray_box!r}")
        check(self.gray_box != "paired" or len(self.seeds) >= 2,
              "A faithful gray-box source (`gray_box='paired'`: the same defense trained with "
              f"another seed) needs at least 2 seeds. Received: seeds={list(self.seeds)}")
        check(self.reference in {e.label for e in self.entries},
              f"`reference` must be one of the entries {[e.label for e in self.entries]}. "
              f"Received: {self.reference!r}")
        check(self.epsilons is None or (len(self.epsilons) >= 1
                                        and all(0 < e <= 1 for e in self.epsilons)),
              f"`epsilons` must be in (0, 1]. Received: {list(self.epsilons or [])}")
        if self.epsilons is not None:
            object.__setattr__(self, "epsilons", tuple(sorted(float(e) for e in self.epsilons)))
        check(len(self.paper_iterations) >= 1 and min(self.paper_iterations) >= 1,
              f"`paper_iterations` must be counts >= 1. Received: {list(self.paper_iterations)}")
        check(self.strong_iterations >= 1,
              f"`strong_iterations` must be >= 1. Received: {self.strong_iterations}")
        for name in ("autoattack_attacks", "rand_attacks"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
            check(all(a in AUTOATTACK_COMPONENTS for a in getattr(self, name)),
                  f"`{name}` must be from {AUTOATTACK_COMPONENTS}. Received: "
                  f"{list(getattr(self, name))}")
        check(self.autoattack_version in AUTOATTACK_VERSIONS and self.autoattack_version != "rand",
              f"`autoattack_version` must be one of standard, plus, custom (randomized targets "
              f"get rand). Received: {self.autoattack_version!r}")
        check((self.autoattack_version == "custom") == bool(self.autoattack_attacks),
              "`autoattack_attacks` names the attacks of `autoattack_version='custom'` (and only "
              f"of it). Received: version={self.autoattack_version!r}, "
              f"attacks={list(self.autoattack_attacks)}")
        check(self.max_examples is None or self.max_examples >= 1,
              f"`max_examples` must be >= 1. Received: {self.max_examples}")
        for name in ("eval_batch_size", "eot_samples", "random_draws", "bootstrap_samples",
                     "autoattack_iterations", "square_queries"):
            check(getattr(self, name) >= 1,
                  f"`{name}` must be >= 1. Received: {name}={getattr(self, name)}")
        unknown = [label for label in self.run_first
                   if label not in {e.label for e in self.entries}]
        check(not unknown and len(set(self.run_first)) == len(self.run_first),
              "`run_first` must name distinct entries of `entries` "
              f"{[e.label for e in self.entries]}. Received: {list(self.run_first)}")
        check(self.figure_seed is None or self.figure_seed in self.seeds,
              f"`figure_seed` must be one of the seeds {list(self.seeds)}. Received: "
              f"{self.figure_seed}")

    @property
    def runs_dir(self) -> str:
        return os.path.join(self.study_dir, RUNS_DIR)

    @property
    def logs_dir(self) -> str:
        return os.path.join(self.study_dir, LOGS_DIR)

    @property
    def iterates_dir(self) -> str:
        return os.path.join(self.study_dir, ITERATES_DIR)

    @property
    def report_dir(self) -> str:
        return os.path.join(self.study_dir, REPORT_DIR)

    @property
    def run_order(self) -> tuple[Entry, ...]:
        """The entries in the order they train and are evaluated: `run_first`, the reference,
        then the others in `entries` order."""
        first = list(self.run_first) + [self.reference] * (self.reference not in self.run_first)
        by_label = {e.label: e for e in self.entries}
        return tuple(by_label[label] for label in first) + tuple(
            e for e in self.entries if e.label not in first)

    def source_seed(self, seed: int) -> int:
        """The seed of the faithful gray-box source of the target trained with `seed`."""
        index = self.seeds.index(seed)
        return self.seeds[(index + 1) % len(self.seeds)]

    def describe(self) -> dict:
        """JSON-ready settings (for the report and the cells' fingerprints)."""
        values = dataclasses.asdict(self)
        values["entries"] = [dataclasses.asdict(e) for e in self.entries]
        values["black_box"] = [dataclasses.asdict(e) for e in self.black_box]
        return values
