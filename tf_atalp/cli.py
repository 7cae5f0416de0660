"""What train_main.py and eval_main.py share: command-line errors without noise.

A bad flag value, a missing folder or a corrupt file is reported as one
message on stderr (no traceback, no flag listing) with a pointer to the help,
and the process exits with status 2, as absl does for flag-parsing errors.
A fault of the machine met during the work (a full disk, a run folder in use
by another process) is one message too, without the pointer: status 1.
"""

import os
import sys
from typing import NoReturn

USAGE_ERROR_STATUS = 2
FAILURE_STATUS = 1


def exit_with_error(message: str, program: str | None = None) -> NoReturn:
    """Prints `<program>: error: <message>` and where to find help; exits with status 2."""
    program = program or os.path.basename(sys.argv[0])
    sys.stderr.write(f"{program}: error: {message}\n"
                     f"Run `python {program} --helpshort` to list the flags.\n")
    sys.stderr.flush()
    sys.exit(USAGE_ERROR_STATUS)


def exit_with_failure(message: str, program: str | None = None) -> NoReturn:
    """Prints `<program>: error: <message>`; exits with status 1 (the flags were fine)."""
    program = program or os.path.basename(sys.argv[0])
    sys.stderr.write(f"{program}: error: {message}\n")
    sys.stderr.flush()
    sys.exit(FAILURE_STATUS)


def flagfiles_first(argv: list[str]) -> list[str]:
    """argv with every --flagfile moved to the front (in their order), the other flags after.

    absl applies arguments in order, so in `--defense=igr --flagfile=run.flags`
    the flagfile's --defense would silently win. With flagfiles first, a flag
    typed on the command line always overrides the flagfile, wherever it
    stands; flagfiles still override each other in the order given.
    """
    program, arguments = argv[:1], argv[1:]
    if "--" in arguments:  # leave positional arguments after "--" where they are
        end = arguments.index("--")
        arguments, rest = arguments[:end], arguments[end:]
    else:
        rest = []
    flagfiles = [a for a in arguments if a.startswith("--flagfile=")]
    others = [a for a in arguments if not a.startswith("--flagfile=")]
    return program + flagfiles + others + rest
