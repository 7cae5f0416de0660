"""AutoAttack over a dataset (`eval_main.py --attack=autoattack`): per epsilon, per batch.

Counts are summed over batches: clean, robust after each attack (each later
attack runs only on the points the earlier ones left robust), the attack
that broke each example, wall time per attack, and every masking flag with
the number of batches that raised it.
"""

from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from tf_atalp.attacks.autoattack import AutoAttack
from tf_atalp.attacks.model_fns import inference_logits
from tf_atalp.data.datasets import first_examples
from tf_atalp.evaluation.per_example import encode_outcomes
from tf_atalp.evaluation.robustness import per_class_counts
from tf_atalp.seeds import derive_seed


def evaluate_autoattack(model: Callable, dataset, epsilons: Sequence[float], *,
                        version: str = "standard", attacks: Sequence[str] = (),
                        iterations: int = 100, queries: int = 5000, eot_samples: int = 20,
                        seed: int = 0, max_examples: int | None = None,
                        progress: Callable | None = None) -> dict:
    """AutoAttack robust accuracy of `model` at each epsilon.

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
    batches = list(first_examples(dataset, max_examples))
    if not batches:
        raise ValueError("The dataset yielded no examples to evaluate.")
    total = sum(int(labels.shape[0]) for _, labels in batches)
    per_epsilon, clean_done = [], False
    clean_correct, class_total, class_clean = 0, None, None
    clean_examples = []
    for epsilon in epsilons:
        robust_after, broken_by, seconds, flags = {}, {}, {}, {}
        robust_total, described, robust_examples = 0, None, []
        for index, (images, labels) in enumerate(batches):
            attack = AutoAttack(model_fn, epsilon, version=version, attacks=attacks,
                                iterations=iterations, queries=queries,
                                eot_samples=eot_samples,
                                seed=derive_seed(seed, "autoattack", index))
            described = attack.describe()
            result = attack(images, labels)
            label_values = np.asarray(labels)
            if not clean_done:
                num_classes = int(model_fn(tf.convert_to_tensor(images[:1],
                                                                tf.float32)).shape[-1])
                if class_total is None:
                    class_total = np.zeros(num_classes, np.int64)
                    class_clean = np.zeros(num_classes, np.int64)
                clean_correct += int(result.clean_correct.sum())
                clean_examples.append(np.asarray(result.clean_correct, bool))
                class_total += np.bincount(label_values, minlength=num_classes)
                class_clean += per_class_counts(label_values, result.clean_correct, num_classes)
            count = len(label_values)
            robust_total += int(result.robust.sum())
            robust_examples.append(np.asarray(result.robust, bool))
            for name, accuracy in result.robust_after.items():
                robust_after[name] = robust_after.get(name, 0) + round(accuracy * count)
                seconds[name] = seconds.get(name, 0.0) + result.seconds[name]
            for name in result.broken_by:
                if name:
                    broken_by[name] = broken_by.get(name, 0) + 1
            for name, message in result.flags:
                flags.setdefault(name, {"name": name, "message": message, "batches": 0})
                flags[name]["batches"] += 1
            if progress is not None:
                progress(epsilon, index + 1, len(batches))
        clean_done = True
        per_epsilon.append({
            "epsilon": epsilon, "described": described, "robust_correct": robust_total,
            "robust_accuracy": robust_total / total,
            "robust_examples": encode_outcomes(np.concatenate(robust_examples)),
            "robust_after": {name: c / total for name, c in robust_after.items()},
            "broken_by": broken_by, "seconds": {k: round(v, 1) for k, v in seconds.items()},
            "flags": list(flags.values())})
    return {
        "num_examples": total, "clean_correct": clean_correct,
        "clean_accuracy": clean_correct / total,
        "per_class": {"num_examples": [int(c) for c in class_total],
                      "clean_correct": [int(c) for c in class_clean]},
        "attacks": [], "autoattack": per_epsilon,
        "worst_case": [{"epsilon": entry["epsilon"], "attacks": [],
                        "robust_correct": entry["robust_correct"],
                        "robust_accuracy": entry["robust_accuracy"],
                        "robust_examples": entry["robust_examples"]} for entry in per_epsilon],
        "clean_examples": encode_outcomes(np.concatenate(clean_examples)),
    }
