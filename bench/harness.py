"""What every benchmark shares: settings, timing, entries, the machine, the results files.

A comparison module exposes `NAME`, `DESCRIPTION`, `ESTIMATED_SECONDS` (quick, full)
and `run(settings) -> list[dict]`, each dict made by `entry(...)`: one
comparison, with both sides' values, their ratio, the settings and the machine.

Timing rules (`time_alternating`): every variant is called once first (trace,
compile, caches), then the variants are run in turn, round after round, so
background load hits them alike; the figure is the median over rounds of the
mean time of `reps` calls. Nothing is timed while another thing runs.

The single scripts (beta_sweep.py, crosscheck_autoattack.py, ...) write
bench/results/<name>.json with `write_results`; `shared_data` finds the real
images.

This module imports no TensorFlow, so `run.py --help` and the bench tests
stay fast; `machine()` imports it when asked.
"""

import dataclasses
import datetime
import functools
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
if BENCH_DIR not in sys.path:
    sys.path.insert(0, BENCH_DIR)

RESULTS_PATH = os.path.join(BENCH_DIR, "results.json")
RESULTS_DIR = os.path.join(BENCH_DIR, "results")  # the single scripts' <name>.json files
SCHEMA_VERSION = 1
QUICK, FULL = "quick", "full"


@dataclasses.dataclass(frozen=True)
class Settings:
    """The sizes of one run of the benchmarks; `quick` keeps the whole run within minutes.

    Attributes:
      mode: "quick" or "full".
      image_size, width, batch_size: the network and batch every comparison
        shares unless it varies them (ResNet-10 of this width at this size).
      num_classes: logits of that network.
      rounds: timed rounds per variant (alternated); reps: calls per round.
      pgd_iterations: the K of the training-cost comparison.
      attack_iterations: PGD iterations of the attack-throughput comparison.
      eval_examples: images scored in the strength checks (at least 100, so that
        one image is at most one point of accuracy).
      data_dir: the 17 Flowers image folder.
    """

    mode: str = QUICK
    image_size: int = 32
    width: int = 16
    batch_size: int = 32
    num_classes: int = 10
    rounds: int = 5
    reps: int = 2
    pgd_iterations: tuple[int, ...] = (7, 10)
    attack_iterations: int = 10
    eval_examples: int = 200
    data_dir: str = ""

    @property
    def quick(self) -> bool:
        return self.mode == QUICK

    def describe(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(self).items()}


def shared_data(name: str) -> str:
    """`<project root>/../shared/data/<name>`, the read-only real data."""
    return os.path.normpath(os.path.join(ROOT, os.pardir, "shared", "data", name))


def settings_for(mode: str, data_dir: str | None = None) -> Settings:
    """The settings of `mode` ("quick": minutes on 2 cores; "full": the README's table)."""
    if mode not in (QUICK, FULL):
        raise ValueError(f"`mode` must be one of {(QUICK, FULL)}. Received: mode={mode!r}")
    data_dir = data_dir or shared_data("flowers17")
    if mode == QUICK:
        return Settings(mode=QUICK, data_dir=data_dir)
    return Settings(mode=FULL, image_size=64, rounds=7, reps=3, eval_examples=512,
                    attack_iterations=20, data_dir=data_dir)


@functools.cache
def machine() -> dict:
    """The machine the figures come from: CPU, its bf16 flags, accelerators, versions.

    Read once per process (every comparison asks for it); do not mutate the dict.
    """
    import keras
    import tensorflow as tf

    from tf_atalp import __version__
    from tf_atalp.training.precision import (
        BF16_CPU_FLAGS, cpu_model_name, read_cpu_flags, resolve_precision)

    gpus = tf.config.list_physical_devices("GPU")
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model_name() or platform.processor(),
        "cpu_bf16_flags": sorted(read_cpu_flags() & set(BF16_CPU_FLAGS)),
        "gpus": [tf.config.experimental.get_device_details(g).get("device_name", g.name)
                 for g in gpus],
        "auto_precision": resolve_precision("auto").policy,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {"tf_atalp": __version__, "tensorflow": tf.__version__,
                     "keras": keras.__version__},
    }


