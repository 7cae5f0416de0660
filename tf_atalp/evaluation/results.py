"""The results document of an evaluation (JSON) and its plain-text table.

Every attack point names its threat model, norm, epsilon, step size,
iterations, random start, restarts and objective next to its accuracy, so a
figure read from the file is never separated from how it was measured.
"""

import datetime
import sys
from collections.abc import Sequence

import keras
import tensorflow as tf

import tf_atalp
from tf_atalp.io_utils import atomic_write_json

FORMAT_VERSION = 1
# The model attacked is the model evaluated (gradients of its own logits).
WHITE_BOX = "white_box"
DEFINITIONS = {
    "accuracy": "fraction of examples classified correctly on the clean image and after "
                "`iterations` PGD steps of every restart",
    "worst_iterate_accuracy": "fraction of examples classified correctly on the clean image "
                              "and at every PGD iterate 0..`iterations` (0: the start point) "
                              "of every restart",
    "run_iterations": "the length of the single PGD run per restart that all points of this "
                      "attack were read from",
}


def attack_points(evaluation: dict) -> list[dict]:
    """One JSON-ready entry per (attack, iteration count) of `evaluate_robustness`."""
    points = []
    for result in evaluation["attacks"]:
        attack = result["attack"]
        for index, iterations in enumerate(result["record_at"]):
            points.append({
                "threat_model": WHITE_BOX, "attack": "pgd", "norm": "linf",
                "epsilon": attack.epsilon, "step_size": attack.step_size,
                "iterations": iterations, "run_iterations": attack.iterations,
                "random_start": attack.random_start, "restarts": attack.restarts,
                "objective": attack.objective, "batchnorm_training": attack.training,
                "accuracy": result["accuracy"][index],
                "correct": result["correct"][index],
                "worst_iterate_accuracy": result["worst_iterate_accuracy"][index],
                "worst_iterate_correct": result["worst_iterate_correct"][index],
                "num_examples": evaluation["num_examples"],
            })
    return points


def results_document(evaluation: dict, *, dataset: dict, model: dict,
                     command: Sequence[str] | None = None, settings: dict | None = None) -> dict:
    """The JSON-ready results document.

    Args:
      evaluation: the dict `evaluate_robustness` returned.
      dataset: at least {"name", "split"}; "num_examples" is filled in.
      model: the model description (`describe_model`).
      command: the command line (default: sys.argv).
      settings: other evaluation settings to record (seed, batch size, ...).
    """
    return {
        "format_version": FORMAT_VERSION,
        "command": list(sys.argv if command is None else command),
        "tf_atalp_version": tf_atalp.__version__,
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "timestamp_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
        "dataset": {**dataset, "num_examples": evaluation["num_examples"]},
        "model": model,
        "settings": dict(settings or {}),
        "clean_accuracy": evaluation["clean_accuracy"],
        "clean_correct": evaluation["clean_correct"],
        "definitions": DEFINITIONS,
        "results": attack_points(evaluation),
    }


def write_results(path: str, document: dict) -> None:
    """Writes the document as JSON; an existing file is replaced whole, never half-written."""
    atomic_write_json(path, document)


def _settings_key(point):
    return (point["threat_model"], point["norm"], point["objective"], point["step_size"],
            point["random_start"], point["restarts"], point["run_iterations"])


def _describe_settings(point) -> str:
    start = "random start" if point["random_start"] else "start at the image"
    return (f"{point['threat_model'].replace('_', '-')} L-inf PGD, {point['objective']} "
            f"objective, step size {point['step_size']:g}, {start}, "
            f"{point['restarts']} restart(s), one run of {point['run_iterations']} steps")


def _table(points) -> list[str]:
    """Rows: epsilon; columns: accuracy after each iteration count, then worst-iterate."""
    counts = sorted({p["iterations"] for p in points})
    epsilons = sorted({p["epsilon"] for p in points})
    by_cell = {(p["epsilon"], p["iterations"]): p for p in points}
    lines = ["epsilon " + "".join(f"{k:>9}" for k in counts) + f"{'worst-iterate':>15}"]
    for epsilon in epsilons:
        cells = [by_cell.get((epsilon, k)) for k in counts]
        row = "".join(f"{c['accuracy']:>9.4f}" if c else f"{'-':>9}" for c in cells)
        last = [c for c in cells if c][-1]
        lines.append(f"{epsilon:<8g}{row}{last['worst_iterate_accuracy']:>15.4f}")
    return lines


def _describe_model(model: dict) -> str:
    parts = [model["format"]]
    if "architecture" in model:
        parts.append(f"{model['architecture']} depth {model['depth']} width {model['width']}")
    if "defense" in model:
        parts.append(f"defense {model['defense']}")
    return ", ".join(parts)


def format_table(document: dict) -> str:
    """The document as text for the terminal: clean accuracy, then one table per setting."""
    data, model = document["dataset"], document["model"]
    n = data["num_examples"]
    lines = [f"Model: {model['path']} ({_describe_model(model)})",
             f"Data: {data['name']} {data['split']} split, {n} examples",
             f"Clean accuracy: {document['clean_accuracy']:.4f} ({document['clean_correct']}/{n})"]
    groups = {}
    for point in document["results"]:
        groups.setdefault(_settings_key(point), []).append(point)
    for points in groups.values():
        lines += ["", _describe_settings(points[0]) + "; accuracy after k steps:"]
        lines += _table(points)
    return "\n".join(lines)
