"""Issue 11, item 2: PGD attack throughput against cleverhans, ART and the floor, at equal strength.

Same network (the bench ResNet-10, inference mode, logits only), same
batch, epsilon, step size, iterations and random start for all. The floor
is `iterations` x the time of one compiled forward + input-gradient pass.
Strength: accuracy of the final iterate of each attack on held-out images
of a trained network (one point = 1%); the comparison is fair when the
accuracies lie within one point of ours.
"""

import numpy as np
import tensorflow as tf

import harness
import peers
import workloads
from harness import entry, goal, side
from tf_atalp.attacks import PGD, inference_logits

NAME = "pgd_peers"
DESCRIPTION = "PGD images/s: ours vs cleverhans 4 vs ART 1.20 vs the floor, and their strength"
ESTIMATED_SECONDS = (30, 240)

# Strength is compared at a radius where the trained network is neither
# always broken nor never: accuracy under attack is then a number to compare.
EPSILON = 4 / 256  # accuracy under PGD-10 of the quick network: 75.5%
STEP_SIZE = 1 / 256


def _strength(attack_fn, images, labels, logits_model, batch_size) -> float:
    """Accuracy of `logits_model` on the final iterates of `attack_fn`, batch by batch."""
    correct = 0
    for start in range(0, len(labels), batch_size):
        x = tf.constant(images[start:start + batch_size])
        y = tf.constant(labels[start:start + batch_size])
        adversarial = np.asarray(attack_fn(x, y))
        assert np.max(np.abs(adversarial - x.numpy())) <= EPSILON + 1e-5
        logits = logits_model(tf.constant(adversarial), training=False)
        correct += int(np.sum(np.argmax(logits, -1) == y.numpy()))
    return correct / len(labels)


def run(settings) -> list[dict]:
    machine = harness.machine()
    net, (test_images, test_labels) = workloads.trained_network(settings)
    logits_model = workloads.logits_only(net)
    k, batch_size = settings.attack_iterations, settings.batch_size
    images, labels = tf.constant(test_images[:batch_size]), tf.constant(test_labels[:batch_size])
    ours = PGD(EPSILON, STEP_SIZE, k)
    model_fn = inference_logits(logits_model)

    def ours_attack(x, y):
        return ours.attack(model_fn, x, y, seed=0).adversarial_images

    gradient = workloads.input_gradient_function(logits_model)
    attacks = {"ours": ours_attack}
    missing = {}
    if harness.installed(peers.CLEVERHANS):
        attacks["cleverhans"] = peers.cleverhans_pgd(logits_model, EPSILON, STEP_SIZE, k)
        attacks["cleverhans in tf.function"] = peers.cleverhans_pgd(
            logits_model, EPSILON, STEP_SIZE, k, compiled=True)
    else:
        missing["cleverhans"] = peers.PACKAGE_NAMES[peers.CLEVERHANS]
    if harness.installed(peers.ART):
        classifier = peers.art_classifier(logits_model, settings.num_classes,
                                          settings.image_size)
        attacks["ART"] = peers.art_pgd(classifier, EPSILON, STEP_SIZE, k, batch_size)
    else:
        missing["ART"] = peers.PACKAGE_NAMES[peers.ART]
    calls = {name: (lambda fn=fn: fn(images, labels)) for name, fn in attacks.items()}
    calls["floor"] = lambda: gradient(images, labels)
    times = harness.time_alternating(calls, settings.rounds, settings.reps)
    seconds = {name: value["median_s"] for name, value in times.items()}
    seconds["floor"] *= k  # k forward + input-gradient passes
    accuracy = {name: _strength(fn, test_images, test_labels, logits_model, batch_size)
                for name, fn in attacks.items()}
    clean = workloads.accuracy(logits_model, test_images, test_labels)

    run_settings = {"network": f"resnet10 width {settings.width} (logits, inference mode)",
                    "image_size": settings.image_size, "batch_size": batch_size,
                    "epsilon": EPSILON, "step_size": STEP_SIZE, "iterations": k,
                    "random_start": True, "objective": "cross_entropy",
                    "strength_examples": len(test_labels), "clean_accuracy": clean,
                    "accuracy_under_attack": accuracy, "rounds": settings.rounds,
                    "reps": settings.reps,
                    "first_call_s": {n: v["first_call_s"] for n, v in times.items()}}

    def throughput(name):
        return batch_size / seconds[name]

    subject = side("ours (tf_atalp PGD)", throughput("ours"), "images/s",
                   seconds_per_iteration=seconds["ours"] / k)
    entries = [entry(NAME, "ours vs floor", subject,
                     side(f"floor: {k} x (forward + input gradient)", throughput("floor"),
                          "images/s", seconds_per_iteration=seconds["floor"] / k),
                     settings=run_settings, machine_info=machine,
                     ratio_definition="subject images/s / reference images/s (1 = the floor)")]
    goals = {"cleverhans": goal("our PGD at least 2x cleverhans per iteration", 2.0, ">=", None),
             "cleverhans in tf.function": None,
             "ART": goal("our PGD at least 5x ART per iteration", 5.0, ">=", None)}
    for peer, peer_goal in goals.items():
        comparison = f"ours vs {peer}"
        if peer not in attacks:
            package = missing.get(peer, missing.get(peer.split()[0]))
            entries.append(harness.skipped_entry(NAME, comparison, package, settings, machine,
                                                 peer_goal))
            continue
        gap = abs(accuracy[peer] - accuracy["ours"]) * 100
        entries.append(entry(
            NAME, comparison, subject,
            side(peer, throughput(peer), "images/s", seconds_per_iteration=seconds[peer] / k),
            settings=run_settings, machine_info=machine, goal=peer_goal,
            ratio_definition="subject images/s / reference images/s",
            equal_strength={"ours": accuracy["ours"], peer: accuracy[peer],
                            "gap_points": round(gap, 2), "within_one_point": gap <= 1.0},
            notes=("cleverhans' documented call: a Python loop whose gradient is a "
                   "tf.function" if peer == "cleverhans" else
                   "cleverhans wrapped whole in tf.function by the user (not documented, "
                   "the strongest use)" if peer == "cleverhans in tf.function" else
                   "ART: TensorFlowV2Classifier, numpy in and out, eager gradients")))
    entries.append(entry(
        NAME, "strength: accuracy under attack, ours vs peers",
        side("ours", accuracy["ours"], "accuracy"),
        side("peers (max gap)", max(accuracy[p] for p in accuracy if p != "ours")
             if len(accuracy) > 1 else None, "accuracy"),
        settings=run_settings, machine_info=machine,
        ratio_definition="subject accuracy / reference accuracy",
        notes="equal strength when every peer lies within one point of ours: "
              + ", ".join(f"{p} {a * 100:.1f}%" for p, a in accuracy.items())))
    return entries
