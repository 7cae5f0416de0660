"""One evaluation run: load the model, attack it on the data, write the results and a plot."""

import dataclasses
import os
import time
from collections.abc import Sequence

from absl import logging

from tf_atalp import data as data_lib
from tf_atalp.data.subset import (
    balanced_subset, describe_subset, select_examples, split_labels)
from tf_atalp.evaluation.autoattack_run import evaluate_autoattack
from tf_atalp.evaluation.loading import load_model
from tf_atalp.evaluation.preparation import PreparedEvaluation
from tf_atalp.evaluation.results import (
    WHITE_BOX, average_over_draws, randomized_section, results_document, robust_accuracy,
    weak_cells, write_results)
from tf_atalp.evaluation.robustness import evaluate_robustness
from tf_atalp.evaluation.sanity import sanity_checks
from tf_atalp.evaluation.transfer import SOURCE, evaluate_transfer
from tf_atalp.evaluation.transfer_warning import flag_transfer_beats_white_box
from tf_atalp.model_card import update_model_card
from tf_atalp.plots import plot_accuracy_vs_steps
from tf_atalp.reporting import report
from tf_atalp.seeds import derive_seed


def _warn_weak_cells(prepared: PreparedEvaluation) -> None:
    """One warning naming every (epsilon, iterations) cell that cannot reach the boundary."""
    config = prepared.config
    if config.attack != "pgd":
        return  # APGD sets its own step size
    cells = weak_cells(prepared.epsilons, config.step_size, config.iterations)
    if cells:
        named = ", ".join(f"(epsilon {e:g}, {k} steps)" for e, k in cells)
        logging.warning(
            "step_size %g x iterations < epsilon for %s: PGD cannot travel from the clean image "
            "to the epsilon boundary in that many steps, so those points measure a weaker "
            "attack than their epsilon says (marked can_reach_boundary=false in the results).",
            config.step_size, named)


TARGET = "target"


def plot_path(results_path: str) -> str:
    """Where the accuracy-against-steps figure of a results file goes (beside it, .png)."""
    return os.path.splitext(results_path)[0] + ".png"


def _white_box(prepared: PreparedEvaluation, model, dataset, expected: int):
    """(evaluation averaged over the repetitions, the randomized section or None)."""
    config = prepared.config
    attacks = prepared.attacks()
    evaluations = []
    for draw in range(prepared.random_draws):
        if prepared.random_draws > 1:
            report(f"Repetition {draw + 1} of {prepared.random_draws}:")
        evaluations.append(evaluate_robustness(
            model, dataset, attacks, record_at=config.iterations,
            seed=config.seed if draw == 0 else derive_seed(config.seed, "draw", draw),
            num_examples_hint=expected, progress=True, eot_samples=prepared.eot_samples))
    randomized = None
    if prepared.randomization is not None or len(evaluations) > 1 or prepared.eot_samples > 1:
        randomized = randomized_section(evaluations, prepared.randomization,
                                        prepared.eot_samples)
    return average_over_draws(evaluations), randomized


def _transfer(prepared: PreparedEvaluation, model, description: dict, dataset):
    """(the target's evaluation on images crafted on the source, the source's description)."""
    config = prepared.config
    source, source_description = load_model(prepared.transfer_source,
                                            prepared.transfer_run_config)
    for key in ("image_size", "num_classes"):
        if source_description[key] != description[key]:
            raise ValueError(f"`transfer_from` must have the target's {key}. Received: "
                             f"{source_description[key]} and {description[key]}")
    report(f"{prepared.threat_model.replace('_', '-')}: crafting on "
           f"{source_description['path']}, scoring on the target.")
    # Every iterate is scored on the target: no early stop on the source.
    attacks = [dataclasses.replace(attack.inner, early_stop=False)
               for attack in prepared.attacks()]
    result = evaluate_transfer(source, {TARGET: model}, dataset,
                               attacks, record_at=config.iterations, seed=config.seed)
    source_description[WHITE_BOX] = robust_accuracy(result["models"][SOURCE])
    return result["models"][TARGET], source_description


def _attack_summary(config) -> str:
    """How the run attacks, for the first line it prints."""
    if config.attack == "autoattack":
        return (f"AutoAttack {config.autoattack_version} ({config.autoattack_iterations} "
                f"APGD/FAB steps, {config.square_queries} Square queries)")
    if config.attack == "pgd":
        return (f"{max(config.iterations)} PGD steps of {config.step_size:g}, "
                f"{config.restarts} restart(s)")
    unit = "queries" if config.attack == "square" else "steps"
    return f"{config.attack} of {max(config.iterations)} {unit}, {config.restarts} restart(s)"


