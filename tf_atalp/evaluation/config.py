"""`EvalConfig`: what one evaluation run asks for, as plain data with field checks.

Defaults are the paper's white-box setting: L-inf PGD with epsilon in
{0.25, 0.5} (pixel units, 64/256 and 128/256), step size 1/256 and 10 to 200
iterations (one 200-step run scores every count). Checking the model and the
data on disk is a separate step: `tf_atalp.evaluation.preparation`.
"""

import dataclasses
import numbers

from tf_atalp.attacks.autoattack import (
    COMPONENTS as AUTOATTACK_COMPONENTS, VERSIONS as AUTOATTACK_VERSIONS)
from tf_atalp.attacks.objectives import OBJECTIVES
from tf_atalp.data.config import SOURCES
from tf_atalp.data.datasets import SPLITS
from tf_atalp.validation import check

PAPER_EPSILONS = (0.25, 0.5)
PAPER_ITERATIONS = (10, 20, 50, 100, 200)
PAPER_STEP_SIZE = 1 / 256
# Athalye et al. 2018 attacked Xie et al.'s randomization with the mean gradient of 30 draws
# (anishathalye/obfuscated-gradients, randomization/robustml_attack.py: sample_size=30).
DEFAULT_EOT_SAMPLES = 30
DEFAULT_RANDOM_DRAWS = 3
# The single attacks eval_main runs per epsilon (APGD: tf_atalp/attacks/apgd.py, FAB:
# tf_atalp/attacks/fab.py), or AutoAttack.
ATTACKS = ("pgd", "apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square", "autoattack")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """What to evaluate, on which data, under which white-box PGD attacks.

    Attributes:
      model_dir: a training model_dir, a SavedModel folder or a .keras file.
      dataset, data_dir, data_source: the data; None takes each from the
        run_config.json the model was trained with (a given `dataset` takes
        nothing from it). Needed when there is no run_config.json.
      split: "test" or "train".
      epsilons: L-inf radii, pixel units in [0, 1]; one attack each. None:
        resolved by `prepare_evaluation` to the paper's 0.25 and 0.5 plus the
        model's training epsilon (from its run_config.json, when there is one).
      iterations: step counts to report, each >= 1; one run of the largest.
      step_size: PGD step, pixel units in (0, 1].
      restarts: random restarts (an example is robust only if it survives all).
      random_start: start PGD at a uniform point of the epsilon-ball.
      objective: what PGD maximises, one of `attacks.OBJECTIVES` ("cross_entropy",
        "margin", "kl_to_clean", "dlr").
      attack: one of ATTACKS: "pgd" (step_size, objective and drop_broken
        apply), or APGD (Croce & Hein 2020; its own adaptive step) with the
        cross-entropy ("apgd-ce"), DLR ("apgd-dlr") or targeted DLR towards
        the 9 most likely other classes ("apgd-t") loss; max(iterations)
        steps per run (per target class for apgd-t); FAB (minimal L-inf
        perturbation, counted within epsilon; its first run starts at the
        image, its restarts at random points epsilon / 2 away): untargeted
        "fab" (towards the closest boundary at each step) or "fab-t" (the 9
        most likely other classes in turn), max(iterations) steps per run;
        "square" (Square Attack, gradient-free; max(iterations) queries); or
        "autoattack" (`autoattack_version`; `iterations` then only names the
        iterate counts of the other attacks).
      autoattack_version: "standard" (APGD-CE, APGD-T, FAB-T, Square), "plus"
        (APGD-CE, APGD-DLR, FAB with 5 restarts each, Square, APGD-T, FAB-T),
        "rand" (APGD-CE and APGD-DLR, or `autoattack_attacks`, with EoT) or
        "custom" (`autoattack_attacks`).
      autoattack_attacks: the attacks of the custom version, or the rand
        version's instead of its default, in order (from
        AUTOATTACK_COMPONENTS).
      autoattack_iterations: APGD and FAB steps in AutoAttack (reference: 100).
      square_queries: Square's queries in AutoAttack (reference: 5000).
      transfer_results: a protocol_results.json of `--protocol=paper` in which
        this model is a target: AutoAttack raises the flag
        "transfer_beats_white_box" at an epsilon where one of its transfer
        series leaves fewer of the same examples robust.
      batch_size: examples per batch.
      max_examples: evaluate only N examples of the split: a class-balanced
        subset (classes take turns, each giving its next example in split
        order), recorded in the results.
      seed: seed of the random starts.
      drop_broken: stop attacking an example once an iterate has fooled the
        model (checked every 10 steps): worst-iterate and robust accuracy
        are exactly those of attacking every example to the end, in less
        time; the accuracy after k steps then counts such an example as
        fooled (it equals worst-iterate accuracy). False attacks every
        example for every step (the accuracy at k of each iterate itself).
      jit_compile: compile the PGD loop with XLA.
      eot_samples: draws per gradient and per prediction (expectation over
        transformation, Athalye et al.) for a randomized model; None: 1 for
        a deterministic model, DEFAULT_EOT_SAMPLES for a randomized one.
      random_draws: how many times the whole evaluation is repeated (each
        with new random draws and random starts); numbers are reported as
        the mean and spread over them. None: 1 for a deterministic model,
        DEFAULT_RANDOM_DRAWS for a randomized one.
      transfer_from: a model (as `model_dir`) to craft the PGD images on, which
        are then scored on `model_dir`'s model: gray-box when both have the
        same architecture (from their run_config.json), else black-box. One
        restart; no early stop (every iterate is scored).
      results_file: the JSON written; default <model_dir>/eval_results.json
        (`model_dir.EVAL_RESULTS_FILE`) for a training model_dir, required
        otherwise.
    """

    model_dir: str
    dataset: str | None = None
    data_dir: str | None = None
    data_source: str | None = None
    split: str = "test"
    epsilons: tuple[float, ...] | None = None
    iterations: tuple[int, ...] = PAPER_ITERATIONS
    step_size: float = PAPER_STEP_SIZE
    restarts: int = 1
    random_start: bool = True
    objective: str = "cross_entropy"
    attack: str = "pgd"
    autoattack_version: str = "standard"
    autoattack_attacks: tuple[str, ...] = ()
    autoattack_iterations: int = 100
    square_queries: int = 5000
    batch_size: int = 64
    max_examples: int | None = None
    seed: int = 0
    drop_broken: bool = True
    jit_compile: bool = False
    eot_samples: int | None = None
    random_draws: int | None = None
    transfer_from: str | None = None
    transfer_results: str | None = None
    results_file: str | None = None

    def __post_init__(self):
        """Checks each field and the rules between fields; reads no file."""
        check(bool(self.model_dir), "`model_dir` must be set. Received: model_dir=''")
        self._check_attack_fields()
        self._check_data_fields()
        check(self.max_examples is None or self.max_examples >= 1,
               f"`max_examples` must be >= 1. Received: max_examples={self.max_examples}")

    def _check_attack_fields(self):
        check(self.epsilons is None or (
            len(self.epsilons) >= 1 and all(0.0 <= e <= 1.0 for e in self.epsilons)),
               f"`epsilons` must be in [0, 1]. Received: epsilons={list(self.epsilons or [])}")
        if self.epsilons is not None:
            object.__setattr__(self, "epsilons", tuple(float(e) for e in self.epsilons))
        check(len(self.iterations) >= 1 and all(
            isinstance(k, numbers.Integral) and k >= 1 for k in self.iterations),
               f"`iterations` must be counts >= 1. Received: iterations={list(self.iterations)}")
        object.__setattr__(self, "iterations", tuple(sorted({int(k) for k in self.iterations})))
        check(0.0 < self.step_size <= 1.0,
               f"`step_size` must be in (0, 1]. Received: step_size={self.step_size}")
        check(self.restarts >= 1, f"`restarts` must be >= 1. Received: restarts={self.restarts}")
        check(self.restarts == 1 or self.random_start,
               "`restarts` > 1 needs `random_start=True` (every restart would be the same). "
               f"Received: restarts={self.restarts}, random_start=False")
        check(self.objective in OBJECTIVES,
               f"`objective` must be one of {OBJECTIVES}. Received: objective={self.objective!r}")
        check(self.seed >= 0, f"`seed` must be >= 0. Received: seed={self.seed}")
        check(self.attack in ATTACKS,
              f"`attack` must be one of {ATTACKS}. Received: attack={self.attack!r}")
        check(self.autoattack_version in AUTOATTACK_VERSIONS,
              f"`autoattack_version` must be one of {AUTOATTACK_VERSIONS}. Received: "
              f"{self.autoattack_version!r}")
        check(self.autoattack_iterations >= 1 and self.square_queries >= 1,
              "`autoattack_iterations` and `square_queries` must be >= 1. Received: "
              f"{self.autoattack_iterations}, {self.square_queries}")
        check(self.attack != "autoattack" or self.autoattack_version != "custom"
              or bool(self.autoattack_attacks),
              "`autoattack_attacks` must name the attacks of the custom version.")
        check(self.attack != "autoattack" or not self.autoattack_attacks
              or self.autoattack_version in ("custom", "rand"),
              "`autoattack_attacks` names the attacks of version custom or rand; "
              f"{self.autoattack_version!r} runs its own. "
              f"Received: autoattack_attacks={list(self.autoattack_attacks)}")
        check(all(name in AUTOATTACK_COMPONENTS for name in self.autoattack_attacks),
              f"`autoattack_attacks` must be from {AUTOATTACK_COMPONENTS}. "
              f"Received: autoattack_attacks={list(self.autoattack_attacks)}")
        check(self.attack == "pgd" or self.epsilons is None or min(self.epsilons) > 0,
              f"`epsilons` must be > 0 for {self.attack}. Received: {list(self.epsilons or [])}")
        check(self.attack == "pgd" or self.transfer_from is None,
              "`transfer_from` crafts with PGD: use `attack=pgd`. "
              f"Received: attack={self.attack!r}")
        check(self.transfer_from is None or self.restarts == 1,
              "`restarts` must be 1 with `transfer_from` (a transfer attack is one run per "
              f"batch). Received: restarts={self.restarts}")
        check(self.transfer_results is None or self.attack == "autoattack",
              "`transfer_results` compares transfer numbers with AutoAttack: use "
              f"`attack=autoattack`. Received: attack={self.attack!r}")
        for name in ("eot_samples", "random_draws"):
            value = getattr(self, name)
            check(value is None or value >= 1, f"`{name}` must be >= 1. Received: {name}={value}")

    def _check_data_fields(self):
        check(self.split in SPLITS,
               f"`split` must be one of {SPLITS}. Received: split={self.split!r}")
        check(self.data_source is None or self.data_source in SOURCES,
               f"`data_source` must be one of {SOURCES}. "
               f"Received: data_source={self.data_source!r}")
        check(self.batch_size >= 1,
               f"`batch_size` must be >= 1. Received: batch_size={self.batch_size}")
