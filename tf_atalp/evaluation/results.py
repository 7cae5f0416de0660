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

FORMAT_VERSION = 2
# The model attacked is the model evaluated (gradients of its own logits).
WHITE_BOX = "white_box"
# Transfer: crafted white-box on another model (the source), scored on this one.
GRAY_BOX = "gray_box"  # the source has the target's architecture (other weights)
BLACK_BOX = "black_box"  # the source has another architecture
THREAT_MODELS = (WHITE_BOX, GRAY_BOX, BLACK_BOX)
DEFINITIONS = {
    "accuracy": "fraction of examples classified correctly on the clean image and after "
                "`iterations` PGD steps of every restart; with early_stop in the attack "
                "settings an example stops being attacked once an iterate fooled the model "
                "and counts as fooled from then on (accuracy = worst_iterate_accuracy)",
    "worst_iterate_accuracy": "fraction of examples classified correctly on the clean image "
                              "and at every PGD iterate 0..`iterations` (0: the start point) "
                              "of every restart",
    "run_iterations": "the length of the single PGD run per restart that all points of this "
                      "attack were read from",
    "can_reach_boundary": "step_size * iterations >= epsilon: the attack can move a pixel as "
                          "far as the epsilon-ball's boundary from the clean image; where "
                          "false, the point measures a weaker attack than its epsilon says",
    "per_class": "per class (label order), accuracies at each attack's longest iteration "
                 "count; null for a class without examples",
    "randomized": "for a model that draws anew on every prediction: every gradient and "
                  "prediction is the mean over `eot_samples` draws (expectation over "
                  "transformation), the whole evaluation is repeated `random_draws` times "
                  "with new draws and random starts, and each number is the mean over the "
                  "repetitions (their standard deviation and values are under 'randomized')",
    "threat_model": "white_box: the attack's gradients are the evaluated model's own; "
                    "gray_box / black_box: PGD ran white-box on `source_model` (same / other "
                    "architecture) and its iterates were scored on the evaluated model; "
                    "worst-iterate is then over the scored counts only",
    "sanity_checks": "violated checks (robust accuracy non-increasing in epsilon; at "
                     "epsilon >= 0.5 at most the largest class share): each means the attack "
                     "is too weak to trust the number; empty when all hold",
    "autoattack": "per epsilon, AutoAttack's robust accuracy after each of its attacks (each "
                  "later attack runs only on the points still robust), the attack that broke "
                  "each example, the time per attack and the gradient-masking flags raised",
    "robust_examples": "per epsilon, one character per evaluated example in dataset order: "
                       "'1' if it counts as robust, '0' if not (clean_examples: correct on "
                       "the clean image); with repetitions, one string per draw "
                       "(*_per_draw)",
    "robust_accuracy": "per epsilon, the fraction of examples classified correctly on the "
                       "clean image and at every iterate of every restart of every attack of "
                       "that epsilon: the worst case per example over the attacks, an upper "
                       "bound on the true robust accuracy",
}


def can_reach_boundary(epsilon: float, step_size: float, iterations: int) -> bool:
    """Whether `iterations` steps of `step_size` can move a pixel by `epsilon` (pixel units)."""
    return step_size * iterations >= epsilon * (1 - 1e-9)


def weak_cells(epsilons, step_size: float, iterations) -> list[tuple[float, int]]:
    """The (epsilon, iterations) cells whose attack cannot reach the epsilon boundary."""
    return [(epsilon, k) for epsilon in epsilons for k in iterations
            if not can_reach_boundary(epsilon, step_size, k)]


def attack_points(evaluation: dict, threat_model: str = WHITE_BOX) -> list[dict]:
    """One JSON-ready entry per (attack, iteration count) of `evaluate_robustness`."""
    points = []
    for result in evaluation["attacks"]:
        described = result["attack"].describe()
        epsilon, step_size = described["epsilon"], described.get("step_size")
        for index, iterations in enumerate(result["record_at"]):
            points.append({
                "threat_model": threat_model, "attack": described["attack"],
                "norm": described.get("norm", "linf"),
                "epsilon": epsilon, "step_size": step_size,
                "iterations": iterations, "run_iterations": described["iterations"],
                "can_reach_boundary": step_size is None or can_reach_boundary(
                    epsilon, step_size, iterations),
                "random_start": described.get("random_start"),
                "restarts": described.get("restarts", 1),
                "objective": described.get("objective", described.get("loss")),
                # The attack runs the model in inference mode (frozen BatchNorm statistics).
                "batchnorm_training": False,
                "attack_settings": described,
                "accuracy": result["accuracy"][index],
                "correct": result["correct"][index],
                "worst_iterate_accuracy": result["worst_iterate_accuracy"][index],
                "worst_iterate_correct": result["worst_iterate_correct"][index],
                "num_examples": evaluation["num_examples"],
            })
    return points


