"""A robustness model card: what a model is, and every robustness figure measured on it.

`update_model_card(model_dir, results_document)` (eval_main.py calls it after
each evaluation of a training model_dir) merges the evaluation's figures into
`<model_dir>/model_card.json` and copies the card into the SavedModel's
assets (`saved_model/assets/model_card.json`), so a served model carries its
record. The card holds the defense and its hyperparameters, the training
attack, the data, clean accuracy, and every figure measured so far, each
with its threat model, attack, epsilon, step size, iterations, restarts,
number of examples and date. A figure without a threat model is refused.

    python -m tf_atalp.model_card runs/flowers17_cpu_at_alp

prints it as a table.
"""

import datetime
import json
import os
import sys

from tf_atalp.export import ASSETS_DIR
from tf_atalp.io_utils import atomic_write_json
from tf_atalp.model_dir import (
    CLASS_NAMES_FILE, MODEL_CARD_FILE, RUN_CONFIG_FILE, SAVED_MODEL_DIR, TRAIN_RESULTS_FILE)

FORMAT_VERSION = 1
# What makes two figures the same measurement (a newer one replaces an older one).
_FIGURE_KEY = ("kind", "threat_model", "attack", "norm", "epsilon", "step_size", "iterations",
               "run_iterations", "restarts", "random_start", "objective", "dataset", "split",
               "num_examples", "eot_samples")


def _read_json(path: str) -> dict | None:
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def _figures(document: dict, results_path: str | None) -> list[dict]:
    """The robustness figures of one results document (eval_results.json), card-ready."""
    data = document["dataset"]
    randomized = document.get("randomized") or {}
    common = {"dataset": data["name"], "split": data["split"],
              "date_utc": document.get("timestamp_utc"), "results_file": results_path,
              # Randomized models: attacked and scored with EoT, averaged over repetitions.
              "eot_samples": randomized.get("eot_samples"),
              "random_draws": randomized.get("random_draws")}
    figures = []
    for point in document["results"]:
        figures.append({
            "kind": "attack_point", **{key: point.get(key) for key in (
                "threat_model", "attack", "norm", "epsilon", "step_size", "iterations",
                "run_iterations", "restarts", "random_start", "objective", "num_examples",
                "can_reach_boundary", "accuracy", "worst_iterate_accuracy")},
            **common})
    for entry in document.get("robust_accuracy", []):
        attacks = entry["attacks"]
        figures.append({
            "kind": "worst_case", "threat_model": entry["threat_model"],
            "attack": "+".join(sorted({a["attack"] for a in attacks})), "norm": "linf",
            "epsilon": entry["epsilon"],
            "step_size": attacks[0].get("step_size") if len(attacks) == 1 else None,
            "iterations": max(a.get("iterations", 0) for a in attacks),
            "run_iterations": max(a.get("iterations", 0) for a in attacks),
            "restarts": max(a.get("restarts", 1) for a in attacks),
            "random_start": all(a.get("random_start", False) for a in attacks),
            "objective": "+".join(sorted({str(a.get("objective")) for a in attacks})),
            "num_examples": entry["num_examples"], "accuracy": entry["robust_accuracy"],
            "attacks": attacks, **common})
    for figure in figures:
        if not figure.get("threat_model"):
            raise ValueError(f"A robustness figure needs its threat model. Received: {figure}")
    return figures


def _merge(old: list[dict], new: list[dict]) -> list[dict]:
    """Old figures, with those measured again replaced by the new ones, then the new ones."""
    def key(figure):
        return tuple(json.dumps(figure.get(k), sort_keys=True) for k in _FIGURE_KEY)
    replaced = {key(figure) for figure in new}
    return [figure for figure in old if key(figure) not in replaced] + new


def build_model_card(model_dir: str, document: dict | None = None,
                     results_path: str | None = None) -> dict:
    """The card of `model_dir`: its description, and its figures merged with `document`'s."""
    run_config = _read_json(os.path.join(model_dir, RUN_CONFIG_FILE))
    if run_config is None:
        raise FileNotFoundError(f"No {RUN_CONFIG_FILE} in {model_dir!r}: is it the model_dir "
                                "of a train_main run?")
    train_results = _read_json(os.path.join(model_dir, TRAIN_RESULTS_FILE)) or {}
    class_names = (_read_json(os.path.join(model_dir, CLASS_NAMES_FILE)) or {}).get(
        "class_names")
    previous = _read_json(os.path.join(model_dir, MODEL_CARD_FILE)) or {}
    figures = previous.get("robustness", [])
    clean = previous.get("clean_accuracy")
    if document is not None:
        figures = _merge(figures, _figures(document, results_path))
        clean = {"accuracy": document["clean_accuracy"],
                 "num_examples": document["dataset"]["num_examples"],
                 "dataset": document["dataset"]["name"], "split": document["dataset"]["split"],
                 "date_utc": document.get("timestamp_utc")}
    final = train_results.get("final_metrics", {})
    return {
        "format_version": FORMAT_VERSION,
        "model_dir": os.path.abspath(model_dir),
        "updated_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
        "model": dict(run_config["model"]),
        "defense": run_config["defense"],
        "training_attack": {"attack": "pgd", "norm": "linf", **run_config["attack"],
                            "batchnorm_training": run_config["train"].get(
                                "attack_batchnorm_training", False)},
        "data": {"dataset": run_config["data"]["dataset"],
                 "image_size": run_config["data"]["image_size"],
                 "num_train": train_results.get("num_train"),
                 "num_test": train_results.get("num_test"),
                 "class_names": class_names},
        "training": {"epochs": train_results.get("epochs"),
                     "final_test_clean_accuracy": final.get("val_clean_accuracy"),
                     "precision": (train_results.get("precision") or {}).get("policy")},
        "clean_accuracy": clean,
        "robustness": figures,
        "notes": "Every robustness figure is an upper bound on the true robust accuracy under "
                 "its threat model: a stronger attack can only lower it.",
    }


