"""The warning "transfer beats white-box": a protocol run's transfer numbers against AutoAttack.

A transfer attack crafts its images on another network, so on the target it
can only be weaker than a good white-box attack on the target itself. Where
a transfer series of `eval_main.py --protocol=paper` leaves fewer of the
same examples robust than white-box AutoAttack did, the target's own
gradients mislead the white-box attacks (Carlini et al. 2019, sec. 5;
Athalye et al. 2018): a gradient-masking flag on the AutoAttack run says so
beside AutoAttack's own (`tf_atalp.attacks.autoattack.masking_flags`).

    eval_main.py --attack=autoattack --model_dir=M --transfer_results=<protocol_results.json>
"""

import json
import math
import os

from tf_atalp.evaluation.results import WHITE_BOX

FLAG = "transfer_beats_white_box"


def read_protocol_results(path: str) -> dict:
    """The parsed protocol_results.json at `path`; ValueError if missing, corrupt or not one."""
    if not os.path.isfile(path):
        raise ValueError(f"--transfer_results: no file at {path}")
    try:
        with open(path) as handle:
            document = json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"--transfer_results: {path} is not readable JSON ({error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("series"), list) \
            or not isinstance(document.get("models"), list):
        raise ValueError(f"--transfer_results: {path} is not the protocol_results.json of "
                         "`eval_main.py --protocol=paper` (no 'series' and 'models')")
    return document


def target_name(protocol: dict, model_path: str) -> str | None:
    """The protocol's name of the target whose model_dir is `model_path`, or None."""
    wanted = os.path.realpath(model_path)
    for model in protocol["models"]:
        if model.get("role") == "target" and os.path.realpath(model.get("path", "")) == wanted:
            return model["name"]
    return None


def flag_transfer_beats_white_box(autoattack_runs: list, protocol: dict, model_path: str,
                                  num_examples: int) -> list[str]:
    """Adds the flag to every AutoAttack run (one per epsilon) that a transfer series beats.

    Compares robust counts on the same number of examples at the same
    epsilon, over every gray-box and black-box series of the target in every
    setting. Returns notes on what could not be compared (empty if all was).
    """
    name = target_name(protocol, model_path)
    if name is None:
        return [f"{model_path} is not a target of the protocol run: transfer not compared"]
    notes = []
    for run in autoattack_runs:
        series = [s for s in protocol["series"]
                  if s.get("target") == name and s.get("threat_model") != WHITE_BOX
                  and math.isclose(s["epsilon"], run["epsilon"], rel_tol=1e-6)]
        same_size = [s for s in series if s.get("num_examples") == num_examples]
        if not same_size:
            notes.append(f"epsilon {run['epsilon']:g}: no transfer series on {num_examples} "
                         "examples in the protocol run: transfer not compared")
            continue
        strongest = min(same_size, key=lambda s: s["robust_correct"])
        if strongest["robust_correct"] < run["robust_correct"]:
            run["flags"].append({
                "name": FLAG, "batches": None,
                "message": (
                    f"the {strongest['threat_model'].replace('_', '-')} transfer attack from "
                    f"{strongest['source']} ({strongest['setting']} setting) leaves "
                    f"{strongest['robust_correct']}/{num_examples} robust, fewer than white-box "
                    f"AutoAttack's {run['robust_correct']}/{num_examples}: the model's own "
                    "gradients mislead the white-box attacks, so its white-box number is not "
                    "a robustness figure")})
    return notes
