"""Each AutoAttack component beside the network passes it cannot do without (issue 23's floor).

    python bench/autoattack_floor_probe.py --rounds=3

The network is the 17 Flowers one of issue 23 (ResNet-10 width 16 at 64 px,
17 classes, BatchNorm folded, in `--policy`: eval_main attacks a model in
its saved policy, mixed_bfloat16 for that run), freshly
initialised: the cost of a pass does not depend on the weights. Each
component runs on as many images as it attacked in the committed run
(results/flowers17_cpu/autoattack_speed_2026-12-04: APGD-CE on 130 images in
eval_main's equal chunks of at most 64, APGD-T on 59, FAB-T and Square on
55), labelled with the network's own predictions and attacked at a radius
so small (`--epsilon`) that none should break, so every image is attacked
through every step, target and query, as the robust ones were. The floor of
a component is the passes its algorithm needs, timed as bare compiled calls
at the same batch sizes:

- APGD-CE: 100 steps x one forward-backward pass per chunk;
- APGD-T: 9 targets x 100 steps x one forward-backward pass;
- FAB-T: 9 targets x 100 steps x (one forward-backward pass + the forward
  pass that checks the new point);
- Square: 5000 queries x one forward pass.

A pass's time is the median over `--rounds` alternated rounds of 10 calls
(harness.time_alternating); each component is timed `--component_rounds`
times, alternated, its first call tracing as in eval_main. If the floors
alone add up to more than the goal (200 s), the goal cannot be met at
equal strength on this machine.
Prints the JSON and writes bench/results/autoattack_floor.json.
"""

import argparse
import json
import sys

import numpy as np

import harness

IMAGE_SIZE, WIDTH, DEPTH, CLASSES = 64, 16, 10, 17
COUNTS = {"apgd-ce": 130, "apgd-t": 59, "fab-t": 55, "square": 55}  # the committed run's
CHUNK = 64  # eval_main's --batch_size for AutoAttack
STEPS, TARGETS, QUERIES = 100, 9, 5000
GOAL_SECONDS = 200.0


def floor_passes(name: str) -> list[tuple[str, int, int]]:
    """[(pass kind, batch size, how many)] that component `name` needs at least."""
    if name == "apgd-ce":
        chunks = np.array_split(np.arange(COUNTS[name]), -(-COUNTS[name] // CHUNK))
        return [("forward_backward", len(chunk), STEPS) for chunk in chunks]
    if name == "apgd-t":
        return [("forward_backward", COUNTS[name], TARGETS * STEPS)]
    if name == "fab-t":
        return [("forward_backward", COUNTS[name], TARGETS * STEPS),
                ("forward", COUNTS[name], TARGETS * STEPS)]
    return [("forward", COUNTS[name], QUERIES)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--component_rounds", type=int, default=1,
                        help="Timed calls of each component (alternated).")
    parser.add_argument("--epsilon", type=float, default=1e-4,
                        help="L-inf radius: small enough that no image breaks.")
    parser.add_argument("--components", default=",".join(COUNTS),
                        help="Comma-separated components to time beside their floors.")
    parser.add_argument("--policy", default="mixed_bfloat16",
                        help="Keras dtype policy of the network (the committed run's).")
    parser.add_argument("--output", default="bench/results/autoattack_floor.json")
    args = parser.parse_args(argv)
    components = [c for c in args.components.split(",") if c]
    if args.rounds < 1 or args.component_rounds < 1:
        parser.error("--rounds and --component_rounds must be >= 1. Received: "
                     f"{args.rounds}, {args.component_rounds}")
    if not 0 < args.epsilon <= 1:
        parser.error(f"--epsilon must be in (0, 1]. Received: {args.epsilon}")
    if unknown := sorted(set(components) - set(COUNTS)):
        parser.error(f"--components: unknown {unknown}; choose from {sorted(COUNTS)}")

    import keras
    import tensorflow as tf

    from tf_atalp.attacks import inference_logits
    from tf_atalp.attacks.autoattack import _chunks, build_component
    from tf_atalp.models import fold_batchnorm
    from tf_atalp.models.resnet import build_resnet

    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy(args.policy)
    network = fold_batchnorm(build_resnet(DEPTH, CLASSES, IMAGE_SIZE, WIDTH))
    model_fn = inference_logits(network)
    images = np.random.default_rng(0).uniform(
        size=(max(COUNTS.values()), IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)
    labels = np.argmax(model_fn(images).numpy(), axis=1).astype(np.int32)

    @tf.function(reduce_retracing=True)
    def forward(x):
        return model_fn(x)

    @tf.function(reduce_retracing=True)
    def forward_backward(x, y):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
                y, tf.cast(model_fn(x), tf.float32)))
        return tape.gradient(loss, x)

    sizes = sorted({size for name in components for _, size, _ in floor_passes(name)})
    passes = {}
    for size in sizes:
        x, y = tf.constant(images[:size]), tf.constant(labels[:size])
        passes[f"forward {size}"] = lambda x=x: forward(x)
        passes[f"forward_backward {size}"] = lambda x=x, y=y: forward_backward(x, y)
    pass_times = harness.time_alternating(passes, rounds=args.rounds, reps=10)

    survivors = {}

    def component_call(name):
        attack = build_component(name, args.epsilon)

        def call():
            robust = 0
            for chunk in _chunks(np.arange(COUNTS[name]), CHUNK):
                x, y = images[chunk], labels[chunk]
                adversarial = attack.attack(model_fn, x, y, seed=0).adversarial_images
                robust += int(np.sum(np.argmax(model_fn(adversarial).numpy(), 1) == y))
            survivors[name] = robust
            return robust
        return call

    # No warm-up call: a component's first call traces, as in eval_main (a few seconds of
    # minutes), and a second call of Square alone would cost minutes.
    component_times = harness.time_alternating(
        {name: component_call(name) for name in components}, rounds=args.component_rounds,
        reps=1, warmup=0)

    rows = {}
    for name in components:
        floor = sum(count * pass_times[f"{kind} {size}"]["median_s"]
                    for kind, size, count in floor_passes(name))
        seconds = component_times[name]["median_s"]
        rows[name] = {"images": COUNTS[name], "robust_after": survivors[name],
                      "seconds": round(seconds, 2), "floor_seconds": round(floor, 2),
                      "seconds_over_floor": round(seconds / floor, 2),
                      "floor_passes": [{"pass": kind, "batch": size, "count": count}
                                       for kind, size, count in floor_passes(name)]}
    total_floor = sum(row["floor_seconds"] for row in rows.values())
    document = {
        "command": "python bench/autoattack_floor_probe.py " + " ".join(
            argv if argv is not None else sys.argv[1:]),
        "machine": harness.machine(),
        "settings": {"network": f"ResNet-{DEPTH} width {WIDTH} at {IMAGE_SIZE} px, {CLASSES} "
                                f"classes, fresh weights, BatchNorm folded, {args.policy}",
                     "epsilon": args.epsilon, "rounds": args.rounds, "chunk": CHUNK,
                     "steps": STEPS, "targets": TARGETS, "queries": QUERIES},
        "pass_seconds": {name: round(t["median_s"], 6) for name, t in pass_times.items()},
        "components": rows,
        "total_seconds": round(sum(row["seconds"] for row in rows.values()), 1),
        "total_floor_seconds": round(total_floor, 1),
        "goal_seconds": GOAL_SECONDS,
        "floors_within_goal": total_floor < GOAL_SECONDS}
    from tf_atalp.io_utils import atomic_write_json
    atomic_write_json(args.output, document)
    print(json.dumps(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