def update_model_card(model_dir: str, document: dict, results_path: str | None = None) -> str:
    """Merges an evaluation into `<model_dir>/model_card.json` and the SavedModel's assets."""
    card = build_model_card(model_dir, document, results_path)
    path = os.path.join(model_dir, MODEL_CARD_FILE)
    atomic_write_json(path, card)
    assets = os.path.join(model_dir, SAVED_MODEL_DIR, ASSETS_DIR)
    if os.path.isdir(os.path.join(model_dir, SAVED_MODEL_DIR)):
        os.makedirs(assets, exist_ok=True)
        atomic_write_json(os.path.join(assets, MODEL_CARD_FILE), card)
    return path


def _number(value, digits=4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _weak_mark(figure: dict) -> str:
    return "*" if figure.get("can_reach_boundary") is False else ""


def _attack_name(figure: dict) -> str:
    """The attack, with "+eotN" when a randomized model was attacked with EoT over N draws."""
    samples = figure.get("eot_samples")
    return figure["attack"] + (f"+eot{samples}" if samples and samples > 1 else "")


def format_model_card(card: dict) -> str:
    """The card as text: what the model is, then one row per robustness figure."""
    defense = dict(card["defense"])
    name = defense.pop("name")
    attack = card["training_attack"]
    lines = [
        f"Model card: {card['model_dir']}",
        f"  model     {card['model'].get('architecture')} depth {card['model'].get('depth')} "
        f"width {card['model'].get('width')}, {card['data']['image_size']} px, "
        f"{card['model'].get('num_classes')} classes",
        f"  defense   {name} " + ", ".join(f"{k}={v}" for k, v in sorted(defense.items())),
        f"  trained   against L-inf PGD epsilon {attack['epsilon']:g}, step "
        f"{attack['step_size']:g}, {attack['iterations']} steps, on {card['data']['dataset']}",
    ]
    clean = card.get("clean_accuracy")
    if clean:
        lines.append(f"  clean     {clean['accuracy']:.4f} on {clean['num_examples']} "
                     f"{clean['dataset']} {clean['split']} images ({clean['date_utc']})")
    lines += ["", "threat model  kind          attack  epsilon   step      iters  restarts  "
                  "n      accuracy  worst-iter  date"]
    for f in sorted(card["robustness"], key=lambda f: (f["threat_model"], f["epsilon"],
                                                        f["kind"], f["iterations"] or 0)):
        lines.append(
            f"{f['threat_model']:<13} {f['kind']:<13} {_attack_name(f):<7} "
            f"{_number(f['epsilon']):<9} "
            f"{_number(f.get('step_size'), 5):<9} {_number(f['iterations']):<6} "
            f"{_number(f.get('restarts')):<9} {_number(f['num_examples']):<6} "
            f"{_number(f['accuracy']) + _weak_mark(f):<9} "
            f"{_number(f.get('worst_iterate_accuracy')):<11} {f.get('date_utc') or '-'}")
    if not card["robustness"]:
        lines.append("(no robustness figure yet: run eval_main.py on this model_dir)")
    if any((f.get("eot_samples") or 1) > 1 for f in card["robustness"]):
        lines.append("+eotN: a randomized model, attacked and scored with the mean of N draws per "
                     "gradient and prediction; accuracies are means over repeated evaluations.")
    if any(_weak_mark(f) for f in card["robustness"]):
        lines.append("* step x iterations < epsilon: the attack cannot reach the epsilon boundary "
                     "from the clean image; a weaker attack than its epsilon says.")
    lines += ["", card["notes"]]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m tf_atalp.model_card <model_dir>", file=sys.stderr)
        return 2
    path = os.path.join(argv[1], MODEL_CARD_FILE)
    card = _read_json(path)
    if card is None:
        print(f"tf_atalp.model_card: error: no {MODEL_CARD_FILE} in {argv[1]!r}: run "
              "eval_main.py on this model_dir first.", file=sys.stderr)
        return 2
    print(format_model_card(card))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
