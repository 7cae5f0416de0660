"""Peak resident memory of training steps of one defense, measured in a process of its own.

Builds the bench ResNet-10 and an `AdversarialTrainer`, reads the resident
set size (VmRSS) once everything is built, runs `--steps` train steps and
reads the peak (VmHWM, the high-water mark since the process started).
Prints one JSON line. `bench_memory.py` runs one process per configuration
so one measurement does not pollute the next.

    python bench/memory_probe.py --defense=at_alp --batch_size=32 --image_size=32
"""

import argparse
import json
import os
import sys


def status_kib(field: str) -> int:
    """A field of /proc/self/status in KiB (VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise ValueError(f"{field} not in /proc/self/status")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--defense", default="at_alp")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--image_size", type=int, default=32)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--pgd_iterations", type=int, default=7)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args(argv)
    bench_dir = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, bench_dir)
    import harness
    import workloads

    settings = harness.Settings(image_size=args.image_size, width=args.width,
                                batch_size=args.batch_size)
    net = workloads.network(settings, depth=args.depth)
    model = workloads.trainer(net, args.defense, args.pgd_iterations)
    images, labels = workloads.batch(settings)
    built_kib = status_kib("VmRSS")
    for _ in range(args.steps):
        model.train_on_batch(images, labels)
    print(json.dumps({"built_rss_mib": built_kib / 1024, "peak_rss_mib": status_kib("VmHWM") / 1024,
                      "settings": vars(args)}))


if __name__ == "__main__":
    main()
