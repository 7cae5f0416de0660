"""White-box robust accuracy under attacks (`Attack` objects), with worst-iterate scoring.

For each attack (e.g. `Restarts(PGD(...), n)`), ONE run of its `iterations`
steps per batch (and restart) scores every iterate 0..iterations
(`record_at`), so the accuracies after 10, 20, ..., 200 steps all come from
the same 200-step run. The attacks craft on, and are scored by, the same
model function: the model's logits in inference mode.

Definitions (counts are exact integers summed over batches; accuracy =
count / num_examples):
  accuracy at k: the example is classified correctly on the clean image AND
    at iterate k of every restart.
  worst-iterate accuracy at k: correctly classified on the clean image AND at
    every iterate 0..k (0 is the start point) of every restart. It is
    non-increasing in k and never above the accuracy at k, whereas the
    accuracy at k need not be monotone (PGD can step back to a correct point).
  robust accuracy at epsilon (the worst case over attacks, as AutoAttack
    scores): correctly classified on the clean image AND at every iterate of
    every restart of EVERY attack of that epsilon. The strongest number the
    evaluation has; with one attack per epsilon it is that attack's
    worst-iterate accuracy at its last count.
"""

from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tf_atalp.attacks.base import Attack
from tf_atalp.attacks.model_fns import expectation_over_transformation, inference_logits
from tf_atalp.data.datasets import first_examples
from tf_atalp.evaluation.per_example import encode_outcomes
from tf_atalp.seeds import derive_seed


def run_iterations(attack) -> int:
    """The length of one run of `attack` (its `describe()["iterations"]`)."""
    described = attack.describe()
    if not isinstance(described.get("iterations"), int):
        raise ValueError(
            "Robust accuracy is measured with attacks of a known number of iterations. "
            f"Received: {described}")
    return described["iterations"]


def _check_record_at(record_at, attacks):
    if record_at is None:
        return
    if not record_at or min(record_at) < 0:
        raise ValueError(
            f"`record_at` must be a non-empty list of counts >= 0. Received: record_at={record_at}")
    longest = max(record_at)
    for attack in attacks:
        if run_iterations(attack) < longest:
            raise ValueError(
                f"`record_at` must not exceed the attack's iterations={run_iterations(attack)}. "
                f"Received: record_at={list(record_at)}")


def _check_attacks(attacks):
    if not attacks or not all(isinstance(a, Attack) for a in attacks):
        raise ValueError(f"`attacks` must be a non-empty list of Attack objects (PGD, "
                         f"Restarts, WorstCase, ...). Received: {attacks}")
    targeted = [a for a in attacks if a.describe().get("targeted")]
    if targeted:
        raise ValueError("Robust accuracy is measured with untargeted attacks. "
                         f"Received: {[a.describe() for a in targeted]}")
    for attack in attacks:
        run_iterations(attack)
        if "epsilon" not in attack.describe():
            raise ValueError(f"Every attack must have one epsilon. Received: {attack.describe()}")


def _attack_batch(model_fn, images, labels, clean_correct, attack, batch_index, seed):
    """bool [iterations + 1, N] correct-at-k and worst-up-to-k (over all restarts)."""
    iterations = run_iterations(attack)
    result = attack.attack(model_fn, images, labels, record_at=range(iterations + 1),
                           seed=derive_seed(seed, "pgd", batch_index, 0))
    correct_at = clean_correct[None, :] & result.correct_at.numpy()
    return correct_at, np.logical_and.accumulate(correct_at, axis=0)


def per_class_counts(labels: np.ndarray, correct: np.ndarray, num_classes: int) -> np.ndarray:
    """int64 [K]: the number of correct examples of each class."""
    return np.bincount(labels[correct], minlength=num_classes).astype(np.int64)


def _progress_bar(total: int | None, enabled: bool):
    """A Keras progress bar over examples (with the time left), or None."""
    if not enabled:
        return None
    return keras.utils.Progbar(total, unit_name="example", stateful_metrics=["clean_accuracy"])


def _worst_case_groups(attacks) -> dict[float, list[int]]:
    """{epsilon: indices of the attacks of that epsilon}, epsilons sorted."""
    groups: dict[float, list[int]] = {}
    for index, attack in enumerate(attacks):
        groups.setdefault(attack.describe()["epsilon"], []).append(index)
    return dict(sorted(groups.items()))


