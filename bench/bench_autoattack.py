"""Issue 23: AutoAttack standard, ours against torchattacks on one network in both frameworks.

The network of the cross-check (bench/crosscheck_autoattack.py: 3 valid
convolutions and 2 dense layers, `pat`-trained on 17 Flowers at 32 px, its
weights copied into a PyTorch twin that computes the same logits) is
attacked on its held-out images by our `AutoAttack(version="standard")`
and by torchattacks 3.5.1's four attacks at the reference settings (APGD-CE
100 steps, APGD-T 100 steps x 9 targets, FAB-T 100 steps x 9 targets,
Square 5000 queries with the fixed-count schedule), chained as
torchattacks' `MultiAttack` chains them (each attack on the images the
earlier ones left robust) but started from the correctly classified images,
as the reference AutoAttack starts, and timed per attack. Entries: the
total and each component, seconds of ours against theirs (ratio = theirs /
ours: our speed-up), and the strength check (robust accuracy within one
point of theirs).

Timing: one warm-up run of both on a few images (our tracing), then
ROUNDS timed runs of each, alternating which goes first (ours first in
round 0), each figure the median over rounds: single runs of the same
attack moved by up to 40% between runs on this shared machine. Needs the bench-only packages torch and
torchattacks (bench/requirements-crosscheck.txt); without them the entries
say "skipped".
"""

import time

import numpy as np

import crosscheck_autoattack
import crosscheck_twin
import harness
from harness import entry, goal, side
from tf_atalp.attacks import AutoAttack, inference_logits
from tf_atalp.attacks.autoattack import version_components

NAME = "autoattack"
DESCRIPTION = ("AutoAttack standard seconds, ours vs torchattacks 3.5.1 on the Keras/PyTorch "
               "twin, per attack and in total, at equal strength")
ESTIMATED_SECONDS = (200, 1500)
ROUNDS = {True: 1, False: 2}  # timed rounds (quick mode, full mode)
COMPONENTS = version_components("standard")
TRAIN_PER_CLASS = 48  # the rest of each class's 80 images is attacked
ITERATIONS, QUERIES = 100, 5000  # the reference settings
WARMUP_EXAMPLES = 8
GOAL_SPEEDUP = 1.5
STRENGTH_POINTS = 1.0


def _ours(model_fn, epsilon, images, labels) -> tuple[np.ndarray, dict]:
    """(robust bool [N], seconds per attack) of our AutoAttack standard."""
    result = AutoAttack(model_fn, epsilon, version="standard", iterations=ITERATIONS,
                        queries=QUERIES)(images, labels)
    return result.robust, dict(result.seconds)


def _theirs(twin, epsilon, images, labels) -> tuple[np.ndarray, dict]:
    """(robust bool [N], seconds per attack) of torchattacks' four attacks, chained."""
    import torch
    x = torch.from_numpy(crosscheck_twin.to_nchw(images))
    y = torch.from_numpy(labels.astype(np.int64))
    with torch.no_grad():
        robust = (twin(x).argmax(1) == y).numpy()
    seconds = {}
    for name in COMPONENTS:
        started = time.perf_counter()
        alive = np.flatnonzero(robust)
        if alive.size:
            attack = crosscheck_autoattack.torchattacks_attack(name, twin, epsilon, ITERATIONS,
                                                               QUERIES)
            found = attack(x[alive], y[alive]).detach()
            crosscheck_autoattack.check_in_ball(crosscheck_twin.to_nhwc(found.numpy()),
                                                images[alive], epsilon, f"torchattacks {name}")
            with torch.no_grad():
                robust[alive] = (twin(found).argmax(1) == y[alive]).numpy()
        seconds[name] = time.perf_counter() - started
    return robust, seconds


def _timed_rounds(model_fn, twin, epsilon, images, labels, rounds: int):
    """(our robust [N], our median seconds per attack, theirs robust, theirs seconds).

    Both attacks are seeded, so every round finds the same robust images;
    a round that does not raises AssertionError.
    """
    ours_runs, theirs_runs = [], []
    for index in range(rounds):
        sides = [(ours_runs, lambda: _ours(model_fn, epsilon, images, labels)),
                 (theirs_runs, lambda: _theirs(twin, epsilon, images, labels))]
        for runs, call in (sides if index % 2 == 0 else sides[::-1]):
            runs.append(call())
    for who, runs in (("ours", ours_runs), ("torchattacks", theirs_runs)):
        if any(not np.array_equal(runs[0][0], robust) for robust, _ in runs[1:]):
            raise AssertionError(f"{who}: the robust images differ between rounds")

    def medians(runs):
        return {name: float(np.median([seconds[name] for _, seconds in runs]))
                for name in COMPONENTS}
    return ours_runs[0][0], medians(ours_runs), theirs_runs[0][0], medians(theirs_runs)


