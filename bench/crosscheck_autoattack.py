"""Cross-check of our AutoAttack attacks against torchattacks, on one network in both frameworks.

Trains a small CNN (bench/crosscheck_twin.py) with PGD adversarial training
(tf_atalp's `pat`) on 17 Flowers at 32 px, copies its weights into a
PyTorch twin, checks that both give the same logits, then runs each attack
in both libraries on the same held-out images at two L-inf radii and writes
the robust accuracies side by side to bench/results/autoattack_crosscheck.json:

    ours (tf_atalp)                     torchattacks 3.5.1
    APGD(eps, 100)                      APGD(steps=100, loss="ce")
    APGD(eps, 100, target_classes=9)    APGDT(steps=100, n_classes=10)  (9 targets)
    FABTargeted(eps, 100, 9)            FAB(steps=100, multi_targeted=True, n_classes=10)
    Square(eps, 5000, schedule of AA)   Square(n_queries=5000, resc_schedule=False)
    AutoAttack(version="standard")      MultiAttack of the four above (the reference
                                        fra31/auto-attack settings)

and, for information, torchattacks' own `AutoAttack(version="standard")`,
which runs its APGD, APGD-T and FAB with their default 10 steps instead of
the reference's 100. Goal: within 1.5 points for every attack.

Needs the benchmark-only packages (never in the runtime requirements):

    pip install -r bench/requirements-crosscheck.txt
    pip install --no-deps torchattacks==3.5.1
    python bench/crosscheck_autoattack.py
"""

import time

from absl import app, flags

import harness  # first: it puts the project on sys.path
import crosscheck_twin
import keras
import numpy as np
import tensorflow as tf

from tf_atalp.attacks import APGD, PGD, AutoAttack, FABTargeted, Square, inference_logits
from tf_atalp.data.config import DataConfig
from tf_atalp.data.datasets import make_dataset
from tf_atalp.training import AdversarialTrainer

ATTACKS = ("apgd-ce", "apgd-t", "fab-t", "square", "autoattack-standard")

flags.DEFINE_string("data_dir", harness.shared_data("flowers17"), "The 17 Flowers folder.")
flags.DEFINE_list("epsilons", ["4/255", "8/255"], "L-inf radii (fractions allowed).")
flags.DEFINE_integer("train_per_class", 48, "Training images per class (the first ones); "
                     "the remaining 32 per class are attacked.")
flags.DEFINE_integer("epochs", 40, "Adversarial training epochs of the network.")
flags.DEFINE_integer("iterations", 100, "Steps of APGD, APGD-T and FAB-T (reference: 100).")
flags.DEFINE_integer("queries", 5000, "Square's queries (reference: 5000).")
flags.DEFINE_integer("max_examples", 0, "Attack only the first N held-out images (0: all).")
flags.DEFINE_list("attacks", list(ATTACKS),
                  "The attacks to compare (a subset reruns part of the table).")
flags.DEFINE_string("results_name", "autoattack_crosscheck", "bench/results/<name>.json.")
FLAGS = flags.FLAGS

TRAIN_EPSILON = 8 / 255
GOAL_POINTS = 1.5


def parse_fraction(text: str) -> float:
    numerator, _, denominator = text.partition("/")
    value = float(numerator) / float(denominator or 1)
    if not 0 < value <= 1:
        raise app.UsageError(f"--epsilons must lie in (0, 1]. Received: {text}")
    return value


def load_flowers(data_dir: str, train_per_class: int):
    """(train images, train labels, held-out images, held-out labels), float32 NHWC in [0, 1]."""
    config = DataConfig(dataset="flowers17", data_dir=data_dir, image_size=32,
                        batch_size=256, augment=False)
    images, labels = [], []
    for split in ("train", "test"):
        for batch_images, batch_labels in make_dataset(config, split, training=False):
            images.append(batch_images.numpy())
            labels.append(batch_labels.numpy())
    images, labels = np.concatenate(images), np.concatenate(labels)
    rank = np.zeros(len(labels), int)  # position of each image within its class, file order
    for label in np.unique(labels):
        where = np.flatnonzero(labels == label)
        rank[where] = np.arange(where.size)
    train = rank < train_per_class
    return images[train], labels[train], images[~train], labels[~train]


def train_network(images, labels, num_classes, epochs):
    network = crosscheck_twin.keras_network(num_classes)
    trainer = AdversarialTrainer(network, "pat",
                                 attack=PGD(TRAIN_EPSILON, 2 / 255, 7, random_start=True),
                                 seed=0)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    trainer.fit(images, labels, batch_size=64, epochs=epochs, verbose=2)
    return network


