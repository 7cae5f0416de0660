"""Human-readable progress lines of the command-line runs (stdout, flushed at once)."""

import sys


def report(text: str) -> None:
    """Prints `text` to stdout at once (logs go to stderr; this is what a person reads)."""
    sys.stdout.write(text.rstrip("\n") + "\n")
    sys.stdout.flush()