def run_probe(script: str, **flags) -> dict:
    """The JSON that `bench/<script>` prints last, run in a fresh process with `--name=value` flags."""
    command = [sys.executable, os.path.join(BENCH_DIR, script)]
    command += [f"--{name}={value}" for name, value in flags.items()]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def installed(package: str) -> bool:
    """Whether `package` can be imported (without importing it)."""
    return importlib.util.find_spec(package) is not None


def skipped_entry(benchmark: str, comparison: str, package: str, settings: Settings,
                  machine_info: dict, goal: dict | None = None) -> dict:
    """The entry of a peer comparison whose package is absent: says so, no figures."""
    return entry(benchmark, comparison, None, None, settings={"run": settings.describe()},
                 machine_info=machine_info, goal=goal,
                 skipped=f"skipped: {package} not installed (pip install -r "
                         "bench/requirements.txt)")


def side(label: str, value: float | None, unit: str, **extra) -> dict:
    """One side of a comparison: what was measured, its value and unit."""
    return {"label": label, "value": None if value is None else float(value), "unit": unit,
            **extra}


def _met(ratio: float | None, target: float, relation: str) -> bool | None:
    """Whether `ratio relation target` holds; None without a ratio."""
    if ratio is None:
        return None
    return ratio <= target if relation == "<=" else ratio >= target


def goal(description: str, target: float, relation: str, ratio: float | None = None) -> dict:
    """A goal on the ratio: met when `ratio relation target` ("<=" or ">=").

    Without `ratio` it is judged by `entry`, on the entry's ratio.
    """
    if relation not in ("<=", ">="):
        raise ValueError(f"`relation` must be '<=' or '>='. Received: {relation!r}")
    return {"description": description, "target": target, "relation": relation,
            "met": _met(ratio, target, relation)}


def entry(benchmark: str, comparison: str, subject: dict | None, reference: dict | None, *,
          settings: dict, machine_info: dict, ratio: float | None = None,
          ratio_definition: str = "subject value / reference value", goal: dict | None = None,
          notes: str = "", skipped: str | None = None, **extra) -> dict:
    """One comparison as it goes into bench/results.json.

    `ratio` defaults to subject / reference (both values present). The id
    (benchmark/comparison) is stable across runs, so runs can be compared.
    """
    if ratio is None and subject and reference and subject["value"] and reference["value"]:
        ratio = subject["value"] / reference["value"]
    if goal is not None and goal.get("met") is None and ratio is not None:
        goal = dict(goal, met=_met(ratio, goal["target"], goal["relation"]))
    return {"id": f"{benchmark}/{comparison}", "benchmark": benchmark, "comparison": comparison,
            "subject": subject, "reference": reference,
            "ratio": None if ratio is None else round(float(ratio), 4),
            "ratio_definition": ratio_definition, "goal": goal, "settings": settings,
            "machine": machine_info, "notes": notes, "skipped": skipped, **extra}


def block(value):
    """Waits for a TensorFlow result (a tensor, or a structure of them) and returns it."""
    if hasattr(value, "numpy"):
        value.numpy()
    elif isinstance(value, (list, tuple)):
        for item in value:
            block(item)
    elif isinstance(value, dict):
        for item in value.values():
            block(item)
    return value


def time_alternating(variants: dict[str, Callable[[], object]], rounds: int, reps: int,
                     warmup: int = 1) -> dict[str, dict]:
    """{name: {"median_s", "samples_s", "first_call_s"}}: seconds per call of each variant.

    Each variant is called `warmup` times first (the first call's time is
    kept: it holds tracing and compiling), then in each of `rounds` rounds
    every variant runs `reps` calls in turn.
    """
    first = {}
    for name, call in variants.items():
        started = time.perf_counter()
        for _ in range(warmup):
            block(call())
        first[name] = (time.perf_counter() - started) / max(warmup, 1)
    samples = {name: [] for name in variants}
    for _ in range(rounds):
        for name, call in variants.items():
            started = time.perf_counter()
            for _ in range(reps):
                block(call())
            samples[name].append((time.perf_counter() - started) / reps)
    return {name: {"median_s": statistics.median(values),
                   "samples_s": [round(v, 6) for v in values],
                   "first_call_s": round(first[name], 4)}
            for name, values in samples.items()}


