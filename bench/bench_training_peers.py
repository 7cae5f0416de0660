"""Issue 11, item 3: PGD adversarial training throughput, ours against ART's AdversarialTrainerMadryPGD.

Same network (two copies with the same initial weights), same images,
batch, optimizer (SGD 0.01), epsilon, step and PGD-K with one random
start; ART trains its logits-only copy, ours trains the dict-output network
with `pat` (CE on the PGD examples: Madry). Each side trains whole epochs
of the same images, alternated, after one warm-up epoch; figures are
images per second. Ours runs once in float32 and once at `auto` precision
(what a user gets by default on this machine).
"""

import keras

import harness
import peers
import workloads
from harness import entry, goal, side
from tf_atalp.data.synthetic import make_synthetic_arrays
from tf_atalp.training.precision import resolve_precision

NAME = "adversarial_training_peers"
DESCRIPTION = "PGD adversarial training images/s: ours vs ART's AdversarialTrainerMadryPGD"
ESTIMATED_SECONDS = (60, 300)


def run(settings) -> list[dict]:
    machine = harness.machine()
    k = settings.pgd_iterations[0]
    batch_size = settings.batch_size
    steps = 8 if settings.quick else 16
    images, labels = make_synthetic_arrays(steps * batch_size, settings.image_size,
                                           settings.num_classes, seed=3)
    auto = resolve_precision("auto").policy
    calls, labels_of = {}, {}
    for policy in dict.fromkeys(["float32", auto]):
        model = workloads.trainer(workloads.network(settings, policy=policy), "pat", k)
        calls[f"ours {policy}"] = (lambda m=model: m.fit(images, labels, batch_size=batch_size,
                                                         epochs=1, shuffle=True, verbose=0))
        labels_of[f"ours {policy}"] = f"ours (pat, PGD-{k}, {policy})"
    run_settings = {"network": f"resnet10 width {settings.width}",
                    "image_size": settings.image_size, "batch_size": batch_size,
                    "images_per_epoch": len(labels), "epsilon": workloads.TRAIN_EPSILON,
                    "step_size": workloads.TRAIN_STEP, "iterations": k, "random_start": True,
                    "optimizer": "sgd 0.01", "rounds": settings.rounds, "auto_precision": auto}
    art_goal = goal("our PGD adversarial training at least 10x ART's AdversarialTrainerMadryPGD",
                    10.0, ">=", None)
    if harness.installed(peers.ART):
        art_net = workloads.logits_only(workloads.network(settings))
        classifier = peers.art_classifier(art_net, settings.num_classes, settings.image_size,
                                          optimizer=keras.optimizers.SGD(0.01))
        fit = peers.art_madry_trainer(classifier, workloads.TRAIN_EPSILON,
                                      workloads.TRAIN_STEP, k, batch_size)
        calls["ART"] = lambda: fit(images, labels)
    # The floor of a PGD-K training step (float32): K forward + input-gradient passes and
    # one clean training step, on one batch; the best any implementation can do here.
    floor_net = workloads.network(settings)
    gradient = workloads.input_gradient_function(workloads.logits_only(floor_net))
    x, y = workloads.batch(settings)
    clean_step = workloads.train_step_call(workloads.clean_step_model(floor_net), x, y)
    unit_calls = {"forward + input gradient": lambda: gradient(x, y), "clean step": clean_step}
    units = harness.time_alternating(unit_calls, settings.rounds, settings.reps)
    floor_step = k * units["forward + input gradient"]["median_s"] + units["clean step"]["median_s"]
    times = harness.time_alternating(calls, settings.rounds, 1)
    per_second = {name: len(labels) / value["median_s"] for name, value in times.items()}
    per_second["floor"] = batch_size / floor_step
    run_settings["floor"] = {"unit_costs_s": {n: round(v["median_s"], 5) for n, v in units.items()},
                             "step_s": round(floor_step, 5)}
    run_settings["first_epoch_s"] = {n: v["first_call_s"] for n, v in times.items()}
    entries = []
    for name in [n for n in calls if n.startswith("ours")]:
        subject = side(labels_of[name], per_second[name], "images/s")
        comparison = f"{name} vs ART AdversarialTrainerMadryPGD"
        if "ART" not in calls:
            entries.append(harness.skipped_entry(NAME, comparison, peers.PACKAGE_NAMES[peers.ART],
                                                 settings, machine, art_goal))
            continue
        entries.append(entry(
            NAME, comparison, subject,
            side(f"ART AdversarialTrainerMadryPGD (PGD-{k}, float32)", per_second["ART"],
                 "images/s"),
            settings=run_settings, machine_info=machine, goal=art_goal,
            ratio_definition="subject images/s / reference images/s",
            notes="ART crafts each batch through numpy and eager gradients, and its "
                  "TensorFlowV2Classifier.fit builds a new tf.function train step on every "
                  "batch (retraced each time)"))
    if "ART" in calls:
        entries.append(entry(
            NAME, "floor (float32) vs ART AdversarialTrainerMadryPGD",
            side(f"floor: {k} x (forward + input gradient) + clean step, float32",
                 per_second["floor"], "images/s"),
            side(f"ART AdversarialTrainerMadryPGD (PGD-{k}, float32)", per_second["ART"],
                 "images/s"),
            settings=run_settings, machine_info=machine,
            ratio_definition="subject images/s / reference images/s: the most any float32 "
                             "implementation could gain over ART here",
            notes="if this ceiling is under 10, the 10x goal is out of reach in float32 on "
                  "this machine"))
    return entries
