"""One evaluation run: load the model, attack it on the data, write the results document."""

from collections.abc import Sequence

from absl import logging

from tf_atalp import data as data_lib
from tf_atalp.evaluation.config import EvalConfig
from tf_atalp.evaluation.loading import load_model_for_eval
from tf_atalp.evaluation.results import results_document, write_results
from tf_atalp.evaluation.robustness import evaluate_robustness


def _warn_short_attacks(config: EvalConfig) -> None:
    reach = config.step_size * max(config.iterations)
    for epsilon in config.epsilons:
        if reach < epsilon:
            logging.warning(
                "step_size * iterations = %g < epsilon = %g: PGD cannot travel across the "
                "epsilon-ball, so the attack is weak at this epsilon.", reach, epsilon)


def run_evaluation(config: EvalConfig, command: Sequence[str] | None = None) -> dict:
    """Evaluates `config.model_dir`, writes `config.results_path`; returns the document."""
    _warn_short_attacks(config)
    model, description, _ = load_model_for_eval(config.model_dir)
    data_config = config.data_config(description["image_size"], description["num_classes"])
    info = data_lib.get_dataset_info(data_config)
    dataset = data_lib.make_dataset(data_config, config.split, training=False)
    evaluation = evaluate_robustness(
        model, dataset, config.attacks(), record_at=config.iterations,
        max_examples=config.max_examples, seed=config.seed, jit_compile=config.jit_compile)
    split_size = info.num_test if config.split == "test" else info.num_train
    document = results_document(
        evaluation,
        dataset={"name": info.name, "split": config.split, "split_size": split_size,
                 "source": data_config.resolved_source, "data_dir": data_config.data_dir,
                 "image_size": data_config.image_size},
        model=description, command=command,
        settings={"seed": config.seed, "batch_size": config.batch_size,
                  "max_examples": config.max_examples, "jit_compile": config.jit_compile})
    write_results(config.results_path, document)
    logging.info("Wrote %s", config.results_path)
    return document
