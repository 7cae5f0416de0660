"""A results document as plain text for the terminal (what eval_main.py prints).

`format_table(document)`: the model and data, clean accuracy, one table per
attack setting (rows epsilon, columns the accuracy after each step count,
then worst-iterate), robust accuracy, AutoAttack and the warnings.
"""

from tf_atalp.evaluation.results import WHITE_BOX


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
