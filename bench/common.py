"""Shared set-up of the benchmarks: a results file and a small ResNet trainer."""

import datetime
import os
import platform
import sys

import keras
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tf_atalp import __version__  # noqa: E402
from tf_atalp.io_utils import atomic_write_json  # noqa: E402
from tf_atalp.training.precision import (  # noqa: E402
    BF16_CPU_FLAGS, cpu_model_name, read_cpu_flags, resolve_precision)

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def write_results(name: str, command: str, results: dict) -> str:
    """Writes bench/results/<name>.json with the machine and versions; returns the path."""
    document = {
        "benchmark": name, "command": command, "results": results,
        "machine": {"cpus": os.cpu_count(), "cpu_model": cpu_model_name() or platform.processor(),
                    "cpu_bf16_flags": sorted(read_cpu_flags() & set(BF16_CPU_FLAGS)),
                    "auto_precision": resolve_precision("auto").policy,
                    "platform": platform.platform(), "python": platform.python_version()},
        "versions": {"tf_atalp": __version__, "tensorflow": tf.__version__,
                     "keras": keras.__version__},
        "utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    path = os.path.join(RESULTS_DIR, f"{name}.json")
    atomic_write_json(path, document)
    return path


def shared_data(name: str) -> str:
    """`<project root>/../shared/data/<name>`, the read-only real data."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.normpath(os.path.join(root, os.pardir, "shared", "data", name))
