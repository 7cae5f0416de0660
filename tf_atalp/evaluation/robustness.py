"""White-box robust accuracy under L-inf PGD, with restarts and worst-iterate scoring.

For each attack, ONE PGD run of `attack.iterations` steps per batch and
restart scores every iterate 0..iterations (`pgd_with_trace`), so the
accuracies after 10, 20, ..., 200 steps all come from the same 200-step run.

Definitions (counts are exact integers summed over batches; accuracy =
count / num_examples):
  accuracy at k: the example is classified correctly on the clean image AND
    at iterate k of every restart.
  worst-iterate accuracy at k: correctly classified on the clean image AND at
    every iterate 0..k (0 is the start point) of every restart. It is
    non-increasing in k and never above the accuracy at k, whereas the
    accuracy at k need not be monotone (PGD can step back to a correct point).
"""

from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tf_atalp.attacks.pgd import PGDConfig, model_logits, pgd_with_trace
from tf_atalp.data.pipeline import derive_seed


def _check_record_at(record_at, attacks):
    if record_at is None:
        return
    if not record_at or min(record_at) < 0:
        raise ValueError(
            f"`record_at` must be a non-empty list of counts >= 0. Received: record_at={record_at}")
    longest = max(record_at)
    for attack in attacks:
        if attack.iterations < longest:
            raise ValueError(
                f"`record_at` must not exceed the attack's iterations={attack.iterations}. "
                f"Received: record_at={list(record_at)}")


def _check_attacks(attacks):
    if not attacks or not all(isinstance(a, PGDConfig) for a in attacks):
        raise ValueError(f"`attacks` must be a non-empty list of PGDConfig. Received: {attacks}")
    if any(a.targeted for a in attacks):
        raise ValueError("Robust accuracy is measured with untargeted attacks. "
                         f"Received: {[a for a in attacks if a.targeted]}")


def _batches(dataset, max_examples):
    """The (images, labels) batches of `dataset`, cut after `max_examples` examples."""
    remaining = max_examples
    for images, labels in dataset:
        if remaining is not None:
            images, labels = images[:remaining], labels[:remaining]
            remaining -= int(labels.shape[0])
        yield images, labels
        if remaining is not None and remaining <= 0:
            return


def _attack_batch(model, images, labels, clean_correct, attack, batch_index, seed, jit_compile):
    """bool [iterations + 1, N] correct-at-k and worst-up-to-k over all restarts."""
    correct_at = np.broadcast_to(clean_correct, (attack.iterations + 1, len(clean_correct)))
    worst_at = correct_at
    for restart in range(attack.restarts):
        trace = pgd_with_trace(
            model, images, labels, attack, record_at=range(attack.iterations + 1),
            seed=derive_seed(seed, "pgd", batch_index, restart), jit_compile=jit_compile)
        run_correct = trace.correct_at.numpy()
        correct_at = correct_at & run_correct
        worst_at = worst_at & np.logical_and.accumulate(run_correct, axis=0)
    return correct_at, worst_at


def _per_class_counts(labels: np.ndarray, correct: np.ndarray, num_classes: int) -> np.ndarray:
    """int64 [K]: the number of correct examples of each class."""
    return np.bincount(labels[correct], minlength=num_classes).astype(np.int64)


def _progress_bar(total: int | None, enabled: bool):
    """A Keras progress bar over examples (with the time left), or None."""
    if not enabled:
        return None
    return keras.utils.Progbar(total, unit_name="example", stateful_metrics=["clean_accuracy"])