def robust_accuracy(evaluation: dict, threat_model: str = WHITE_BOX) -> list[dict]:
    """Per epsilon, the worst case over every attack and iterate: the headline numbers."""
    return [{"threat_model": threat_model, "epsilon": entry["epsilon"],
             "robust_accuracy": entry["robust_accuracy"],
             "robust_correct": entry["robust_correct"],
             "num_examples": evaluation["num_examples"],
             "attacks": [evaluation["attacks"][i]["attack"].describe() for i in entry["attacks"]],
             **{key: entry[key] for key in ("robust_examples", "robust_examples_per_draw")
                if key in entry}}
            for entry in evaluation["worst_case"]]


def _ratios(correct, totals):
    return [c / n if n else None for c, n in zip(correct, totals)]


def per_class_results(evaluation: dict, class_names: Sequence[str] | None = None) -> dict:
    """Clean and attacked accuracy of each class (label order), JSON-ready."""
    totals = evaluation["per_class"]["num_examples"]
    names = list(class_names) if class_names is not None else [str(k) for k in
                                                               range(len(totals))]
    if len(names) != len(totals):
        raise ValueError(f"`class_names` must have {len(totals)} entries (one per class). "
                         f"Received: {len(names)}")
    return {
        "class_names": names,
        "num_examples": totals,
        "clean_accuracy": _ratios(evaluation["per_class"]["clean_correct"], totals),
        "attacks": [{
            "epsilon": result["attack"].describe()["epsilon"],
            "iterations": result["record_at"][-1],
            "accuracy": _ratios(result["per_class_correct"], totals),
            "worst_iterate_accuracy": _ratios(result["per_class_worst_iterate_correct"], totals),
        } for result in evaluation["attacks"]],
    }


def _mean(values):
    return sum(values) / len(values)