def _autoattack(prepared: PreparedEvaluation, model, dataset) -> dict:
    """AutoAttack at every epsilon, with a line per finished epsilon."""
    config = prepared.config
    if prepared.randomization is not None and config.autoattack_version != "rand":
        logging.warning("The model is randomized (%s): AutoAttack's version 'rand' (EoT) is the "
                        "one made for it.", prepared.randomization)

    def progress(epsilon, done, total):
        report(f"AutoAttack {config.autoattack_version}, epsilon {epsilon:g}: "
               f"epsilon {done}/{total} done.")
    eot_samples = 1
    if config.autoattack_version == "rand":  # an explicit --eot_samples wins; else at least 20
        eot_samples = config.eot_samples or max(prepared.eot_samples, 20)
    return evaluate_autoattack(
        model, dataset, prepared.epsilons, version=config.autoattack_version,
        attacks=config.autoattack_attacks, iterations=config.autoattack_iterations,
        queries=config.square_queries, eot_samples=eot_samples, seed=config.seed,
        progress=progress)


def run_evaluation(prepared: PreparedEvaluation, command: Sequence[str] | None = None) -> dict:
    """Evaluates the prepared model, writes `prepared.results_path` and its plot; returns the document."""
    started = time.time()
    config = prepared.config
    _warn_weak_cells(prepared)
    model, description = load_model(prepared.source, prepared.run_config)
    data_config = prepared.data_config(description["image_size"], description["num_classes"])
    info = data_lib.get_dataset_info(data_config)
    dataset = data_lib.make_dataset(data_config, config.split, training=False)
    split_size = info.num_test if config.split == "test" else info.num_train
    subset = None
    if config.max_examples is not None and config.max_examples < split_size:
        labels = split_labels(dataset)
        indices = balanced_subset(labels, config.max_examples)
        subset = describe_subset(labels, indices, info.class_names)
        dataset = select_examples(dataset, indices, config.batch_size)
    expected = subset["num_examples"] if subset else split_size
    report(f"Evaluating {description['path']} on {expected} {info.name} {config.split} "
           f"examples: epsilons {', '.join(f'{e:g}' for e in prepared.epsilons)}, "
           + _attack_summary(config) + ".")
    if prepared.randomization is not None or prepared.eot_samples > 1:
        report(f"Randomized model ({prepared.randomization or 'as --eot_samples says'}): "
               f"expectation over {prepared.eot_samples} draws per gradient and prediction, "
               f"{prepared.random_draws} repetition(s).")
    if config.attack == "autoattack":
        evaluation, randomized, source_model = _autoattack(prepared, model, dataset), None, None
    elif prepared.transfer_source is not None:
        evaluation, source_model = _transfer(prepared, model, description, dataset)
        randomized = None
    else:
        evaluation, randomized = _white_box(prepared, model, dataset, expected)
        source_model = None
    document = results_document(
        evaluation,
        dataset={"name": info.name, "split": config.split, "split_size": split_size,
                 "source": data_config.resolved_source, "data_dir": data_config.data_dir,
                 "image_size": data_config.image_size, "subset": subset},
        model=description, command=command,
        settings={"seed": config.seed, "batch_size": config.batch_size,
                  "max_examples": config.max_examples, "jit_compile": config.jit_compile,
                  "drop_broken": config.drop_broken,
                  "eot_samples": prepared.eot_samples, "random_draws": prepared.random_draws},
        class_names=info.class_names, seconds=time.time() - started, randomized=randomized,
        threat_model=prepared.threat_model, source_model=source_model)
    if config.attack == "autoattack":
        if prepared.transfer_protocol is not None:
            for note in flag_transfer_beats_white_box(
                    evaluation["autoattack"], prepared.transfer_protocol, prepared.source.path,
                    evaluation["num_examples"]):
                report(f"Note: {note}.")
        document["autoattack"] = evaluation["autoattack"]
        for entry, run in zip(document["robust_accuracy"], evaluation["autoattack"]):
            entry["attacks"] = run["described"]["components"]
            entry["autoattack"] = {k: run["described"][k] for k in ("version", "eot_samples")}
    document["sanity_checks"] = sanity_checks(document)
    for message in document["sanity_checks"]:  # also at the end of the printed table
        logging.warning("%s", message)
    write_results(prepared.results_path, document)
    if document["results"]:  # AutoAttack has no per-iterate points to draw
        plot_accuracy_vs_steps(document, plot_path(prepared.results_path))
    logging.info("Wrote %s", prepared.results_path)
    if prepared.source.is_model_dir:
        card = update_model_card(prepared.source.path, document, prepared.results_path)
        report(f"Model card: {card} (and in the SavedModel's assets); "
               f"python -m tf_atalp.model_card {prepared.source.path} prints it.")
    return document
