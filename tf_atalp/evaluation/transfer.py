"""Transfer attacks: adversarial images crafted once on a source model, scored on targets.

The gray-box and black-box threat models of the paper: the attacker runs PGD
white-box on a model it has (the source: same architecture and defense but
other weights for gray-box, a deeper architecture for black-box) and the
images are scored on the defended model (the target). One PGD run per batch
gives the iterates after every requested count (`PGD.iterates`), and each
iterate is scored on every target: images are crafted once, not per target.

Definitions (as in `robustness.py`): a target's accuracy at k is the
fraction of examples it classifies correctly on the clean image AND on the
source's iterate after k steps. The source's own numbers are its white-box
accuracy at k under the same run, the yardstick every transfer number
should stay above (white-box at least as strong as transfer).
"""

import json
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import tensorflow as tf

from tf_atalp.attacks.base import correct_predictions
from tf_atalp.attacks.composite import Restarts
from tf_atalp.attacks.model_fns import inference_logits, one_per_model
from tf_atalp.attacks.pgd import PGD
from tf_atalp.data.datasets import first_examples
from tf_atalp.evaluation.iterate_cache import ITERATES, IterateCache
from tf_atalp.evaluation.per_example import encode_outcomes
from tf_atalp.evaluation.robustness import per_class_counts
from tf_atalp.seeds import derive_seed

SOURCE = "source"


def compiled_correct(model_fn: Callable) -> Callable:
    """`(images [N, H, W, C], labels [N]) -> bool [N]`, model_fn's argmax == label, compiled.

    One `tf.function` per model function (`one_per_model`), so a model is
    traced once per batch shape, not per call. Each call is still one
    forward pass of one batch: a randomized model draws anew per call, as it
    does eagerly. Scoring the iterates this way instead of eagerly is the
    speed-up `bench/transfer_scoring.py` measures.
    """
    def compile_correct():
        @tf.function(reduce_retracing=True)
        def correct(images, labels):
            return correct_predictions(model_fn(images), labels)
        return correct
    return one_per_model(model_fn, "compiled_correct", compile_correct)


def score_iterates(correct: Callable, iterates: Mapping[int, tf.Tensor], counts: Sequence[int],
                   labels: tf.Tensor) -> np.ndarray:
    """bool [len(counts), N]: `correct(iterates[k], labels)` for each count k, in order."""
    return np.stack([correct(iterates[k], labels).numpy() for k in counts])


def _single_pgd(attack) -> PGD:
    """The PGD inside `attack` (a PGD, or Restarts of one PGD with 1 restart)."""
    if isinstance(attack, Restarts) and attack.restarts == 1:
        attack = attack.inner
    if not isinstance(attack, PGD):
        raise ValueError("Transfer attacks are single PGD runs (PGD or Restarts(PGD, 1)). "
                         f"Received: {attack.describe() if hasattr(attack, 'describe') else attack}")
    if attack.targeted:
        raise ValueError("Transfer accuracy is measured with untargeted attacks.")
    return attack


class _Tally:
    """One scored model's counts, in the form `evaluate_robustness` returns."""

    def __init__(self, counts, num_classes):
        self.counts = counts
        self.num_classes = num_classes
        self.clean = 0
        self.class_total = np.zeros(num_classes, np.int64)
        self.class_clean = np.zeros(num_classes, np.int64)
        self.correct = [np.zeros(len(ks), np.int64) for ks in counts]
        self.worst = [np.zeros(len(ks), np.int64) for ks in counts]
        self.class_correct = [np.zeros(num_classes, np.int64) for _ in counts]
        self.class_worst = [np.zeros(num_classes, np.int64) for _ in counts]
        self.robust = {}
        self.clean_examples = []
        self.robust_examples = {}

    def result(self, pgds, num_examples) -> dict:
        groups = {}
        for index, pgd in enumerate(pgds):
            groups.setdefault(pgd.epsilon, []).append(index)
        return {
            "num_examples": num_examples, "clean_correct": self.clean,
            "clean_accuracy": self.clean / num_examples,
            "per_class": {"num_examples": [int(c) for c in self.class_total],
                          "clean_correct": [int(c) for c in self.class_clean]},
            "attacks": [{
                "attack": pgd, "record_at": ks,
                "correct": [int(c) for c in self.correct[i]],
                "accuracy": [int(c) / num_examples for c in self.correct[i]],
                "worst_iterate_correct": [int(c) for c in self.worst[i]],
                "worst_iterate_accuracy": [int(c) / num_examples for c in self.worst[i]],
                "per_class_correct": [int(c) for c in self.class_correct[i]],
                "per_class_worst_iterate_correct": [int(c) for c in self.class_worst[i]],
            } for i, (pgd, ks) in enumerate(zip(pgds, self.counts))],
            "worst_case": [{"epsilon": epsilon, "attacks": members,
                            "robust_correct": self.robust.get(epsilon, 0),
                            "robust_accuracy": self.robust.get(epsilon, 0) / num_examples,
                            "robust_examples": encode_outcomes(np.concatenate(
                                self.robust_examples.get(epsilon, [np.zeros(0, bool)])))}
                           for epsilon, members in sorted(groups.items())],
            "clean_examples": encode_outcomes(np.concatenate(self.clean_examples)),
        }


