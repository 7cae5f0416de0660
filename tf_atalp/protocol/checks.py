"""Sanity checks over a whole protocol run (Carlini et al. 2019; Athalye et al. 2018).

Each is a property every honest evaluation has. A violation does not prove
gradient masking, but it says an attack was too weak to trust a number, so
it is reported with `sanity.WARNING` ("gradient masking suspected"):

1. iterative at least as strong as single-step: white-box PGD robust
   accuracy <= FGSM accuracy at the same epsilon;
2. white-box at least as strong as transfer: white-box robust accuracy <=
   the accuracy under every transfer attack of the same setting and epsilon;
3. non-increasing in epsilon: a series' robust accuracy at a larger epsilon
   <= at a smaller one (same setting, threat model, source, target);
4. non-increasing in iterations: the accuracy after k steps (the iterate
   itself, not the worst so far) never rises by more than
   ITERATION_TOLERANCE above its value at an earlier count;
   on a transfer series, 3 and 4 are worded as a weak transfer attack
   (TRANSFER_NOTE): more steps or a larger radius can overfit the source,
   which says nothing about the target's gradients;
5. at epsilon >= 0.5, where every image can be moved to uniform grey,
   white-box robust accuracy <= the share of the largest class.
"""

from tf_atalp.evaluation.results import WHITE_BOX
from tf_atalp.evaluation.sanity import GREY_EPSILON, WARNING

ITERATION_TOLERANCE = 0.01  # one point: PGD's iterate may step back by a hair
# Checks 3 and 4 on a transfer series say the transfer attack is weak (it overfits its
# source), not that the target masks its gradients: worded so.
TRANSFER_NOTE = "weak transfer attack (not evidence of masking in the target)"


def _prefix(series: dict) -> str:
    return WARNING if series["source"] is None else TRANSFER_NOTE


def _name(series: dict) -> str:
    via = "white-box" if series["source"] is None else (
        f"{series['threat_model'].replace('_', '-')} from {series['source']}")
    return f"{series['target']} ({series['setting']} setting, {via})"


def single_step_check(series: list[dict], single_step: dict) -> list[str]:
    messages = []
    for s in series:
        fgsm = single_step.get(s["target"], {}).get(s["epsilon"])
        if s["threat_model"] == WHITE_BOX and fgsm is not None and s["robust_accuracy"] > fgsm:
            messages.append(
                f"{WARNING}: {_name(s)}: PGD robust accuracy {s['robust_accuracy']:.4f} at "
                f"epsilon {s['epsilon']:g} is above single-step FGSM's {fgsm:.4f}; the "
                "iterative attack is weaker than one step (too small a step or too few "
                "iterations to reach the boundary, or gradients that mislead small steps)")
    return messages


def transfer_check(series: list[dict]) -> list[str]:
    white = {(s["setting"], s["target"], s["epsilon"]): s for s in series
             if s["threat_model"] == WHITE_BOX}
    messages = []
    for s in series:
        own = white.get((s["setting"], s["target"], s["epsilon"]))
        if s["source"] is not None and own and own["robust_accuracy"] > s["robust_accuracy"]:
            messages.append(
                f"{WARNING}: {s['target']} ({s['setting']} setting): white-box robust accuracy "
                f"{own['robust_accuracy']:.4f} at epsilon {s['epsilon']:g} is above the "
                f"{s['threat_model'].replace('_', '-')} transfer accuracy "
                f"{s['robust_accuracy']:.4f} from {s['source']}; an attacker without the "
                "weights did better than one with them")
    return messages


def epsilon_check(series: list[dict]) -> list[str]:
    groups = {}
    for s in series:
        groups.setdefault((s["setting"], s["threat_model"], s["source"], s["target"]),
                          []).append(s)
    messages = []
    for members in groups.values():
        members = sorted(members, key=lambda s: s["epsilon"])
        for smaller, larger in zip(members, members[1:]):
            if larger["robust_accuracy"] > smaller["robust_accuracy"]:
                messages.append(
                    f"{_prefix(larger)}: {_name(larger)}: robust accuracy rises with epsilon, "
                    f"{smaller['robust_accuracy']:.4f} at {smaller['epsilon']:g} but "
                    f"{larger['robust_accuracy']:.4f} at {larger['epsilon']:g}")
    return messages


def iteration_check(series: list[dict]) -> list[str]:
    messages = []
    for s in series:
        lowest = None
        for point in sorted(s["points"], key=lambda p: p["iterations"]):
            if lowest is not None and point["accuracy"] > lowest[1] + ITERATION_TOLERANCE:
                messages.append(
                    f"{_prefix(s)}: {_name(s)} at epsilon {s['epsilon']:g}: accuracy after "
                    f"{point['iterations']} steps ({point['accuracy']:.4f}) is above that "
                    f"after {lowest[0]} ({lowest[1]:.4f}); more iterations made the attack "
                    "weaker")
                break
            if lowest is None or point["accuracy"] < lowest[1]:
                lowest = (point["iterations"], point["accuracy"])
    return messages


def majority_check(series: list[dict], class_totals: dict) -> list[str]:
    messages = []
    for s in series:
        totals = class_totals.get(s["target"]) or []
        if s["threat_model"] != WHITE_BOX or s["epsilon"] < GREY_EPSILON or not sum(totals):
            continue
        majority = max(totals) / sum(totals)
        if s["robust_accuracy"] > majority:
            messages.append(
                f"{WARNING}: {_name(s)}: robust accuracy {s['robust_accuracy']:.4f} at epsilon "
                f"{s['epsilon']:g} is above the largest class share {majority:.4f}, although "
                "every image can be moved to uniform grey at that radius")
    return messages


def protocol_checks(collected: dict) -> dict[str, list[str]]:
    """{check name: violation messages} over a protocol's collected numbers."""
    series = collected["series"]
    return {
        "iterative_vs_single_step": single_step_check(series, collected["single_step"]),
        "white_box_vs_transfer": transfer_check(series),
        "non_increasing_in_epsilon": epsilon_check(series),
        "non_increasing_in_iterations": iteration_check(series),
        "majority_class_at_grey": majority_check(series, collected["class_totals"]),
    }
