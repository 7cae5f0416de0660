"""APGD-CE on the Keras/PyTorch twin, ours and torchattacks', each against a plain loop.

The plain loop is K forward + input-gradient passes of the same batch with
a signed step and a clip, written the obvious way (a `tf.while_loop` in
one `tf.function`; a Python loop in PyTorch): the per-step cost a user's
own K-step attack would pay in that framework, so the ratio of an APGD to
it is APGD's own overhead (momentum, projections, best-point bookkeeping,
step-size checkpoints), and the ratio of the two plain loops is the
frameworks' difference on this network. It is not a hard floor: a
tighter graph can run under it. Network and images as in bench/bench_autoattack.py
(crosscheck_twin, `pat`-trained on 17 Flowers at 32 px; the images it
classifies correctly, which APGD-CE attacks in AutoAttack). Each figure is
the median of `--rounds` calls after one warm-up call, and the four
variants alternate round after round, so load on the machine hits them
alike. Needs the bench environment (torch, torchattacks:
bench/requirements-crosscheck.txt). Prints one JSON line and writes it to
`--output`.

    python bench/apgd_overhead_probe.py --rounds=3
"""

import argparse
import json
import sys
import time

import numpy as np

import crosscheck_autoattack
import crosscheck_twin
import harness
from tf_atalp.io_utils import atomic_write_json

OUTPUT = "bench/results/apgd_overhead.json"
TRAIN_PER_CLASS, EPOCHS = 48, 40  # bench_autoattack's twin
EPSILON, ITERATIONS = 8 / 255, 100


def variants(twins, images, labels):
    """{name: a call that runs it once}: ours, the plain TF loop, theirs, the plain PyTorch loop."""
    import tensorflow as tf
    import torch
    import torchattacks

    from tf_atalp.attacks import APGD, inference_logits

    model_fn = inference_logits(twins["network"])
    x, y = tf.constant(images), tf.constant(labels.astype(np.int32))

    @tf.function
    def plain_tf_loop(start, targets):
        def body(i, z):
            with tf.GradientTape() as tape:
                tape.watch(z)
                loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
                    targets, model_fn(z)))
            return i + 1, tf.clip_by_value(z + 1e-3 * tf.sign(tape.gradient(loss, z)), 0.0, 1.0)
        return tf.while_loop(lambda i, z: i < ITERATIONS, body, (0, start))[1]

    twin = twins["twin"]
    xn = torch.from_numpy(crosscheck_twin.to_nchw(images))
    yn = torch.from_numpy(labels.astype(np.int64))

    def plain_torch_loop():
        z = xn.clone()
        for _ in range(ITERATIONS):
            z = z.detach().requires_grad_(True)
            loss = torch.nn.functional.cross_entropy(twin(z), yn, reduction="sum")
            gradient, = torch.autograd.grad(loss, z)
            z = torch.clamp(z + 1e-3 * gradient.sign(), 0.0, 1.0)
        return z

    return {
        "ours (tf_atalp APGD-CE)":
            lambda: APGD(EPSILON, ITERATIONS).attack(model_fn, x, y, seed=0)
            .adversarial_images.numpy(),
        "plain TF loop": lambda: plain_tf_loop(x, y).numpy(),
        "torchattacks APGD-CE": lambda: torchattacks.APGD(
            twin, norm="Linf", eps=EPSILON, steps=ITERATIONS, n_restarts=1, loss="ce",
            seed=0)(xn, yn),
        "plain PyTorch loop": plain_torch_loop,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data_dir", default=harness.shared_data("flowers17"))
    parser.add_argument("--output", default=OUTPUT)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1. Received: {args.rounds}")
    import torch
    torch.manual_seed(0)
    twins = crosscheck_autoattack.trained_twins(args.data_dir, TRAIN_PER_CLASS, EPOCHS)
    from tf_atalp.attacks import inference_logits
    clean = np.argmax(inference_logits(twins["network"])(twins["images"]).numpy(), 1) \
        == twins["labels"]
    calls = variants(twins, twins["images"][clean], twins["labels"][clean])
    for call in calls.values():  # tracing, compiling
        call()
    seconds = {name: [] for name in calls}
    for _ in range(args.rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            seconds[name].append(time.perf_counter() - started)
    median = {name: float(np.median(s)) for name, s in seconds.items()}
    ours, theirs = median["ours (tf_atalp APGD-CE)"], median["torchattacks APGD-CE"]
    document = {
        "command": "python bench/apgd_overhead_probe.py " + " ".join(argv or sys.argv[1:]),
        "machine": harness.machine(), "torch_threads": torch.get_num_threads(),
        "settings": {"images": int(clean.sum()), "epsilon": EPSILON, "iterations": ITERATIONS,
                     "rounds": args.rounds, "network": "crosscheck_twin, 17 Flowers at 32 px"},
        "median_seconds": {k: round(v, 3) for k, v in median.items()},
        "seconds": {k: [round(v, 3) for v in s] for k, s in seconds.items()},
        "ours_vs_plain_tf_loop": round(ours / median["plain TF loop"], 3),
        "theirs_vs_plain_torch_loop": round(theirs / median["plain PyTorch loop"], 3),
        "plain_tf_vs_plain_torch_loop": round(median["plain TF loop"] / median["plain PyTorch loop"], 3),
        "speedup_vs_torchattacks": round(theirs / ours, 3)}
    atomic_write_json(args.output, document)
    print(json.dumps(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
