"""`EvalConfig`: one evaluation run, checked across fields before any model is loaded.

Defaults are the paper's white-box setting: L-inf PGD with epsilon in
{0.25, 0.5} (pixel units, 64/256 and 128/256), step size 1/256 and 10 to 200
iterations (one 200-step run scores every count).
"""

import dataclasses
import numbers
import os

from tf_atalp.attacks.pgd import OBJECTIVES, PGDConfig
from tf_atalp.config import RunConfig, load_run_config
from tf_atalp.data import DataConfig, validate_data_config
from tf_atalp.data.config import MIN_IMAGE_SIZE, SOURCES
from tf_atalp.data.datasets import SPLITS
from tf_atalp.evaluation.loading import ModelSource, find_model
from tf_atalp.validation import check

PAPER_EPSILONS = (0.25, 0.5)
PAPER_ITERATIONS = (10, 20, 50, 100, 200)
PAPER_STEP_SIZE = 1 / 256
RESULTS_FILE = "eval_results.json"



def default_epsilons(run_config: RunConfig | None) -> tuple[float, ...]:
    """The paper's radii, plus the radius the model was trained at (when known), sorted."""
    epsilons = set(PAPER_EPSILONS)
    if run_config is not None and run_config.attack.epsilon > 0:
        epsilons.add(run_config.attack.epsilon)
    return tuple(sorted(epsilons))


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
        the paper's 0.25 and 0.5 plus the model's training epsilon (from its
        run_config.json, when there is one).
      iterations: step counts to report, each >= 1; one run of the largest.
      step_size: PGD step, pixel units in (0, 1].
      restarts: random restarts (an example is robust only if it survives all).
      random_start: start PGD at a uniform point of the epsilon-ball.
      objective: "cross_entropy" or "margin".
      batch_size: examples per batch.
      max_examples: evaluate only N examples of the split: a class-balanced
        subset (classes take turns, each giving its next example in split
        order), recorded in the results.
      seed: seed of the random starts.
      jit_compile: compile the PGD loop with XLA.
      results_file: the JSON written; default <model_dir>/eval_results.json
        for a training model_dir, required otherwise.
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
    batch_size: int = 64
    max_examples: int | None = None
    seed: int = 0
    jit_compile: bool = False
    results_file: str | None = None
    source: ModelSource = dataclasses.field(init=False, repr=False, compare=False)
    run_config: RunConfig | None = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self):
        self._check_attack_fields()
        self._check_data_fields()
        check(self.max_examples is None or self.max_examples >= 1,
               f"`max_examples` must be >= 1. Received: max_examples={self.max_examples}")
        check(self.results_file is None or not os.path.isdir(self.results_file),
               "`results_file` must be a file path, not a folder. "
               f"Received: results_file={self.results_file!r}")
        check(bool(self.model_dir), "`model_dir` must be set. Received: model_dir=''")
        try:
            source = find_model(self.model_dir)
        except FileNotFoundError as error:
            raise ValueError(f"`model_dir` holds no model to evaluate: {error}") from error
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "run_config", (
            load_run_config(source.run_config_dir) if source.run_config_dir else None))
        check(self.results_file is not None or source.is_model_dir,
               "`results_file` must be set when `model_dir` is not a training model_dir. "
               f"Received: model_dir={self.model_dir!r}, results_file=None")
        if self.epsilons is None:
            object.__setattr__(self, "epsilons", default_epsilons(self.run_config))
        check(self.dataset is not None or self.run_config is not None,
               f"`dataset` must be set: {self.model_dir!r} has no run_config.json to take "
               "the training dataset from. Received: dataset=None")
        self._check_data_exists()

    def _check_attack_fields(self):
        check(self.epsilons is None or (
            len(self.epsilons) >= 1 and all(0.0 <= e <= 1.0 for e in self.epsilons)),
               f"`epsilons` must be in [0, 1]. Received: epsilons={list(self.epsilons or [])}")
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

    def _check_data_fields(self):
        check(self.split in SPLITS,
               f"`split` must be one of {SPLITS}. Received: split={self.split!r}")
        check(self.data_source is None or self.data_source in SOURCES,
               f"`data_source` must be one of {SOURCES}. "
               f"Received: data_source={self.data_source!r}")
        check(self.batch_size >= 1,
               f"`batch_size` must be >= 1. Received: batch_size={self.batch_size}")

    def _check_data_exists(self):
        """Checks the data flags (and the data folder) with the sizes known before loading."""
        if self.run_config is not None:
            image_size = self.run_config.data.image_size
            num_classes = self.run_config.model.num_classes
        else:  # Known only once the model is loaded; the rest can be checked now.
            image_size, num_classes = MIN_IMAGE_SIZE, None
        validate_data_config(self.data_config(image_size, num_classes))

    @property
    def results_path(self) -> str:
        """Where the results JSON goes."""
        if self.results_file is not None:
            return self.results_file
        return os.path.join(self.source.path, RESULTS_FILE)

    def data_config(self, image_size: int, num_classes: int | None) -> DataConfig:
        """The evaluation data: one unaugmented pass, checked to have `num_classes` classes."""
        settings = dict(image_size=image_size, batch_size=self.batch_size, augment=False,
                        cache=False, expected_num_classes=num_classes)
        if self.dataset is not None:
            return DataConfig(dataset=self.dataset, data_dir=self.data_dir,
                              source=self.data_source or "auto", **settings)
        if self.data_dir is not None:
            settings["data_dir"] = self.data_dir
        if self.data_source is not None:
            settings["source"] = self.data_source
        return dataclasses.replace(self.run_config.data, **settings)

    def attacks(self) -> list[PGDConfig]:
        """One untargeted PGD attack per epsilon, each running max(iterations) steps."""
        return [PGDConfig(epsilon=epsilon, step_size=self.step_size,
                          iterations=max(self.iterations), random_start=self.random_start,
                          objective=self.objective, restarts=self.restarts)
                for epsilon in self.epsilons]
