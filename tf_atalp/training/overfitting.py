"""Catastrophic overfitting: single-step adversarial training losing its robustness at once.

Wong et al. 2020 found that FGSM training can, within an epoch, stop being
robust to PGD while staying robust to FGSM ("catastrophic overfitting"), and
recommend checking PGD accuracy on one batch after every epoch: their
`--early-stop` (locuslab/fast_adversarial, CIFAR10/train_fgsm.py) attacks a
batch with 5-step PGD and stops when the accuracy falls by more than 0.2
from the previous epoch. `CatastrophicOverfitting` makes that check on a
fixed, class-balanced held-out batch, writes the accuracy and a flag to the
epoch logs (history.csv) and prints a warning when it fires;
`overfitting_summary` reads them back from the whole history (a resumed run
included) for train_results.json. GradAlign (`--grad_align_lambda`) is the
option that prevents it.
"""

import dataclasses

import keras
import tensorflow as tf

from tf_atalp.attacks.base import correct_predictions
from tf_atalp.attacks.model_fns import inference_logits
from tf_atalp.data.subset import balanced_examples
from tf_atalp.reporting import report
from tf_atalp.seeds import derive_seed

ACCURACY_KEY = "overfitting_check_accuracy"
FLAG_KEY = "catastrophic_overfitting"
# locuslab/fast_adversarial train_fgsm.py --early-stop: 5 PGD steps, a drop of more than 0.2.
CHECK_ITERATIONS = 5
COLLAPSE_DROP = 0.2
HELD_OUT_EXAMPLES = 128


def check_attack(attack):
    """The check's PGD: the training radius and step, CHECK_ITERATIONS steps, cross-entropy,
    uniform random start."""
    return dataclasses.replace(attack, iterations=CHECK_ITERATIONS, objective="cross_entropy",
                               random_start=True, start_noise="uniform", early_stop=False)


def held_out_batch(dataset: tf.data.Dataset, examples: int = HELD_OUT_EXAMPLES):
    """(images float32 [B, H, W, C], labels int32 [B]): a class-balanced batch of `dataset`
    (batched (images, labels)), B = min(examples, its size); the same on every call."""
    images, labels, _ = balanced_examples(dataset, examples)
    return tf.constant(images, tf.float32), tf.constant(labels, tf.int32)


def collapsed(previous: float | None, current: float, drop: float = COLLAPSE_DROP) -> bool:
    """Whether the accuracy fell by more than `drop` since the previous epoch."""
    return previous is not None and previous - current > drop


class CatastrophicOverfitting(keras.callbacks.Callback):
    """After each epoch: PGD accuracy on a held-out batch; flags a collapse.

    Writes `logs["overfitting_check_accuracy"]` (the accuracy, in [0, 1]) and
    `logs["catastrophic_overfitting"]` (1.0 if it fell by more than `drop`
    since the previous epoch, else 0.0), and prints a warning when it fires.
    Put it before the callbacks that record the logs.

    Args:
      images, labels: the held-out batch (float [B, H, W, C] in [0, 1], int [B]).
      attack: the `Attack` (e.g. `check_attack(training_pgd)`).
      drop: the fall in accuracy that counts as a collapse.
      seed: the attack's seed (the same draw every epoch).
      previous_accuracy: the accuracy of the epoch before the first one this
        callback sees (a resumed run), or None.
    """

    def __init__(self, images, labels, attack, drop: float = COLLAPSE_DROP, seed: int = 0,
                 previous_accuracy: float | None = None):
        super().__init__()
        self.images = tf.convert_to_tensor(images, tf.float32)
        self.labels = tf.cast(labels, tf.int32)
        if self.images.shape.rank != 4 or self.images.shape[0] != self.labels.shape[0] \
                or self.images.shape[0] == 0:
            raise ValueError("`images` must be [N, H, W, C], N >= 1, with one label each. "
                             f"Received shapes: {self.images.shape} and {self.labels.shape}")
        if not 0 < drop <= 1:
            raise ValueError(f"`drop` must be in (0, 1]. Received: drop={drop}")
        self.attack = attack
        self.drop = drop
        self.seed = derive_seed(seed, "overfitting_check")
        self.previous_accuracy = previous_accuracy
        self.collapsed_epochs: list[int] = []

    def accuracy(self) -> float:
        """The accuracy of `self.model` (inference mode) under the attack on the batch, now."""
        model_fn = inference_logits(self.model)
        adversarial = self.attack.attack(model_fn, self.images, self.labels,
                                         seed=self.seed).adversarial_images
        return float(tf.reduce_mean(tf.cast(
            correct_predictions(model_fn(adversarial), self.labels), tf.float32)))

    def on_epoch_end(self, epoch, logs=None):
        accuracy = self.accuracy()
        fired = collapsed(self.previous_accuracy, accuracy, self.drop)
        if fired:
            self.collapsed_epochs.append(epoch + 1)
            report(f"\nEpoch {epoch + 1}: catastrophic overfitting: PGD accuracy on the "
                   f"held-out batch fell from {self.previous_accuracy:.3f} to {accuracy:.3f} "
                   f"(more than {self.drop:g}; {self.images.shape[0]} images, "
                   f"{_settings(self.attack)}). Wong et al. stop here; GradAlign "
                   "(--grad_align_lambda) prevents it.")
        if logs is not None:
            logs[ACCURACY_KEY] = accuracy
            logs[FLAG_KEY] = float(fired)
        self.previous_accuracy = accuracy


def _settings(attack) -> str:
    return ", ".join(f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}"
                     for key, value in attack.describe().items()
                     if key in ("attack", "epsilon", "step_size", "iterations"))


def last_accuracy(rows: list[dict[str, str]]) -> float | None:
    """The check's accuracy in the last history row that has it (to resume with), or None."""
    values = [row.get(ACCURACY_KEY) for row in rows if row.get(ACCURACY_KEY) not in (None, "")]
    return float(values[-1]) if values else None


def overfitting_summary(rows: list[dict[str, str]], attack, examples: int,
                        drop: float = COLLAPSE_DROP) -> dict | None:
    """The check's record for train_results.json, from the rows of history.csv (None without
    the check): whether and after which epochs (from 1) it fired, and the accuracies."""
    checked = [row for row in rows if row.get(ACCURACY_KEY) not in (None, "")]
    if not checked:
        return None
    accuracies = [float(row[ACCURACY_KEY]) for row in checked]
    epochs = [int(row["epoch"]) for row in checked]
    fired = [epoch for epoch, previous, current in
             zip(epochs[1:], accuracies[:-1], accuracies[1:])
             if collapsed(previous, current, drop)]
    return {"detected": bool(fired), "epochs": fired,
            "held_out_accuracy": [round(value, 4) for value in accuracies],
            "drop": drop, "examples": examples, "attack": attack.describe(),
            "rule": ("PGD accuracy on a fixed class-balanced held-out batch falling by more "
                     f"than {drop:g} from one epoch to the next (Wong et al. 2020)")}

