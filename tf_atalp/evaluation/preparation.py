"""Preparing an evaluation: every check against the disk, once, before any model is loaded.

`prepare_evaluation(config)` finds the model (a training model_dir, a
SavedModel or a .keras file), reads its run_config.json when there is one,
resolves the defaults that depend on it (the epsilons, the dataset), checks
the data folder and every output (the results file, its plot beside it, the
model card in a training model_dir: `tf_atalp.output_checks`), and returns a `PreparedEvaluation`
that `run_evaluation` uses as it is (nothing is read twice).
"""

import dataclasses
import os

from tf_atalp.attacks import PGD, Restarts
from tf_atalp.attacks.autoattack import build_component, check_num_classes, version_components
from tf_atalp.data import DataConfig, validate_data_config
from tf_atalp.evaluation.config import (
    DEFAULT_EOT_SAMPLES, DEFAULT_RANDOM_DRAWS, PAPER_EPSILONS, EvalConfig)
from tf_atalp.evaluation.loading import ModelSource, find_model
from tf_atalp.evaluation.results import BLACK_BOX, GRAY_BOX, WHITE_BOX
from tf_atalp.evaluation.transfer_warning import read_protocol_results
from tf_atalp.export import read_serving_info
from tf_atalp.model_dir import EVAL_RESULTS_FILE
from tf_atalp.models import MIN_IMAGE_SIZE
from tf_atalp.output_checks import check_output_dir, check_output_file
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


def transfer_threat_model(target: RunConfig | None, source: RunConfig | None) -> str:
    """GRAY_BOX when both run_configs name the same architecture, else BLACK_BOX.

    (Architecture, depth, width and stem; the weights differ, as the
    attacker of the paper's gray-box setting does not have them.) Without
    both run_configs nothing is known in common: BLACK_BOX.
    """
    if target is None or source is None:
        return BLACK_BOX
    keys = ("architecture", "depth", "width", "stem")
    same = all(getattr(target.model, k) == getattr(source.model, k) for k in keys)
    return GRAY_BOX if same else BLACK_BOX


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
      threat_model: WHITE_BOX, or GRAY_BOX / BLACK_BOX with `transfer_source`.
      transfer_source: where the model the images are crafted on is, or None.
      transfer_run_config: its training RunConfig, or None.
      transfer_protocol: the protocol results of `config.transfer_results`
        (read and checked here), or None.
    """

    config: EvalConfig
    source: ModelSource
    run_config: RunConfig | None
    epsilons: tuple[float, ...]
    results_path: str
    randomization: str | None = None
    eot_samples: int = 1
    random_draws: int = 1
    threat_model: str = WHITE_BOX
    transfer_source: ModelSource | None = None
    transfer_run_config: RunConfig | None = None
    transfer_protocol: dict | None = None

    def attacks(self) -> list:
        """One untargeted attack per epsilon (with its restarts), each of max(iterations) steps."""
        config = self.config
        if config.attack != "pgd":  # APGD, FAB, Square: built as AutoAttack builds them
            # (Square's schedule stretched over its queries, the Square paper's, as a
            # single attack; APGD's start as --random_start says).
            return [build_component(config.attack, epsilon, iterations=max(config.iterations),
                                    queries=max(config.iterations), restarts=config.restarts,
                                    random_start=config.random_start, rescale_schedule=True)
                    for epsilon in self.epsilons]
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


def prepare_evaluation(config: EvalConfig, check_outputs: bool = True) -> PreparedEvaluation:
    """Checks `config` against the disk (model, run_config.json, data, outputs).

    `check_outputs=False` skips the outputs' checks, for a caller that
    writes none of them (the protocol).

    Raises ValueError (or FileNotFoundError) before any model is loaded.
    """
    if check_outputs and config.results_file is not None:
        check_output_file(config.results_file, name="results_file")
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
    transfer_source = transfer_run_config = None
    threat_model = WHITE_BOX
    if config.transfer_from is not None:
        try:
            transfer_source = find_model(config.transfer_from)
        except FileNotFoundError as error:
            raise ValueError(f"`transfer_from` holds no model: {error}") from error
        transfer_run_config = (load_run_config(transfer_source.run_config_dir)
                               if transfer_source.run_config_dir else None)
        threat_model = transfer_threat_model(run_config, transfer_run_config)
        check(transfer_run_config is None or run_config is None
              or transfer_run_config.model.image_size == run_config.model.image_size,
              "`transfer_from` must take the target's image size. Received: "
              f"{transfer_run_config and transfer_run_config.model.image_size} and "
              f"{run_config and run_config.model.image_size}")
    default_name = EVAL_RESULTS_FILE if transfer_source is None else (
        f"{os.path.splitext(EVAL_RESULTS_FILE)[0]}_{threat_model}_from_"
        f"{os.path.basename(os.path.normpath(transfer_source.path))}.json")
    results_path = config.results_file or os.path.join(source.path, default_name)
    if check_outputs:
        check_output_file(results_path, name="results_file")
        if source.is_model_dir:  # eval_main updates its model_card.json
            check_output_dir(source.path, name="model_dir")
    randomization = model_randomization(source, run_config)
    randomized = randomization is not None
    prepared = PreparedEvaluation(
        config, source, run_config, config.epsilons or default_epsilons(run_config),
        results_path, randomization,
        eot_samples=config.eot_samples or (DEFAULT_EOT_SAMPLES if randomized else 1),
        random_draws=config.random_draws or (DEFAULT_RANDOM_DRAWS if randomized else 1),
        threat_model=threat_model, transfer_source=transfer_source,
        transfer_run_config=transfer_run_config,
        transfer_protocol=(None if config.transfer_results is None
                           else read_protocol_results(config.transfer_results)))
    if run_config is not None:
        image_size, num_classes = run_config.data.image_size, run_config.model.num_classes
    else:  # Known only once the model is loaded; the rest can be checked now.
        image_size, num_classes = MIN_IMAGE_SIZE, None
    if config.attack == "autoattack" and num_classes is not None:
        check_num_classes(version_components(config.autoattack_version,
                                             config.autoattack_attacks), num_classes)
    validate_data_config(prepared.data_config(image_size, num_classes))
    return prepared
