"""What train_main.py and eval_main.py share: command-line errors without noise.

A bad flag value, a missing folder or a corrupt file is reported as one
message on stderr (no traceback, no flag listing) with a pointer to the help,
and the process exits with status 2, as absl does for flag-parsing errors.
"""

import os
import sys
from typing import NoReturn

USAGE_ERROR_STATUS = 2


def exit_with_error(message: str, program: str | None = None) -> NoReturn:
    """Prints `<program>: error: <message>` and where to find help; exits with status 2."""
    program = program or os.path.basename(sys.argv[0])
    sys.stderr.write(f"{program}: error: {message}\n"
                     f"Run `python {program} --helpshort` to list the flags.\n")
    sys.stderr.flush()
    sys.exit(USAGE_ERROR_STATUS)