def evaluate_robustness(model: Callable,
                        dataset: tf.data.Dataset,
                        attacks: Sequence[PGDConfig],
                        record_at: Sequence[int] | None = None,
                        max_examples: int | None = None,
                        seed: int = 0,
                        jit_compile: bool = False,
                        num_examples_hint: int | None = None,
                        progress: bool = False) -> dict:
    """Clean and white-box PGD accuracy of `model` on `dataset`.

    Args:
      model: maps float images [N, S, S, 3] in [0, 1] to [N, K] logits or a
        dict holding "logits" (a Keras model or a `ServingModel`).
      dataset: batches (images float32 [B, S, S, 3] in [0, 1], labels int [B]).
      attacks: untargeted PGD attacks; each runs `iterations` steps once per
        batch and restart.
      record_at: the step counts to report (each <= every attack's
        iterations); None: only each attack's `iterations`.
      max_examples: evaluate only the first N examples of `dataset`.
      seed: seed of the random starts (restart r of batch b draws from
        (seed, b, r), the same for every attack).
      jit_compile: compile the PGD loop with XLA.
      num_examples_hint: how many examples to expect (sets the progress bar's
        total and time left).
      progress: show a progress bar (examples done, time left) on stdout.

    Returns:
      {"num_examples": n, "clean_correct": int, "clean_accuracy": float,
       "per_class": {"num_examples": [int per class], "clean_correct": [...]},
       "attacks": [{"attack": PGDConfig, "record_at": [k, ...],
                    "correct": [int per k], "accuracy": [float per k],
                    "worst_iterate_correct": [int per k],
                    "worst_iterate_accuracy": [float per k],
                    "per_class_correct": [int per class, at the last k],
                    "per_class_worst_iterate_correct": [int per class, last k]}, ...]}
      Classes are the label values 0..K-1, K = the model's number of logits.
      See the module docstring for the definitions.
    """
    attacks = list(attacks)
    _check_attacks(attacks)
    _check_record_at(record_at, attacks)
    if max_examples is not None and max_examples < 1:
        raise ValueError(f"`max_examples` must be >= 1. Received: max_examples={max_examples}")
    counts = [sorted(set(record_at)) if record_at else [a.iterations] for a in attacks]
    correct = [np.zeros(len(c), np.int64) for c in counts]
    worst = [np.zeros(len(c), np.int64) for c in counts]
    num_examples = clean_total = 0
    num_classes = None
    expected = num_examples_hint if max_examples is None else min(
        max_examples, num_examples_hint or max_examples)
    bar = _progress_bar(expected, progress)
    for batch_index, (images, labels) in enumerate(_batches(dataset, max_examples)):
        labels = tf.cast(labels, tf.int32)
        logits = model_logits(model, images)
        if num_classes is None:
            num_classes = int(logits.shape[-1])
            class_total = np.zeros(num_classes, np.int64)
            class_clean = np.zeros(num_classes, np.int64)
            class_correct = [np.zeros(num_classes, np.int64) for _ in attacks]
            class_worst = [np.zeros(num_classes, np.int64) for _ in attacks]
        label_values = labels.numpy()
        clean_correct = (tf.argmax(logits, axis=-1, output_type=tf.int32) == labels).numpy()
        num_examples += len(clean_correct)
        clean_total += int(clean_correct.sum())
        class_total += np.bincount(label_values, minlength=num_classes)
        class_clean += _per_class_counts(label_values, clean_correct, num_classes)
        for index, attack in enumerate(attacks):
            correct_at, worst_at = _attack_batch(
                model, images, labels, clean_correct, attack, batch_index, seed, jit_compile)
            correct[index] += correct_at[counts[index]].sum(axis=1)
            worst[index] += worst_at[counts[index]].sum(axis=1)
            last = counts[index][-1]
            class_correct[index] += _per_class_counts(label_values, correct_at[last], num_classes)
            class_worst[index] += _per_class_counts(label_values, worst_at[last], num_classes)
        if bar is not None:
            bar.add(len(clean_correct), [("clean_accuracy", clean_total / num_examples)])
        logging.debug("Evaluated %d examples: clean %d correct.", num_examples, clean_total)
    if num_examples == 0:
        raise ValueError("The dataset yielded no examples to evaluate.")
    return {
        "num_examples": num_examples,
        "clean_correct": clean_total,
        "clean_accuracy": clean_total / num_examples,
        "per_class": {"num_examples": [int(c) for c in class_total],
                      "clean_correct": [int(c) for c in class_clean]},
        "attacks": [{
            "attack": attack,
            "record_at": counts[index],
            "correct": [int(c) for c in correct[index]],
            "accuracy": [int(c) / num_examples for c in correct[index]],
            "worst_iterate_correct": [int(c) for c in worst[index]],
            "worst_iterate_accuracy": [int(c) / num_examples for c in worst[index]],
            "per_class_correct": [int(c) for c in class_correct[index]],
            "per_class_worst_iterate_correct": [int(c) for c in class_worst[index]],
        } for index, attack in enumerate(attacks)],
    }
