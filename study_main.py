"""Runs a whole study: trains every model, attacks every target, writes the report.

    python study_main.py --flagfile=configs/study_flowers17.flags
    python study_main.py --flagfile=configs/study_flowers17.flags --plan_only
    python study_main.py --flagfile=configs/study_flowers17.flags --report_only

Rerun the same command after an interruption: finished cells are kept.
Flags: tf_atalp/study/flags.py; what a study is: tf_atalp/study/runner.py.
"""

import sys

from absl import app, flags

from tf_atalp.cli import exit_with_error, exit_with_failure, flagfiles_first
from tf_atalp.io_utils import NoSpaceError
from tf_atalp.run_lock import FolderInUseError
from tf_atalp.study import flags as study_flags
from tf_atalp.study.runner import prepare_study, run_study

study_flags.define_study_flags()
flags.adopt_module_key_flags(study_flags)  # so --helpshort lists them


def flagfile_text() -> str:
    """The study's flags with their values, one per line (a flagfile that reproduces it)."""
    lines = [flag.serialize() for flag in flags.FLAGS.get_flags_for_module(study_flags)
             if flag.value is not None and flag.serialize()
             and flag.name not in study_flags.ACTION_FLAGS]
    return "\n".join(sorted(lines)) + "\n"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if flags.FLAGS.plan_only and flags.FLAGS.report_only:
        exit_with_error("`plan_only` and `report_only` cannot both be set. Received: "
                        "plan_only=True, report_only=True")
    try:
        study = prepare_study(study_flags.study_config_from_flags())  # every check; writes nothing
    except (ValueError, FileNotFoundError) as error:
        exit_with_error(str(error))
    try:
        results = run_study(study, command=sys.argv, plan_only=flags.FLAGS.plan_only,
                            report_only=flags.FLAGS.report_only,
                            flagfile_text=flagfile_text())
    except (NoSpaceError, FolderInUseError, RuntimeError) as error:  # RuntimeError: a cell's
        exit_with_failure(str(error))  # command failed (its log is named)
    if results is not None:
        print(f"\nReport: {study.config.report_dir}/report.md")
    elif flags.FLAGS.report_only:
        exit_with_failure(f"No report written: the reference entry {study.config.reference!r} "
                          "has not finished (every comparison is with it). Run the study "
                          "without --report_only to compute its cells.")


if __name__ == "__main__":
    app.run(main, argv=flagfiles_first(sys.argv))
