"""Running one training command of a study as a child process, its output kept in a log.

The child dies with the study (Linux: PR_SET_PDEATHSIG), so a study killed
with SIGKILL leaves no orphan trainer writing into a model_dir that the
resumed study will train again.
"""

import ctypes
import os
import re
import signal
import subprocess
import sys

from tf_atalp.reporting import report

EPOCH_LINE = re.compile(r"^Epoch (\d+)/(\d+)")
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child, before exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the child may outlive a killed study


def run_logged(command: list[str], log_path: str, name: str) -> None:
    """Runs `command`, writing its output to `log_path` and an "epoch k/E" line per epoch.

    Raises RuntimeError naming the log and its last lines if the command fails.
    """
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL",
                                                                       "2"))
    with open(log_path, "w") as log:
        log.write("$ " + " ".join(command) + "\n")
        log.flush()
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True, env=environment, bufsize=1,
                                 preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        last_lines = []
        for line in child.stdout:
            log.write(line)
            last_lines = (last_lines + [line.rstrip()])[-8:]
            match = EPOCH_LINE.match(line)
            if match:
                report(f"    {name}: epoch {match.group(1)}/{match.group(2)}")
        code = child.wait()
    if code != 0:
        tail = "\n".join(f"    {line}" for line in last_lines)
        raise RuntimeError(f"{name}: the command failed (exit {code}); its output is in "
                           f"{log_path}. Last lines:\n{tail}")
