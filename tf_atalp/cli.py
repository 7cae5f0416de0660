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


def _flag_name(argument: str) -> str | None:
    """The flag an argument sets ("--epochs=3" -> "epochs", "--noaugment" -> "augment")."""
    if not argument.startswith("--") or argument == "--":
        return None
    name = argument[2:].split("=", 1)[0]
    return name[2:] if "=" not in argument and name.startswith("no") else name


def _flagfile_flags(path: str) -> set[str]:
    """The flags a flagfile sets (unreadable files are left to absl to report)."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.strip() for line in f]
    except OSError:
        return set()
    names = {_flag_name(line) for line in lines if line and not line.startswith("#")}
    names.discard(None)
    return names


def overridden_flags(argv: list[str]) -> list[str]:
    """Messages for flags given on the command line BEFORE a --flagfile that sets them again.

    absl applies arguments in order, so the flagfile's value silently wins
    (`--defense=igr --flagfile=configs/flowers17_cpu.flags` trains at_alp).
    """
    messages = []
    for index, argument in enumerate(argv):
        if not argument.startswith("--flagfile="):
            continue
        path = argument.split("=", 1)[1]
        in_file = _flagfile_flags(path)
        for earlier in argv[1:index]:
            name = _flag_name(earlier)
            if name and name != "flagfile" and name in in_file:
                messages.append(f"{earlier} comes before --flagfile={path}, which sets --{name} "
                                "again and would win: put --flagfile first, then the flags "
                                "that change it")
    return messages


def exit_if_flags_are_overridden(argv: list[str] | None = None) -> None:
    """Exits with a usage error when `overridden_flags(argv or sys.argv)` finds any."""
    messages = overridden_flags(sys.argv if argv is None else argv)
    if messages:
        exit_with_error("; ".join(messages))
