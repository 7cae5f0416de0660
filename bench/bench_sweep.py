"""Issue 11, item 4: the cost of the evaluation sweep of Figure 3.

(a) One 200-iteration PGD run that scores the 20 points 10, 20, ..., 200
(`record_at`) against the 20 runs of 10, 20, ..., 200 iterations made
separately (2100 iterations in all): the paper's setting, step 1/256 from
the clean image, on one batch.

(b) Dropping the examples already broken (`PGD(early_stop=True)`, what
`eval_main --drop_broken` does) against attacking all to the end, through
`evaluate_robustness` (the evaluation's own loop) at epsilon 8/256, 0.25
and 0.5; the worst-iterate accuracies must be identical.

The network is a ResNet-10 trained on the grating task (clean CE), so
some examples survive the small radius for a while and none the large ones.
"""

import time

import tensorflow as tf

import harness
import workloads
from harness import entry, goal, side
from tf_atalp.attacks import PGD, inference_logits
from tf_atalp.evaluation.robustness import evaluate_robustness

NAME = "sweep"
DESCRIPTION = "one 200-step run scoring 20 points vs 20 runs; dropping broken examples"
ESTIMATED_SECONDS = (75, 400)

SWEEP = tuple(range(10, 201, 10))  # Figure 3's points
STEP = 1 / 256
EPSILONS = (8 / 256, 0.25, 0.5)


def _timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    value = harness.block(call())
    return time.perf_counter() - started, value


def run(settings) -> list[dict]:
    machine = harness.machine()
    net, (test_images, test_labels) = workloads.trained_network(settings)
    model_fn = inference_logits(net)
    images = tf.constant(test_images[:settings.batch_size])
    labels = tf.constant(test_labels[:settings.batch_size])
    epsilon = 0.25

    one_run = PGD(epsilon, STEP, max(SWEEP), random_start=False)
    separate = [PGD(epsilon, STEP, k, random_start=False) for k in SWEEP]

    def recorded():
        return one_run.attack(model_fn, images, labels, record_at=SWEEP).correct_at

    def twenty_runs():
        return [attack.attack(model_fn, images, labels).adversarial_images
                for attack in separate]

    rounds = 1 if settings.quick else 2
    times = harness.time_alternating({"one run": recorded, "20 runs": twenty_runs}, rounds, 1)
    run_settings = {"network": f"resnet10 width {settings.width} (trained, inference mode)",
                    "image_size": settings.image_size, "batch_size": settings.batch_size,
                    "epsilon": epsilon, "step_size": STEP, "random_start": False,
                    "record_at": list(SWEEP), "rounds": rounds,
                    "iterations": {"one run": max(SWEEP), "20 runs": sum(SWEEP)}}
    entries = [entry(
        NAME, "20 points: one recorded run vs 20 separate runs",
        side("one 200-iteration run recording 20 points", times["one run"]["median_s"],
             "s/batch"),
        side("20 separate runs of 10..200 iterations", times["20 runs"]["median_s"], "s/batch"),
        ratio=times["20 runs"]["median_s"] / times["one run"]["median_s"],
        ratio_definition="reference seconds / subject seconds (times cheaper)",
        settings=run_settings, machine_info=machine,
        goal=goal("a 200-step sweep with 20 points at least 10x cheaper than 20 runs", 10.0,
                  ">=", None),
        notes=f"the ideal is {sum(SWEEP)} / {max(SWEEP)} = {sum(SWEEP) / max(SWEEP):.1f}x "
              "(the iterations saved)")]

    examples = 2 * settings.batch_size if settings.quick else 8 * settings.batch_size
    dataset = tf.data.Dataset.from_tensor_slices(
        (test_images[:examples], test_labels[:examples])).batch(settings.batch_size)
    for epsilon in EPSILONS:
        attacks = {drop: [PGD(epsilon, STEP, max(SWEEP), random_start=False, early_stop=drop)]
                   for drop in (True, False)}
        evaluate_robustness(net, dataset.take(1), attacks[True], record_at=SWEEP)  # warm up
        evaluate_robustness(net, dataset.take(1), attacks[False], record_at=SWEEP)
        seconds, results = {}, {}
        for drop in (False, True):
            seconds[drop], results[drop] = _timed(lambda d=drop: evaluate_robustness(
                net, dataset, attacks[d], record_at=SWEEP))
        worst = {d: results[d]["attacks"][0]["worst_iterate_correct"] for d in (True, False)}
        entries.append(entry(
            NAME, f"drop broken examples at epsilon {epsilon:g}",
            side("evaluate_robustness, early_stop=True (--drop_broken)", seconds[True], "s"),
            side("evaluate_robustness, early_stop=False", seconds[False], "s"),
            ratio=seconds[False] / seconds[True],
            ratio_definition="reference seconds / subject seconds (times cheaper)",
            settings={"network": run_settings["network"], "image_size": settings.image_size,
                      "examples": examples, "batch_size": settings.batch_size,
                      "epsilon": epsilon, "step_size": STEP, "iterations": max(SWEEP),
                      "random_start": False, "record_at": list(SWEEP)},
            machine_info=machine,
            identical_worst_iterate=worst[True] == worst[False],
            worst_iterate_correct={"drop_broken": worst[True], "all_to_the_end": worst[False]},
            clean_correct=results[False]["clean_correct"],
            notes="worst-iterate counts at every recorded point "
                  + ("identical" if worst[True] == worst[False] else "DIFFER")))
    return entries