def trained_twins(data_dir: str, train_per_class: int, epochs: int,
                  max_examples: int = 0) -> dict:
    """The network trained in Keras, its PyTorch twin, and the held-out images to attack.

    Raises AssertionError unless both compute the same logits on those images.
    Returns {"network", "twin", "images", "labels", "training_seconds", "logit_gap"}.
    """
    import torch
    train_x, train_y, test_x, test_y = load_flowers(data_dir, train_per_class)
    if max_examples:
        test_x, test_y = test_x[:max_examples], test_y[:max_examples]
    print(f"17 Flowers at 32 px: {len(train_y)} training images, {len(test_y)} attacked")
    started = time.perf_counter()
    network = train_network(train_x, train_y, int(train_y.max()) + 1, epochs)
    training_seconds = time.perf_counter() - started
    twin = crosscheck_twin.torch_twin(network)
    ours_logits = inference_logits(network)(test_x).numpy()
    with torch.no_grad():
        their_logits = twin(torch.from_numpy(crosscheck_twin.to_nchw(test_x))).numpy()
    logit_gap = float(np.abs(ours_logits - their_logits).max())
    same_predictions = bool(np.all(ours_logits.argmax(1) == their_logits.argmax(1)))
    print(f"max |logits(Keras) - logits(PyTorch)| = {logit_gap:.2e}; "
          f"same predictions: {same_predictions}")
    if logit_gap > 1e-3 * max(1.0, float(np.abs(ours_logits).max())) or not same_predictions:
        raise AssertionError("The PyTorch twin does not compute the Keras network.")
    return {"network": network, "twin": twin, "images": test_x, "labels": test_y,
            "training_seconds": training_seconds, "logit_gap": logit_gap}


def ours(name, model_fn, epsilon, images, labels, iterations, queries):
    """Robust bool [N] under our attack `name`."""
    if name == "autoattack-standard":
        return AutoAttack(model_fn, epsilon, version="standard", iterations=iterations,
                          queries=queries)(images, labels).robust
    attack = {"apgd-ce": lambda: APGD(epsilon, iterations),
              "apgd-t": lambda: APGD(epsilon, iterations, target_classes=9),
              "fab-t": lambda: FABTargeted(epsilon, iterations, target_classes=9),
              "square": lambda: Square(epsilon, queries=queries, rescale_schedule=False),
              }[name]()
    found = attack.attack(model_fn, images, labels, seed=0).adversarial_images
    check_in_ball(found.numpy(), images, epsilon, f"ours {name}")
    return np.argmax(model_fn(found).numpy(), axis=1) == labels


def torchattacks_attack(name, twin, epsilon, iterations, queries):
    import torchattacks
    components = {
        "apgd-ce": lambda: torchattacks.APGD(twin, norm="Linf", eps=epsilon, steps=iterations,
                                             n_restarts=1, loss="ce", seed=0),
        "apgd-t": lambda: torchattacks.APGDT(twin, norm="Linf", eps=epsilon, steps=iterations,
                                             n_restarts=1, n_classes=10, seed=0),
        "fab-t": lambda: torchattacks.FAB(twin, norm="Linf", eps=epsilon, steps=iterations,
                                          n_restarts=1, multi_targeted=True, n_classes=10,
                                          seed=0),
        "square": lambda: torchattacks.Square(twin, norm="Linf", eps=epsilon, n_queries=queries,
                                              n_restarts=1, p_init=0.8, loss="margin",
                                              resc_schedule=False, seed=0),
    }
    if name == "autoattack-standard":
        return torchattacks.MultiAttack([components[c]() for c in ATTACKS[:4]])
    if name == "torchattacks-autoattack-as-shipped":
        return torchattacks.AutoAttack(twin, norm="Linf", eps=epsilon, version="standard",
                                       n_classes=10, seed=0)
    return components[name]()


def theirs(name, twin, epsilon, images, labels, iterations, queries):
    """Robust bool [N] under torchattacks' attack `name` on the PyTorch twin."""
    import torch
    x = torch.from_numpy(crosscheck_twin.to_nchw(images))
    y = torch.from_numpy(labels.astype(np.int64))
    found = torchattacks_attack(name, twin, epsilon, iterations, queries)(x, y).detach()
    check_in_ball(crosscheck_twin.to_nhwc(found.numpy()), images, epsilon,
                  f"torchattacks {name}")
    with torch.no_grad():
        return twin(found).argmax(1).numpy() == labels


def check_in_ball(found, images, epsilon, who):
    distance = float(np.abs(found - images).max())
    if distance > epsilon + 1e-5 or found.min() < 0 or found.max() > 1:
        raise AssertionError(f"{who} left the epsilon-ball or [0, 1]: L-inf distance "
                             f"{distance} > {epsilon}, range [{found.min()}, {found.max()}]")