def new_document(command: str, mode: str, machine_info: dict) -> dict:
    """An empty results document (entries added per comparison)."""
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return {"schema_version": SCHEMA_VERSION, "command": command, "mode": mode,
            "started_utc": now, "updated_utc": now, "machine": machine_info,
            "benchmarks": {}, "entries": []}


def load_document(path: str) -> dict | None:
    """The results document at `path`, or None if absent, unreadable or of another schema."""
    try:
        with open(path) as f:
            document = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("schema_version") != SCHEMA_VERSION:
        return None
    return document


def add_benchmark(document: dict, name: str, entries: list[dict], seconds: float,
                  error: str | None = None) -> dict:
    """Replaces the entries of benchmark `name` with `entries` and records how long it took."""
    kept = [e for e in document["entries"] if e.get("benchmark") != name]
    document["entries"] = kept + list(entries)
    document["benchmarks"][name] = {"seconds": round(seconds, 1), "entries": len(entries),
                                    "error": error,
                                    "finished_utc": datetime.datetime.now(
                                        datetime.timezone.utc).isoformat(timespec="seconds")}
    document["updated_utc"] = document["benchmarks"][name]["finished_utc"]
    return document


def write_document(path: str, document: dict) -> None:
    """Writes the results atomically (an interrupted run keeps what it had finished)."""
    from tf_atalp.io_utils import atomic_write_json

    atomic_write_json(path, document)


def write_results(name: str, command: str, results: dict) -> str:
    """Writes a single script's bench/results/<name>.json with `machine()`; returns the path."""
    document = {
        "benchmark": name, "command": command, "results": results, "machine": machine(),
        "utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    path = os.path.join(RESULTS_DIR, f"{name}.json")
    write_document(path, document)
    return path


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit.startswith("s/"):
        return f"{value * 1000:.1f} ms/{unit[2:]}" if value < 1 else f"{value:.2f} {unit}"
    if unit in ("accuracy",):
        return f"{value * 100:.1f}%"
    if abs(value) >= 100:
        return f"{value:.0f} {unit}"
    return f"{value:.3g} {unit}"


def _cells(e: dict, not_met: str) -> tuple[str, str, str, str, str]:
    """One entry's row: comparison, subject, reference, ratio, goal."""
    if e.get("skipped"):
        return e["id"], e["skipped"], "", "", ""
    subject, reference, g = e.get("subject") or {}, e.get("reference") or {}, e.get("goal")
    goal_text = "" if not g else (f"{g['relation']} {g['target']:g}: "
                                  f"{'met' if g['met'] else not_met}")
    return (e["id"],
            f"{subject.get('label', '')}: "
            f"{format_value(subject.get('value'), subject.get('unit', ''))}",
            f"{reference.get('label', '')}: "
            f"{format_value(reference.get('value'), reference.get('unit', ''))}",
            "-" if e.get("ratio") is None else f"{e['ratio']:.3g}", goal_text)


def table(entries: list[dict]) -> str:
    """A plain-text table of the entries: comparison, both sides, ratio, goal."""
    rows = [("comparison", "subject", "reference", "ratio", "goal")]
    rows += [_cells(e, "NOT met") for e in entries]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in rows)


def markdown_table(entries: list[dict]) -> str:
    """The same table in Markdown (for the README's Performance section)."""
    lines = ["| comparison | subject | reference | ratio | goal |", "| --- | --- | --- | --- | --- |"]
    lines += ["| " + " | ".join(_cells(e, "**not met**")) + " |" for e in entries]
    return "\n".join(lines)
