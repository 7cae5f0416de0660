"""Evaluates a trained model under white-box L-inf PGD and writes eval_results.json.

    python eval_main.py --model_dir=runs/at_alp
    python eval_main.py --model_dir=runs/at_alp/saved_model --dataset=flowers17 \
        --data_dir=../shared/data/flowers17 --results_file=/tmp/eval.json
    python eval_main.py --protocol=paper --targets=runs/none,runs/pat,runs/at_alp \
        --gray_box_sources=runs/none_seed1 --black_box_sources=runs/resnet18_none \
        --output_dir=results/paper_protocol

The last runs the paper's experiments (tf_atalp/protocol): white-box, gray-box
and black-box PGD under the paper's and a strong setting, Table 1, Figures 3,
4 and 6, Table 2 (with --masks_dir), sanity checks and report.md; a rerun
resumes the finished cells.

Defaults are the paper's: epsilon 0.25 and 0.5, step size 1/256, accuracy
after 10, 20, 50, 100 and 200 steps of one 200-step run. Flags:
tf_atalp/evaluation/flags.py.
"""

import os
import sys

from absl import app, flags

from tf_atalp.cli import exit_with_error, exit_with_failure, flagfiles_first
from tf_atalp.evaluation import flags as eval_flags
from tf_atalp.evaluation import format_table, prepare_evaluation, run_evaluation
from tf_atalp.evaluation.sanity import WARNING as MASKING_WARNING
from tf_atalp.io_utils import NoSpaceError
from tf_atalp.protocol import flags as protocol_flags
from tf_atalp.protocol.runner import RESULTS_FILE, prepare_protocol, run_protocol
from tf_atalp.protocol.report import REPORT_FILE

eval_flags.define_eval_flags()
protocol_flags.define_protocol_flags()
flags.adopt_module_key_flags(eval_flags)  # so --helpshort lists them
flags.adopt_module_key_flags(protocol_flags)


def run_paper_protocol() -> None:
    """--protocol=paper: every check first, then the cells, tables, figures and report."""
    protocol = prepare_protocol(protocol_flags.protocol_config_from_flags())
    document = run_protocol(protocol, command=sys.argv)
    out = protocol.config.output_dir
    print(f"\nReport: {os.path.join(out, REPORT_FILE)}\nNumbers: {os.path.join(out, RESULTS_FILE)}")
    for messages in document["sanity_checks"].values():
        for message in messages:
            print(f"WARNING: {message}" if message.startswith(MASKING_WARNING) else
                  f"Note: {message}")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        if flags.FLAGS.protocol == "paper":
            run_paper_protocol()
            return
        prepared = prepare_evaluation(eval_flags.eval_config_from_flags())  # checks; loads nothing
        document = run_evaluation(prepared, command=sys.argv)
    except (ValueError, FileNotFoundError) as error:
        exit_with_error(str(error))
    except NoSpaceError as error:  # a full disk while writing the results: one line too
        exit_with_failure(str(error))
    print(format_table(document))
    print(f"\nResults: {prepared.results_path}")


if __name__ == "__main__":
    app.run(main, argv=flagfiles_first(sys.argv))