def evaluate_transfer(source: Callable,
                      targets: Mapping[str, Callable],
                      dataset: tf.data.Dataset,
                      attacks: Sequence,
                      record_at: Sequence[int] | None = None,
                      max_examples: int | None = None,
                      seed: int = 0,
                      observe: Callable | None = None,
                      cache: IterateCache | None = None,
                      cache_key: str | None = None) -> dict:
    """Accuracy of each target on adversarial images crafted on `source`.

    Args:
      source: the model the attacker has (images -> logits or a dict holding
        them); attacked white-box in inference mode.
      targets: {name: model} scored on the source's images (name "source" is
        reserved for the source's own white-box numbers).
      dataset: batches (images float32 [B, S, S, 3] in [0, 1], labels int [B]).
      attacks: PGD attacks (`Restarts(PGD, 1)` is taken as its PGD).
      record_at: the step counts scored (each <= every attack's iterations);
        None: each attack's iterations.
      max_examples: only the first N examples of `dataset` (a prefix: see
        `evaluate_robustness`).
      seed: the random starts (batch b draws from (seed, "pgd", b, 0), as
        `evaluate_robustness` draws restart 0).
      observe: called as observe(batch_index, images, labels, epsilon,
        iterate) with the iterate after the last scored count of every attack
        and batch (to measure something else on the adversarial images).
      cache, cache_key: an `IterateCache` and what the source's iterates
        depend on beyond the attack and the batch (its weights, the data):
        iterates found there are scored, not crafted again. Both or neither.

    Returns:
      {"num_examples": n, "models": {name: evaluation}}, one entry per target
      and one, "source", for the source, each `evaluation` in the form
      `evaluate_robustness` returns. Worst-iterate here is over the SCORED
      counts only (the target sees no other iterate); "worst_case" per
      epsilon is over every attack of that epsilon and every scored count.
    """
    if not targets or SOURCE in targets:
        raise ValueError(f"`targets` must be a non-empty dict of models not named {SOURCE!r}. "
                         f"Received names: {sorted(targets)}")
    pgds = [_single_pgd(attack) for attack in attacks]
    if not pgds:
        raise ValueError("`attacks` must be a non-empty list of PGD attacks.")
    counts = [sorted(set(record_at)) if record_at else [pgd.iterations] for pgd in pgds]
    for pgd, ks in zip(pgds, counts):
        if ks[0] < 0 or ks[-1] > pgd.iterations:
            raise ValueError(f"`record_at` must lie in [0, {pgd.iterations}]. Received: {ks}")
    if (cache is None) != (cache_key is None):
        raise ValueError("`cache` and `cache_key` go together. Received: "
                         f"cache={cache!r}, cache_key={cache_key!r}")
    source_fn = inference_logits(source)
    scorers = {SOURCE: source_fn, **{name: inference_logits(m) for name, m in targets.items()}}
    correct = {name: compiled_correct(fn) for name, fn in scorers.items()}
    tallies, num_examples = None, 0
    for batch_index, (images, labels) in enumerate(first_examples(dataset, max_examples)):
        images = tf.convert_to_tensor(images, tf.float32)
        labels = tf.cast(labels, tf.int32)
        label_values = labels.numpy()
        clean_logits = {name: fn(images) for name, fn in scorers.items()}
        if tallies is None:
            num_classes = int(clean_logits[SOURCE].shape[-1])
            tallies = {name: _Tally(counts, num_classes) for name in scorers}
        num_examples += len(label_values)
        clean_ok = {}
        for name, tally in tallies.items():
            clean_ok[name] = correct_predictions(clean_logits[name], labels).numpy()
            tally.clean += int(clean_ok[name].sum())
            tally.clean_examples.append(clean_ok[name])
            tally.class_total += np.bincount(label_values, minlength=tally.num_classes)
            tally.class_clean += per_class_counts(label_values, clean_ok[name], tally.num_classes)
        survived = {name: {} for name in scorers}
        batch_seed = derive_seed(seed, "pgd", batch_index, 0)
        for index, (pgd, ks) in enumerate(zip(pgds, counts)):
            def craft(pgd=pgd, ks=ks):
                iterates = pgd.iterates(source_fn, images, labels, at=ks, seed=batch_seed)
                return {ITERATES: iterates,
                        SOURCE: score_iterates(correct[SOURCE], iterates, ks, labels)}
            if cache is None:
                crafted = craft()
            else:
                crafted = cache.iterates((cache_key, json.dumps(pgd.get_config(), sort_keys=True),
                                          tuple(ks), batch_index, batch_seed), craft)
            iterates = crafted[ITERATES]
            if observe is not None:
                observe(batch_index, images, labels, pgd.epsilon, iterates[ks[-1]])
            for name in scorers:
                tally = tallies[name]
                scored = (crafted[SOURCE] if name == SOURCE
                          else score_iterates(correct[name], iterates, ks, labels))
                at_k = clean_ok[name] & scored
                worst = np.logical_and.accumulate(at_k, axis=0)
                tally.correct[index] += at_k.sum(axis=1)
                tally.worst[index] += worst.sum(axis=1)
                tally.class_correct[index] += per_class_counts(label_values, at_k[-1], tally.num_classes)
                tally.class_worst[index] += per_class_counts(label_values, worst[-1], tally.num_classes)
                previous = survived[name].get(pgd.epsilon, clean_ok[name])
                survived[name][pgd.epsilon] = previous & worst[-1]
        for name, tally in tallies.items():
            for epsilon, alive in survived[name].items():
                tally.robust[epsilon] = tally.robust.get(epsilon, 0) + int(alive.sum())
                tally.robust_examples.setdefault(epsilon, []).append(alive)
    if num_examples == 0:
        raise ValueError("The dataset yielded no examples to evaluate.")
    return {"num_examples": num_examples,
            "models": {name: tally.result(pgds, num_examples)
                       for name, tally in tallies.items()}}
