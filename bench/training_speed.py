"""Train-step speed of at_alp under each precision / XLA setting, side by side.

Times the same ResNet-10 at_alp training step (PGD inside) in one process
for float32 vs mixed_bfloat16 and jit_compile off vs on, after a warm-up,
alternating the variants so that background load hits them alike. Prints
the ratios to the float32, no-XLA baseline and writes
bench/results/training_speed.json.

    python bench/training_speed.py
"""

import time

from absl import app, flags

import harness  # first: it puts the project on sys.path
import keras
import numpy as np

from tf_atalp.attacks import PGDConfig
from tf_atalp.data.synthetic import make_synthetic_arrays
from tf_atalp.defenses import get_defense
from tf_atalp.models import build_resnet
from tf_atalp.training import AdversarialTrainer

flags.DEFINE_integer("image_size", 64, "Input side, pixels.")
flags.DEFINE_integer("width", 16, "ResNet width.")
flags.DEFINE_integer("batch_size", 32, "Batch size.")
flags.DEFINE_integer("pgd_iterations", 3, "PGD steps inside the train step.")
flags.DEFINE_integer("rounds", 5, "Timed rounds per variant (alternated).")
flags.DEFINE_integer("steps", 4, "Train steps per timed round.")
FLAGS = flags.FLAGS

VARIANTS = [("float32", False), ("mixed_bfloat16", False), ("float32", True),
            ("mixed_bfloat16", True)]


def make_trainer(policy, jit):
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    network = build_resnet(10, num_classes=4, image_size=FLAGS.image_size, width=FLAGS.width)
    trainer = AdversarialTrainer(network, get_defense("at_alp"),
                                 attack=PGDConfig(0.03, 0.01, FLAGS.pgd_iterations))
    trainer.compile(optimizer="adam", jit_compile=jit)
    keras.mixed_precision.set_global_policy("float32")
    return trainer


def main(argv):
    del argv
    images, labels = make_synthetic_arrays(FLAGS.batch_size, FLAGS.image_size, 4, seed=0)
    trainers = {variant: make_trainer(*variant) for variant in VARIANTS}
    for trainer in trainers.values():  # warm-up: trace and compile
        trainer.train_on_batch(images, labels)
    times = {variant: [] for variant in VARIANTS}
    for _ in range(FLAGS.rounds):
        for variant, trainer in trainers.items():
            started = time.perf_counter()
            for _ in range(FLAGS.steps):
                trainer.train_on_batch(images, labels)
            times[variant].append((time.perf_counter() - started) / FLAGS.steps)
    baseline = float(np.median(times[("float32", False)]))
    results = {"setting": {"model": f"resnet10 width {FLAGS.width}", "defense": "at_alp",
                           "image_size": FLAGS.image_size, "batch_size": FLAGS.batch_size,
                           "pgd_iterations": FLAGS.pgd_iterations, "rounds": FLAGS.rounds,
                           "steps_per_round": FLAGS.steps}, "variants": {}}
    for (policy, jit), values in times.items():
        median = float(np.median(values))
        name = f"{policy}, jit_compile={jit}"
        results["variants"][name] = {"median_seconds_per_step": round(median, 4),
                                     "speedup_vs_float32_no_jit": round(baseline / median, 2)}
        print(f"{name:36s} {median * 1000:8.1f} ms/step   x{baseline / median:.2f}")
    print("wrote", harness.write_results("training_speed", "python bench/training_speed.py",
                                        results))


if __name__ == "__main__":
    app.run(main)
