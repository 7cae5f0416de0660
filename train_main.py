"""Trains a classifier with a defense (default: AT+ALP) and writes a model_dir.

    python train_main.py --flagfile=configs/quickstart.flags
    python train_main.py --flagfile=configs/flowers17_cpu.flags --data_dir=../shared/data/flowers17

Rerun the same command after an interruption to resume. Flags: tf_atalp/training/flags.py.
"""

import sys

from absl import app, flags

from tf_atalp.cli import exit_with_error, exit_with_failure, flagfiles_first
from tf_atalp.io_utils import NoSpaceError
from tf_atalp.run_lock import FolderInUseError
from tf_atalp.training import flags as train_flags
from tf_atalp.training import run

train_flags.define_train_flags()
flags.adopt_module_key_flags(train_flags)  # so --helpshort lists them


def flagfile_text() -> str:
    """Our flags with their values, one per line: a flagfile that reproduces the run."""
    lines = [flag.serialize() for flag in flags.FLAGS.get_flags_for_module(train_flags)
             if flag.value is not None and flag.serialize()]
    return "\n".join(sorted(lines)) + "\n"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        config = train_flags.run_config_from_flags()
        prepared = run.prepare_run(config)  # every check; writes nothing
    except (ValueError, FileNotFoundError) as error:
        exit_with_error(str(error))
    try:
        run.train(prepared, flagfile_text())
    except (NoSpaceError, FolderInUseError) as error:
        exit_with_failure(str(error))


if __name__ == "__main__":
    app.run(main, argv=flagfiles_first(sys.argv))