def run(settings) -> list[dict]:
    machine = harness.machine()
    epsilons = (8 / 255,) if settings.quick else (4 / 255, 8 / 255)
    wanted = [f"standard at {round(e * 255)}/255" for e in epsilons]
    missing = [p for p in ("torch", "torchattacks") if not harness.installed(p)]
    if missing:
        return [harness.skipped_entry(NAME, comparison, missing[0], settings, machine)
                for comparison in wanted]
    import torch
    import torchattacks
    torch.manual_seed(0)
    epochs = 20 if settings.quick else 40
    twins = crosscheck_autoattack.trained_twins(
        settings.data_dir, TRAIN_PER_CLASS, epochs, 272 if settings.quick else 0)
    model_fn = inference_logits(twins["network"])
    images, labels = twins["images"], twins["labels"]
    clean = np.argmax(model_fn(images).numpy(), axis=1) == labels
    _ours(model_fn, epsilons[0], images[:WARMUP_EXAMPLES], labels[:WARMUP_EXAMPLES])
    _theirs(twins["twin"], epsilons[0], images[:WARMUP_EXAMPLES], labels[:WARMUP_EXAMPLES])
    rounds = ROUNDS[bool(settings.quick)]
    run_settings = {
        "network": "crosscheck_twin (3 conv, 2 dense), Keras and PyTorch, same weights",
        "data": "17 Flowers at 32 px", "attacked_images": len(labels),
        "training": f"pat, PGD-7 eps 8/255 step 2/255, {epochs} epochs",
        "training_seconds": round(twins["training_seconds"], 1),
        "max_logit_gap": twins["logit_gap"], "clean_accuracy": float(np.mean(clean)),
        "iterations": ITERATIONS, "queries": QUERIES, "components": list(COMPONENTS),
        "torch": torch.__version__, "torchattacks": torchattacks.__version__,
        "timing": f"one warm-up run on {WARMUP_EXAMPLES} images, then {rounds} timed runs "
                  "each, alternating which goes first; medians per attack, totals their sum",
        "theirs": "torchattacks APGD, APGDT, FAB(multi_targeted), Square chained as MultiAttack "
                  "does, from the correctly classified images"}
    entries = []
    for epsilon, comparison in zip(epsilons, wanted):
        our_robust, our_seconds, their_robust, their_seconds = _timed_rounds(
            model_fn, twins["twin"], epsilon, images, labels, rounds)
        gap = 100 * abs(float(np.mean(our_robust)) - float(np.mean(their_robust)))
        strength = {"ours": float(np.mean(our_robust)), "torchattacks":
                    float(np.mean(their_robust)), "ours_count": int(our_robust.sum()),
                    "torchattacks_count": int(their_robust.sum()),
                    "same_outcome_share": float(np.mean(our_robust == their_robust)),
                    "gap_points": round(gap, 2), "within_one_point": gap <= STRENGTH_POINTS}
        at = dict(run_settings, epsilon=epsilon)
        speedup = "reference seconds / subject seconds (our speed-up)"
        total_ours, total_theirs = sum(our_seconds.values()), sum(their_seconds.values())
        entries.append(entry(
            NAME, comparison, side("ours (tf_atalp AutoAttack)", total_ours, "s"),
            side("torchattacks 3.5.1", total_theirs, "s"), ratio=total_theirs / total_ours,
            ratio_definition=speedup, settings=at, machine_info=machine,
            goal=goal(f"AutoAttack standard at least {GOAL_SPEEDUP}x torchattacks at equal "
                      "strength", GOAL_SPEEDUP, ">=",
                      total_theirs / total_ours if strength["within_one_point"] else 0.0),
            equal_strength=strength))
        for name in COMPONENTS:
            entries.append(entry(
                NAME, f"{comparison}: {name}", side(f"ours {name}", our_seconds[name], "s"),
                side(f"torchattacks {name}", their_seconds[name], "s"),
                ratio=their_seconds[name] / max(our_seconds[name], 1e-9),
                ratio_definition=speedup, settings=at, machine_info=machine,
                notes="each on the images the earlier attacks left robust (its own chain)"))
        entries.append(entry(
            NAME, f"{comparison}: strength", side("ours", strength["ours"], "accuracy"),
            side("torchattacks", strength["torchattacks"], "accuracy"),
            ratio=gap, ratio_definition="|subject - reference| in points of accuracy",
            settings=at, machine_info=machine, equal_strength=strength,
            goal=goal(f"robust accuracy within {STRENGTH_POINTS:g} point of torchattacks'",
                      STRENGTH_POINTS, "<=", gap),
            notes=f"gap {gap:.2f} points ({strength['ours_count']} against "
                  f"{strength['torchattacks_count']} of {len(labels)} images robust)"))
    return entries


if __name__ == "__main__":  # one comparison alone: python bench/bench_autoattack.py [--quick]
    import sys
    print(harness.table(run(harness.settings_for(
        harness.QUICK if "--quick" in sys.argv else harness.FULL))))
