"""AutoAttack over a dataset (`eval_main.py --attack=autoattack`): per epsilon, the whole set.

The examples are gathered first; at each epsilon every attack then runs on
the points the earlier ones left robust across the whole set, in chunks of
at most the data's batch size (as the reference batches the robust points),
so a late attack such as Square runs on all the survivors at once rather
than on the few of each data batch. The attacks run on the model with its
BatchNorm folded into the convolutions (`fold_batchnorm`: the same
function, faster); every prediction that scores is the model's own. Reported: clean, robust after each
attack, the attack that broke each example, wall time per attack, and every
masking flag (probed over the whole set: "batches" is None).
"""

from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from tf_atalp.attacks.autoattack import AutoAttack
from tf_atalp.attacks.model_fns import inference_logits
from tf_atalp.data.datasets import first_examples
from tf_atalp.evaluation.per_example import encode_outcomes
from tf_atalp.evaluation.robustness import per_class_counts
from tf_atalp.models.folding import fold_batchnorm


def evaluate_autoattack(model: Callable, dataset, epsilons: Sequence[float], *,
                        version: str = "standard", attacks: Sequence[str] = (),
                        iterations: int = 100, queries: int = 5000, eot_samples: int = 20,
                        seed: int = 0, max_examples: int | None = None,
                        progress: Callable | None = None) -> dict:
    """AutoAttack robust accuracy of `model` at each epsilon.

    `progress(epsilon, done, total)` is called after each epsilon.

    Returns:
      {"num_examples", "clean_correct", "clean_accuracy",
       "per_class": {"num_examples", "clean_correct"}, "attacks": [],
       "autoattack": [{"epsilon", "described", "robust_correct", "robust_accuracy",
                       "robust_after": {attack: accuracy}, "broken_by": {attack: count},
                       "seconds": {attack: s}, "flags": [{"name", "message", "batches"}]}],
       "worst_case": [{"epsilon", "attacks": [], "robust_correct", "robust_accuracy",
                       "robust_examples"}],
       "clean_examples"}
      (*_examples: one '0'/'1' character per example, `per_example.decode_outcomes`.)
    """
    model_fn = inference_logits(model)
    folded = fold_batchnorm(model)  # the attacks run on it; model_fn scores
    attack_model_fn = inference_logits(folded)
    batches = list(first_examples(dataset, max_examples))
    if not batches:
        raise ValueError("The dataset yielded no examples to evaluate.")
    batch_size = max(int(labels.shape[0]) for _, labels in batches)
    images = np.concatenate([np.asarray(images, np.float32) for images, _ in batches])
    labels = np.concatenate([np.asarray(labels) for _, labels in batches]).astype(np.int32)
    total = len(labels)
    num_classes = int(model_fn(tf.constant(images[:1])).shape[-1])
    per_epsilon, clean_correct = [], None
    for done, epsilon in enumerate(epsilons):
        attack = AutoAttack(model_fn, epsilon, version=version, attacks=attacks,
                            iterations=iterations, queries=queries, eot_samples=eot_samples,
                            seed=seed, attack_model_fn=attack_model_fn)
        result = attack(images, labels, batch_size=batch_size)
        if clean_correct is None:
            clean_correct = result.clean_correct
        broken_by = {}
        for name in result.broken_by:
            if name:
                broken_by[name] = broken_by.get(name, 0) + 1
        robust_total = int(result.robust.sum())
        per_epsilon.append({
            "epsilon": epsilon, "described": attack.describe(),
            "batchnorm_folded": folded is not model, "robust_correct": robust_total,
            "robust_accuracy": robust_total / total,
            "robust_examples": encode_outcomes(result.robust),
            "robust_after": dict(result.robust_after), "broken_by": broken_by,
            "seconds": {k: round(v, 1) for k, v in result.seconds.items()},
            "flags": [{"name": name, "message": message, "batches": None}
                      for name, message in result.flags]})
        if progress is not None:
            progress(epsilon, done + 1, len(epsilons))
    return {
        "num_examples": total, "clean_correct": int(clean_correct.sum()),
        "clean_accuracy": int(clean_correct.sum()) / total,
        "per_class": {"num_examples": [int(c) for c in np.bincount(labels,
                                                                   minlength=num_classes)],
                      "clean_correct": [int(c) for c in per_class_counts(labels, clean_correct,
                                                                         num_classes)]},
        "attacks": [], "autoattack": per_epsilon,
        "worst_case": [{"epsilon": entry["epsilon"], "attacks": [],
                        "robust_correct": entry["robust_correct"],
                        "robust_accuracy": entry["robust_accuracy"],
                        "robust_examples": entry["robust_examples"]} for entry in per_epsilon],
        "clean_examples": encode_outcomes(clean_correct),
    }