def evaluate_robustness(model: Callable,
                        dataset: tf.data.Dataset,
                        attacks: Sequence[Attack],
                        record_at: Sequence[int] | None = None,
                        max_examples: int | None = None,
                        seed: int = 0,
                        num_examples_hint: int | None = None,
                        progress: bool = False,
                        eot_samples: int = 1) -> dict:
    """Clean and white-box accuracy of `model` on `dataset` under `attacks`.

    Args:
      model: maps float images [N, S, S, 3] in [0, 1] to [N, K] logits or a
        dict holding "logits" (a Keras model or a `ServingModel`); attacked
        and scored in inference mode.
      dataset: batches (images float32 [B, S, S, 3] in [0, 1], labels int [B]).
      attacks: untargeted attacks of one epsilon each (`PGD`,
        `Restarts(PGD(...), n)`, `WorstCase([...])`); each runs its
        iterations once per batch (and restart).
      record_at: the step counts to report (each <= every attack's
        iterations); None: only each attack's iterations.
      max_examples: evaluate only the first N examples of `dataset` (a prefix:
        of a class-sorted split, take `tf_atalp.data.subset`'s class-balanced
        subset instead, as eval_main does).
      seed: seed of the random starts (batch b draws from (seed, b); restart
        r > 0 from a seed derived from that; the same for every attack).
      num_examples_hint: how many examples to expect (sets the progress bar's
        total and time left).
      progress: show a progress bar (examples done, time left) on stdout.
      eot_samples: for a randomized model, > 1 attacks AND scores through
        `ExpectationOverTransformation(model, eot_samples)`: every gradient
        and every prediction (clean and at each iterate) is the mean over
        that many draws.

    Returns:
      {"num_examples": n, "clean_correct": int, "clean_accuracy": float,
       "per_class": {"num_examples": [int per class], "clean_correct": [...]},
       "attacks": [{"attack": the Attack, "record_at": [k, ...],
                    "correct": [int per k], "accuracy": [float per k],
                    "worst_iterate_correct": [int per k],
                    "worst_iterate_accuracy": [float per k],
                    "per_class_correct": [int per class, at the last k],
                    "per_class_worst_iterate_correct": [int per class, last k]}, ...],
       "worst_case": [{"epsilon": e, "attacks": [indices into "attacks"],
                       "robust_correct": int, "robust_accuracy": float,
                       "robust_examples": "0110..."}, ...],
       "clean_examples": "1110..."}
      The *_examples strings hold one character per example in dataset order
      ('1': correct on the clean image / robust; `per_example.decode_outcomes`).
      Classes are the label values 0..K-1, K = the model's number of logits.
      See the module docstring for the definitions.
    """
    attacks = list(attacks)
    _check_attacks(attacks)
    _check_record_at(record_at, attacks)
    if max_examples is not None and max_examples < 1:
        raise ValueError(f"`max_examples` must be >= 1. Received: max_examples={max_examples}")
    model_fn = (expectation_over_transformation(model, eot_samples) if eot_samples > 1
                else inference_logits(model))
    counts = [sorted(set(record_at)) if record_at else [run_iterations(a)] for a in attacks]
    groups = _worst_case_groups(attacks)
    correct = [np.zeros(len(c), np.int64) for c in counts]
    worst = [np.zeros(len(c), np.int64) for c in counts]
    robust = {epsilon: 0 for epsilon in groups}
    robust_examples = {epsilon: [] for epsilon in groups}
    clean_examples = []
    num_examples = clean_total = 0
    num_classes = None
    expected = num_examples_hint if max_examples is None else min(
        max_examples, num_examples_hint or max_examples)
    bar = _progress_bar(expected, progress)
    for batch_index, (images, labels) in enumerate(first_examples(dataset, max_examples)):
        labels = tf.cast(labels, tf.int32)
        logits = model_fn(tf.convert_to_tensor(images, tf.float32))
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
        clean_examples.append(clean_correct)
        class_total += np.bincount(label_values, minlength=num_classes)
        class_clean += per_class_counts(label_values, clean_correct, num_classes)
        survived_all = []
        for index, attack in enumerate(attacks):
            correct_at, worst_at = _attack_batch(
                model_fn, images, labels, clean_correct, attack, batch_index, seed)
            correct[index] += correct_at[counts[index]].sum(axis=1)
            worst[index] += worst_at[counts[index]].sum(axis=1)
            last = counts[index][-1]
            class_correct[index] += per_class_counts(label_values, correct_at[last], num_classes)
            class_worst[index] += per_class_counts(label_values, worst_at[last], num_classes)
            survived_all.append(worst_at[-1])
        for epsilon, members in groups.items():
            survived = np.logical_and.reduce([survived_all[i] for i in members])
            robust[epsilon] += int(survived.sum())
            robust_examples[epsilon].append(survived)
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
        "worst_case": [{"epsilon": epsilon, "attacks": members,
                        "robust_correct": robust[epsilon],
                        "robust_accuracy": robust[epsilon] / num_examples,
                        "robust_examples": encode_outcomes(np.concatenate(
                            robust_examples[epsilon]))}
                       for epsilon, members in groups.items()],
        "clean_examples": encode_outcomes(np.concatenate(clean_examples)),
    }