def _std(values):
    mean = _mean(values)
    return (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5


def average_over_draws(evaluations: Sequence[dict]) -> dict:
    """One `evaluate_robustness` dict whose counts and accuracies are means over repetitions.

    The repetitions must cover the same examples with the same attacks; counts
    become floats (means of integer counts).
    """
    first = evaluations[0]
    if len(evaluations) == 1:
        return first
    if len({e["num_examples"] for e in evaluations}) != 1:
        raise ValueError("Every repetition must evaluate the same examples.")

    def mean_of(get):
        values = [get(e) for e in evaluations]
        if isinstance(values[0], list):
            return [_mean(column) for column in zip(*values)]
        return _mean(values)

    attack_keys = ("correct", "accuracy", "worst_iterate_correct", "worst_iterate_accuracy",
                   "per_class_correct", "per_class_worst_iterate_correct")
    return {
        **{key: value for key, value in first.items() if key != "clean_examples"},
        "clean_correct": mean_of(lambda e: e["clean_correct"]),
        "clean_accuracy": mean_of(lambda e: e["clean_accuracy"]),
        "per_class": {"num_examples": first["per_class"]["num_examples"],
                      "clean_correct": mean_of(lambda e: e["per_class"]["clean_correct"])},
        "attacks": [{**result, **{key: mean_of(lambda e, i=index, k=key: e["attacks"][i][k])
                                  for key in attack_keys}}
                    for index, result in enumerate(first["attacks"])],
        "worst_case": [_averaged_worst_case(
            entry, [e["worst_case"][index] for e in evaluations],
            {key: mean_of(lambda e, i=index, k=key: e["worst_case"][i][k])
             for key in ("robust_correct", "robust_accuracy")})
            for index, entry in enumerate(first["worst_case"])],
        "clean_examples_per_draw": [e.get("clean_examples") for e in evaluations],
    }


def _averaged_worst_case(first: dict, per_draw: list[dict], means: dict) -> dict:
    """A worst-case entry over repetitions: mean counts; per-example outcomes of each draw
    (a mean over draws is not one outcome per example)."""
    entry = {key: value for key, value in first.items() if key != "robust_examples"}
    if "robust_examples" in first:
        entry["robust_examples_per_draw"] = [draw["robust_examples"] for draw in per_draw]
    return {**entry, **means}


def randomized_section(evaluations: Sequence[dict], randomization: str,
                       eot_samples: int) -> dict:
    """What was random, the EoT setting, and each repetition's headline numbers with their spread."""
    clean = [e["clean_accuracy"] for e in evaluations]
    robust = {}
    for evaluation in evaluations:
        for entry in evaluation["worst_case"]:
            robust.setdefault(entry["epsilon"], []).append(entry["robust_accuracy"])
    return {
        "randomization": randomization,
        "eot_samples": eot_samples,
        "random_draws": len(evaluations),
        "clean_accuracy": {"mean": _mean(clean), "std": _std(clean), "values": clean},
        "robust_accuracy": [{"epsilon": epsilon, "mean": _mean(values), "std": _std(values),
                             "values": values} for epsilon, values in robust.items()],
    }


def results_document(evaluation: dict, *, dataset: dict, model: dict,
                     command: Sequence[str] | None = None, settings: dict | None = None,
                     class_names: Sequence[str] | None = None,
                     seconds: float | None = None,
                     randomized: dict | None = None,
                     threat_model: str = WHITE_BOX,
                     source_model: dict | None = None) -> dict:
    """The JSON-ready results document.

    Args:
      evaluation: the dict `evaluate_robustness` returned.
      dataset: at least {"name", "split"}; "num_examples" is filled in.
      model: the model description (`describe_model`).
      command: the command line (default: sys.argv).
      settings: other evaluation settings to record (seed, batch size, ...).
      class_names: names of the classes in label order (default "0", "1", ...).
      seconds: the evaluation's wall time.
      randomized: None for a deterministic model, else `randomized_section`'s
        dict (then `evaluation` is `average_over_draws` of the repetitions).
      threat_model: WHITE_BOX, or GRAY_BOX / BLACK_BOX for images crafted on
        `source_model` (its description) and scored on `model`
        (`evaluate_transfer`).
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
        **{key: evaluation[key] for key in ("clean_examples", "clean_examples_per_draw")
           if key in evaluation},
        "seconds": None if seconds is None else round(seconds, 1),
        "definitions": DEFINITIONS,
        "threat_model": threat_model,
        "source_model": source_model,
        "results": attack_points(evaluation, threat_model),
        "robust_accuracy": robust_accuracy(evaluation, threat_model),
        "per_class": per_class_results(evaluation, class_names),
        "randomized": randomized,
    }


def write_results(path: str, document: dict) -> None:
    """Writes the document as JSON; an existing file is replaced whole, never half-written."""
    atomic_write_json(path, document)


def _settings_key(point):
    return (point["threat_model"], point["attack"], point["norm"], point["objective"],
            point["step_size"],
            point["random_start"], point["restarts"], point["run_iterations"],
            bool((point.get("attack_settings") or {}).get("early_stop")))


def _method(point) -> str:
    """How the attack moves: objective and step, or FAB's boundary steps."""
    if point["attack"] in ("fab", "fab-t"):
        towards = "the closest class's" if point["attack"] == "fab" else "each target's"
        return (f"minimal perturbation counted within epsilon, steps onto {towards} "
                "linearised boundary")
    step = (f"step size {point['step_size']:g}" if point["step_size"] is not None
            else "adaptive step size (2 x epsilon, halved where progress stalls)")
    return f"{point['objective']} objective, {step}"


def _describe_settings(point) -> str:
    start = "random start" if point["random_start"] else "start at the image"
    if point["attack"] in ("fab", "fab-t") and point["restarts"] > 1:
        start = "first run from the image, the others from random points epsilon / 2 away"
    crafted = "" if point["threat_model"] == WHITE_BOX else " (crafted on the source model)"
    name = "PGD" if point["attack"] in ("pgd", "fgsm") else point["attack"].upper()
    return (f"{point['threat_model'].replace('_', '-')}{crafted} L-inf {name}, "
            f"{_method(point)}, {start}, "
            f"{point['restarts']} restart(s), one run of {point['run_iterations']} steps"
            + ("; an example is no longer attacked once fooled (accuracy after k steps = "
               "worst-iterate)" if (point.get("attack_settings") or {}).get("early_stop")
               else ""))


def _cell(point) -> str:
    """A table cell: the accuracy, starred where the attack cannot reach the boundary."""
    if point is None:
        return f"{'-':>9}"
    mark = "" if point.get("can_reach_boundary", True) else "*"
    return f"{point['accuracy']:.4f}{mark}".rjust(9)


def _table(points) -> list[str]:
    """Rows: epsilon; columns: accuracy after each iteration count, then worst-iterate."""
    counts = sorted({p["iterations"] for p in points})
    epsilons = sorted({p["epsilon"] for p in points})
    by_cell = {(p["epsilon"], p["iterations"]): p for p in points}
    lines = ["epsilon " + "".join(f"{k:>9}" for k in counts) + f"{'worst-iterate':>15}"]
    for epsilon in epsilons:
        cells = [by_cell.get((epsilon, k)) for k in counts]
        row = "".join(_cell(c) for c in cells)
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
             f"Clean accuracy: {document['clean_accuracy']:.4f} "
             f"({document['clean_correct']:g}/{n})"]
    source = document.get("source_model")
    if source:
        lines.insert(1, f"Attack crafted on: {source['path']} ({_describe_model(source)}); "
                        f"threat model {document['threat_model'].replace('_', '-')}")
    randomized = document.get("randomized")
    if randomized:
        clean = randomized["clean_accuracy"]
        lines += [f"Randomized model ({randomized['randomization']}): every gradient and "
                  f"prediction averages {randomized['eot_samples']} draws (EoT); numbers are "
                  f"means over {randomized['random_draws']} repetitions (clean accuracy std "
                  f"{clean['std']:.4f})."]
    groups = {}
    for point in document["results"]:
        groups.setdefault(_settings_key(point), []).append(point)
    for points in groups.values():
        lines += ["", _describe_settings(points[0]) + "; accuracy after k steps:"]
        lines += _table(points)
    robust = document.get("robust_accuracy") or []
    if robust:
        if document.get("threat_model", WHITE_BOX) == WHITE_BOX:
            lines += ["", "Robust accuracy (worst case per example over every attack, restart "
                          "and iterate; an upper bound):"]
        else:
            lines += ["", "Transfer accuracy (worst case per example over every attack and "
                          "scored count of the source's images; white-box attacks on this "
                          "model can only do better):"]
        spread = {entry["epsilon"]: entry["std"]
                  for entry in (randomized or {}).get("robust_accuracy", [])}
        lines += [f"  epsilon {entry['epsilon']:g}: {entry['robust_accuracy']:.4f} "
                  f"({entry['robust_correct']:g}/{entry['num_examples']})"
                  + (f", std {spread[entry['epsilon']]:.4f} over repetitions"
                     if entry["epsilon"] in spread else "") for entry in robust]
    for run in document.get("autoattack") or []:
        described = run["described"]
        lines += ["", f"AutoAttack ({described['version']}, epsilon {run['epsilon']:g}"
                  + (f", EoT {described['eot_samples']} draws" if described["eot_samples"] > 1
                     else "") + "): robust accuracy after each attack (each runs only on the "
                  "points still robust):"]
        # In the order they ran (the components' order: a JSON file sorts robust_after).
        order = [component["attack"] for component in described["components"]]
        lines += [f"  {name:<10} {run['robust_after'][name]:.4f}  ({run['seconds'][name]:.1f} "
                  f"s, broke {run['broken_by'].get(name, 0)})" for name in order]
        for flag in run["flags"]:
            where = "" if flag["batches"] is None else f" ({flag['batches']} batch(es))"
            lines += [f"WARNING: gradient masking flag '{flag['name']}'{where}: "
                      f"{flag['message']}"]
    if any(not p.get("can_reach_boundary", True) for p in document["results"]):
        lines += ["* step_size x k < epsilon: k steps cannot reach the epsilon boundary from "
                  "the clean image, so this cell measures a weaker attack than its epsilon."]
    if document.get("seconds") is not None:
        lines += [f"Evaluation took {document['seconds']:.1f} s."]
    for message in document.get("sanity_checks") or []:
        lines += ["", f"WARNING: {message}"]
    return "\n".join(lines)
