"""Evaluates a trained model under white-box L-inf PGD and writes eval_results.json.

    python eval_main.py --model_dir=runs/at_alp
    python eval_main.py --model_dir=runs/at_alp/saved_model --dataset=flowers17 \
        --data_dir=../shared/data/flowers17 --results_file=/tmp/eval.json

Defaults are the paper's: epsilon 0.25 and 0.5, step size 1/256, accuracy
after 10, 20, 50, 100 and 200 steps of one 200-step run. Flags:
tf_atalp/evaluation/flags.py.
"""

import sys

from absl import app, flags

from tf_atalp.cli import exit_with_error, flagfiles_first
from tf_atalp.evaluation import flags as eval_flags
from tf_atalp.evaluation import format_table, prepare_evaluation, run_evaluation

eval_flags.define_eval_flags()
flags.adopt_module_key_flags(eval_flags)  # so --helpshort lists them


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        prepared = prepare_evaluation(eval_flags.eval_config_from_flags())  # checks; loads nothing
        document = run_evaluation(prepared, command=sys.argv)
    except (ValueError, FileNotFoundError) as error:
        exit_with_error(str(error))
    print(format_table(document))
    print(f"\nResults: {prepared.results_path}")


if __name__ == "__main__":
    app.run(main, argv=flagfiles_first(sys.argv))
