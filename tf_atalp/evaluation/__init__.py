"""Evaluation: white-box L-inf PGD robustness, results documents, model loading.

`evaluate_robustness` scores a model under attacks (restarts, worst case
over attacks, worst iterate, every step count from one run);
`results_document` / `format_table` / `write_results` record it;
`load_model_for_eval` opens a training model_dir, a SavedModel or a .keras
file. `evaluate_transfer` crafts PGD images once on a source model and
scores them on target models (gray-box and black-box threat models). eval_main.py runs `EvalConfig` (plain data) -> `prepare_evaluation`
(every check against the disk) -> `run_evaluation`.
"""

from tf_atalp.evaluation.config import EvalConfig
from tf_atalp.evaluation.loading import ModelSource, find_model, load_model, load_model_for_eval
from tf_atalp.evaluation.preparation import (
    PreparedEvaluation, default_epsilons, prepare_evaluation)
from tf_atalp.evaluation.results import results_document, write_results
from tf_atalp.evaluation.text_table import format_table
from tf_atalp.evaluation.robustness import evaluate_robustness
from tf_atalp.evaluation.run import run_evaluation
from tf_atalp.evaluation.transfer import evaluate_transfer

__all__ = [
    "EvalConfig", "ModelSource", "PreparedEvaluation", "default_epsilons",
    "evaluate_robustness", "evaluate_transfer", "find_model", "format_table", "load_model", "load_model_for_eval",
    "prepare_evaluation", "results_document", "run_evaluation", "write_results",
]
