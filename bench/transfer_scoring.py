"""Scoring transfer iterates: eager per-iterate calls (before) against compiled ones (now).

A study's black-box cells score the same cached iterates on every entry's
targets: 20 counts x 3 radii x every batch x every scorer. Until
2026-12-07 each of those forward passes was an eager Keras call, and the
source was rescored every time; `evaluate_transfer` now scores through one
`tf.function` per model (`compiled_correct`) and keeps the source's scores
with its iterates. Two comparisons, timed alternately in one process:

- kernel: one model scoring the iterates of one batch (`score_iterates`
  with the compiled function against the eager loop it replaced);
- warm cache: a whole `evaluate_transfer` call whose iterates are cached
  (what every entry after the first pays), against the eager scoring of
  the same iterates on the targets and the source. The reference times the
  scoring only (no clean pass, no tallies), so the ratio understates the
  gain.

The study's shapes: ResNet-10 width 16 at 32 px, 17 classes, batches of 64,
3 targets; 272 images; one PGD of 20 steps scored after every step (20
counts, as the paper setting's 10..200). Writes bench/results/transfer_scoring.json.

    python bench/transfer_scoring.py            # about 2 min on 2 cores
"""

import argparse
import sys

import harness


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=272, help="test images (17 Flowers: 272)")
    parser.add_argument("--batch_size", type=int, default=64, help="the protocol's batch")
    parser.add_argument("--targets", type=int, default=3, help="targets scored (seeds of an entry)")
    parser.add_argument("--counts", type=int, default=20, help="scored iterates per batch")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per variant")
    args = parser.parse_args(argv)

    import numpy as np
    import tensorflow as tf
    import workloads

    from tf_atalp.attacks import PGD
    from tf_atalp.attacks.base import correct_predictions
    from tf_atalp.attacks.model_fns import inference_logits
    from tf_atalp.evaluation.iterate_cache import IterateCache
    from tf_atalp.evaluation.transfer import compiled_correct, evaluate_transfer, score_iterates

    settings = harness.Settings(mode=harness.FULL, image_size=32, width=16, num_classes=17,
                                batch_size=args.batch_size)
    source = workloads.network(settings, seed=100)
    targets = {f"target{i}": workloads.network(settings, seed=i) for i in range(args.targets)}
    rng = np.random.default_rng(0)
    images = rng.random((args.examples, 32, 32, 3), dtype=np.float32)
    labels = rng.integers(0, settings.num_classes, args.examples).astype(np.int32)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(args.batch_size)
    counts = list(range(1, args.counts + 1))
    pgd = PGD(epsilon=8 / 256, step_size=1 / 256, iterations=args.counts, random_start=False)
    cache = IterateCache()

    def warm_cache_now():
        return evaluate_transfer(source, targets, dataset, [pgd], record_at=counts, seed=0,
                                 cache=cache, cache_key="bench")

    warm_cache_now()  # crafts the iterates into the cache (not timed)
    scorers = [inference_logits(m) for m in [source, *targets.values()]]
    batches = [(tf.constant(x), tf.constant(y)) for x, y in dataset.as_numpy_iterator()]
    cached = [pgd.iterates(scorers[0], x, y, at=counts) for x, y in batches]  # the same iterates
    batch_labels = [y for _, y in batches]

    def eager_scores(fn, iterates, labels_of_batch):
        return np.stack([correct_predictions(fn(iterates[k]), labels_of_batch).numpy()
                         for k in counts])

    def warm_cache_before():
        return [eager_scores(fn, iterates, labels_of_batch) for iterates, labels_of_batch
                in zip(cached, batch_labels) for fn in scorers]

    one_model, one_batch, one_labels = scorers[1], cached[0], batch_labels[0]
    compiled = compiled_correct(one_model)
    times = harness.time_alternating({
        "kernel_eager": lambda: eager_scores(one_model, one_batch, one_labels),
        "kernel_compiled": lambda: score_iterates(compiled, one_batch, counts, one_labels),
        "warm_cache_before": warm_cache_before,
        "warm_cache_now": warm_cache_now,
    }, rounds=args.rounds, reps=1)
    same = np.array_equal(eager_scores(one_model, one_batch, one_labels),
                          score_iterates(compiled, one_batch, counts, one_labels))
    results = {
        "settings": {**vars(args), "model": "ResNet-10 width 16, 32 px, 17 classes, float32"},
        "times": times,
        "kernel_speedup": times["kernel_eager"]["median_s"] / times["kernel_compiled"]["median_s"],
        "warm_cache_speedup": (times["warm_cache_before"]["median_s"]
                               / times["warm_cache_now"]["median_s"]),
        "kernel_same_predictions": bool(same),
    }
    path = harness.write_results("transfer_scoring", " ".join(["python", *sys.argv]), results)
    print(f"one model, {args.counts} iterates of a batch of {args.batch_size}: eager "
          f"{times['kernel_eager']['median_s']:.3f} s, compiled "
          f"{times['kernel_compiled']['median_s']:.3f} s: {results['kernel_speedup']:.2f}x "
          f"(same predictions: {same})")
    print(f"warm cache, {args.examples} images x {args.counts} iterates x {args.targets} targets: "
          f"eager scoring with the source {times['warm_cache_before']['median_s']:.2f} s, "
          f"evaluate_transfer now {times['warm_cache_now']['median_s']:.2f} s: "
          f"{results['warm_cache_speedup']:.2f}x")
    print(f"Wrote {path}")


if __name__ == "__main__":
    main()