def timed(function, *args):
    started = time.perf_counter()
    robust = function(*args)
    return robust, time.perf_counter() - started


def entry(robust, seconds):
    return {"robust_accuracy": round(100 * float(np.mean(robust)), 2),
            "robust_count": int(np.sum(robust)), "seconds": round(seconds, 1)}


def main(argv):
    del argv
    import torch
    import torchattacks
    torch.manual_seed(0)
    epsilons = [parse_fraction(text) for text in FLAGS.epsilons]
    unknown = sorted(set(FLAGS.attacks) - set(ATTACKS))
    if unknown:
        raise app.UsageError(f"--attacks: unknown {unknown}; choose from {list(ATTACKS)}")
    twin_setup = trained_twins(FLAGS.data_dir, FLAGS.train_per_class, FLAGS.epochs,
                               FLAGS.max_examples)
    network, twin, test_x, test_y = (twin_setup[k] for k in ("network", "twin", "images",
                                                             "labels"))
    training_seconds, logit_gap = twin_setup["training_seconds"], twin_setup["logit_gap"]
    model_fn = inference_logits(network)
    ours_logits = model_fn(test_x).numpy()
    clean = ours_logits.argmax(1) == test_y
    results = {
        "setting": {"data": "17 Flowers at 32 px", "attacked_images": len(test_y),
                    "train_images": len(train_y), "network": "crosscheck_twin (3 conv, 2 dense)",
                    "training": f"pat, PGD-7 eps 8/255 step 2/255, {FLAGS.epochs} epochs",
                    "epsilons": epsilons, "iterations": FLAGS.iterations,
                    "queries": FLAGS.queries, "goal_points": GOAL_POINTS},
        "clean_accuracy": round(100 * float(np.mean(clean)), 2),
        "max_logit_gap": logit_gap, "training_seconds": round(training_seconds, 1),
        "torch": torch.__version__, "torchattacks": torchattacks.__version__, "rows": []}
    command = "python bench/crosscheck_autoattack.py " + " ".join(
        f"--{name}={FLAGS[name].value}" for name in ("epochs", "iterations", "queries",
                                                     "max_examples")) + (
        "" if tuple(FLAGS.attacks) == ATTACKS else f" --attacks={','.join(FLAGS.attacks)}")
    print(f"clean accuracy {results['clean_accuracy']:.2f}%; robust accuracy (%), "
          "ours vs torchattacks:")
    for epsilon in epsilons:
        for name in FLAGS.attacks:
            budget = (FLAGS.iterations, FLAGS.queries)
            our_robust, our_seconds = timed(ours, name, model_fn, epsilon, test_x, test_y,
                                            *budget)
            their_robust, their_seconds = timed(theirs, name, twin, epsilon, test_x, test_y,
                                                *budget)
            row = {"attack": name, "epsilon": epsilon, "ours": entry(our_robust, our_seconds),
                   "torchattacks": entry(their_robust, their_seconds),
                   "same_outcome_share": round(float(np.mean(our_robust == their_robust)), 4)}
            row["difference_points"] = round(row["ours"]["robust_accuracy"]
                                             - row["torchattacks"]["robust_accuracy"], 2)
            row["within_goal"] = abs(row["difference_points"]) <= GOAL_POINTS
            add_row(results, row, command)
        if "autoattack-standard" not in FLAGS.attacks:
            continue
        shipped, seconds = timed(theirs, "torchattacks-autoattack-as-shipped", twin, epsilon,
                                 test_x, test_y, FLAGS.iterations, FLAGS.queries)
        add_row(results, {"attack": "torchattacks AutoAttack as shipped (10 steps)",
                          "epsilon": epsilon, "torchattacks": entry(shipped, seconds)}, command)


def add_row(results, row, command):
    """Prints the row and rewrites the results file with it (an interrupted run keeps its rows)."""
    results["rows"].append(row)
    theirs_ = row["torchattacks"]
    if "ours" not in row:
        print(f"{row['attack']:45s} eps {row['epsilon']:.4f}       -  "
              f"{theirs_['robust_accuracy']:6.2f}  ({theirs_['seconds']} s)", flush=True)
    else:
        ours_ = row["ours"]
        print(f"{row['attack']:45s} eps {row['epsilon']:.4f}  {ours_['robust_accuracy']:6.2f}  "
              f"{theirs_['robust_accuracy']:6.2f}  diff {row['difference_points']:+.2f}  "
              f"({ours_['seconds']} s vs {theirs_['seconds']} s)"
              f"{'' if row['within_goal'] else '  OUTSIDE 1.5 POINTS'}", flush=True)
    harness.write_results(FLAGS.results_name, command, results)


if __name__ == "__main__":
    tf.config.threading.set_inter_op_parallelism_threads(2)
    app.run(main)
