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

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import tensorflow as tf

from tf_atalp.attacks.base import correct_predictions
from tf_atalp.attacks.composite import Restarts
from tf_atalp.attacks.model_fns import inference_logits
from tf_atalp.attacks.pgd import PGD
from tf_atalp.data.datasets import first_examples
from tf_atalp.seeds import derive_seed

SOURCE = "source"


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


def evaluate_transfer(source: Callable,
                      targets: Mapping[str, Callable],
                      dataset: tf.data.Dataset,
                      attacks: Sequence,
                      record_at: Sequence[int] | None = None,
                      max_examples: int | None = None,
                      seed: int = 0) -> dict:
    """Accuracy of each target on adversarial images crafted on `source`.

    Args:
      source: the model the attacker has (images -> logits or a dict holding
        them); attacked white-box in inference mode.
      targets: {name: model} scored on the source's images (name "source" is
        reserved for the source's own white-box numbers).
      dataset: batches (images float32 [B, S, S, 3] in [0, 1], labels int [B]).
      attacks: PGD attacks (one epsilon each; `Restarts(PGD, 1)` is taken as
        its PGD).
      record_at: the step counts scored (each <= every attack's iterations);
        None: each attack's iterations.
      max_examples: only the first N examples of `dataset`.
      seed: the random starts (batch b draws from (seed, "pgd", b, 0), as
        `evaluate_robustness` draws restart 0).

    Returns:
      {"num_examples": n,
       "models": {name: {"clean_correct": int, "clean_accuracy": float,
                         "attacks": [{"attack": the PGD, "record_at": [k...],
                                      "correct": [int per k],
                                      "accuracy": [float per k]}]}}}
      with one entry per target and one, "source", for the source.
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
    source_fn = inference_logits(source)
    scorers = {SOURCE: source_fn, **{name: inference_logits(m) for name, m in targets.items()}}
    clean = {name: 0 for name in scorers}
    correct = {name: [np.zeros(len(ks), np.int64) for ks in counts] for name in scorers}
    num_examples = 0
    for batch_index, (images, labels) in enumerate(first_examples(dataset, max_examples)):
        images = tf.convert_to_tensor(images, tf.float32)
        labels = tf.cast(labels, tf.int32)
        clean_ok = {name: correct_predictions(fn(images), labels).numpy()
                    for name, fn in scorers.items()}
        num_examples += int(labels.shape[0])
        for name in scorers:
            clean[name] += int(clean_ok[name].sum())
        batch_seed = derive_seed(seed, "pgd", batch_index, 0)
        for index, (pgd, ks) in enumerate(zip(pgds, counts)):
            iterates = pgd.iterates(source_fn, images, labels, at=ks, seed=batch_seed)
            for position, k in enumerate(ks):
                for name, fn in scorers.items():
                    still = correct_predictions(fn(iterates[k]), labels).numpy()
                    correct[name][index][position] += int((clean_ok[name] & still).sum())
    if num_examples == 0:
        raise ValueError("The dataset yielded no examples to evaluate.")
    return {
        "num_examples": num_examples,
        "models": {name: {
            "clean_correct": clean[name],
            "clean_accuracy": clean[name] / num_examples,
            "attacks": [{"attack": pgd, "record_at": ks,
                         "correct": [int(c) for c in correct[name][index]],
                         "accuracy": [int(c) / num_examples for c in correct[name][index]]}
                        for index, (pgd, ks) in enumerate(zip(pgds, counts))],
        } for name in scorers},
    }
