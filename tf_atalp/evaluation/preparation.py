"""Preparing an evaluation: every check against the disk, once, before any model is loaded.

`prepare_evaluation(config)` finds the model (a training model_dir, a
SavedModel or a .keras file), reads its run_config.json when there is one,
resolves the defaults that depend on it (the epsilons, the dataset), checks
the data folder and the results path, and returns a `PreparedEvaluation`
that `run_evaluation` uses as it is (nothing is read twice).
"""

import dataclasses
import os

from tf_atalp.attacks import PGD, Restarts
from tf_atalp.data import DataConfig, validate_data_config
from tf_atalp.evaluation.config import (
    DEFAULT_EOT_SAMPLES, DEFAULT_RANDOM_DRAWS, PAPER_EPSILONS, EvalConfig)
from tf_atalp.evaluation.loading import ModelSource, find_model
from tf_atalp.export import read_serving_info
from tf_atalp.model_dir import EVAL_RESULTS_FILE
from tf_atalp.models import MIN_IMAGE_SIZE
from tf_atalp.training.config import RunConfig, load_run_config
from tf_atalp.validation import check


def default_epsilons(run_config: RunConfig | None) -> tuple[float, ...]:
    """The paper's radii, plus the radius the model was trained at (when known), sorted."""
    epsilons = set(PAPER_EPSILONS)
    if run_config is not None and run_config.attack.epsilon > 0:
        epsilons.add(run_config.attack.epsilon)
    return tuple(sorted(epsilons))


def model_randomization(source: ModelSource, run_config: RunConfig | None) -> str | None:
    """What the model draws on every prediction (None: deterministic, or not known).

    From serving_info.json for a SavedModel, else from the trained defense.
    """
    if source.format == "saved_model":
        return read_serving_info(source.model_path).get("randomized")
    return run_config.defense.randomization() if run_config is not None else None


@dataclasses.dataclass(frozen=True)
class PreparedEvaluation:
    """A checked evaluation.

    Attributes:
      config: the EvalConfig as given.
      source: where the model is (`find_model`).
      run_config: the training RunConfig beside the model, or None.
      epsilons: the radii to attack (config.epsilons, or `default_epsilons`).
      results_path: where the results JSON goes.
      randomization: what a randomized model draws per prediction, or None.
      eot_samples: draws averaged per gradient and prediction (1: plain).
      random_draws: repetitions of the whole evaluation.
    """

    config: EvalConfig
    source: ModelSource
    run_config: RunConfig | None
    epsilons: tuple[float, ...]
    results_path: str
    randomization: str | None = None
    eot_samples: int = 1
    random_draws: int = 1

    def attacks(self) -> list:
        """One untargeted PGD attack per epsilon (with its restarts), each of max(iterations) steps."""
        config = self.config
        return [Restarts(PGD(epsilon=epsilon, step_size=config.step_size,
                             iterations=max(config.iterations),
                             random_start=config.random_start, objective=config.objective,
                             jit_compile=config.jit_compile, early_stop=config.drop_broken),
                         config.restarts)
                for epsilon in self.epsilons]

    def data_config(self, image_size: int, num_classes: int | None) -> DataConfig:
        """The evaluation data: one unaugmented pass, checked to have `num_classes` classes."""
        config = self.config
        settings = dict(image_size=image_size, batch_size=config.batch_size, augment=False,
                        cache=False, expected_num_classes=num_classes)
        if config.dataset is not None:
            return DataConfig(dataset=config.dataset, data_dir=config.data_dir,
                              source=config.data_source or "auto", **settings)
        if config.data_dir is not None:
            settings["data_dir"] = config.data_dir
        if config.data_source is not None:
            settings["source"] = config.data_source
        return dataclasses.replace(self.run_config.data, **settings)


def prepare_evaluation(config: EvalConfig) -> PreparedEvaluation:
    """Checks `config` against the disk (model, run_config.json, data, results path).

    Raises ValueError (or FileNotFoundError) before any model is loaded.
    """
    check(config.results_file is None or not os.path.isdir(config.results_file),
          "`results_file` must be a file path, not a folder. "
          f"Received: results_file={config.results_file!r}")
    try:
        source = find_model(config.model_dir)
    except FileNotFoundError as error:
        raise ValueError(f"`model_dir` holds no model to evaluate: {error}") from error
    run_config = load_run_config(source.run_config_dir) if source.run_config_dir else None
    check(config.results_file is not None or source.is_model_dir,
          "`results_file` must be set when `model_dir` is not a training model_dir. "
          f"Received: model_dir={config.model_dir!r}, results_file=None")
    check(config.dataset is not None or run_config is not None,
          f"`dataset` must be set: {config.model_dir!r} has no run_config.json to take "
          "the training dataset from. Received: dataset=None")
    results_path = config.results_file or os.path.join(source.path, EVAL_RESULTS_FILE)
    randomization = model_randomization(source, run_config)
    randomized = randomization is not None
    prepared = PreparedEvaluation(
        config, source, run_config, config.epsilons or default_epsilons(run_config),
        results_path, randomization,
        eot_samples=config.eot_samples or (DEFAULT_EOT_SAMPLES if randomized else 1),
        random_draws=config.random_draws or (DEFAULT_RANDOM_DRAWS if randomized else 1))
    if run_config is not None:
        image_size, num_classes = run_config.data.image_size, run_config.model.num_classes
    else:  # Known only once the model is loaded; the rest can be checked now.
        image_size, num_classes = MIN_IMAGE_SIZE, None
    validate_data_config(prepared.data_config(image_size, num_classes))
    return prepared
