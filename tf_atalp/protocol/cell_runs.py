"""The work of one protocol cell, returned as JSON-ready numbers.

- `white_box_cell`: PGD of one setting on a target itself (randomized targets
  through expectation over transformation), every epsilon, every recorded
  count; with early stop when the protocol drops broken examples.
- `single_step_cell`: FGSM at every epsilon on a target (the yardstick of the
  "iterative at least as strong as single-step" check).
- `transfer_cell`: PGD images of one setting crafted once per batch on a
  source and scored on every target it attacks (`evaluate_transfer`).

Every result holds, per model scored, the clean accuracy, the class counts
(for the majority-class check), the per-count points (`attack_points`) and
the worst case per epsilon (`robust_accuracy`).
"""

from collections.abc import Callable, Mapping, Sequence

from tf_atalp.attacks import Restarts
from tf_atalp.evaluation.results import (
    WHITE_BOX, attack_points, average_over_draws, robust_accuracy)
from tf_atalp.evaluation.robustness import evaluate_robustness
from tf_atalp.evaluation.transfer import SOURCE, evaluate_transfer
from tf_atalp.protocol.settings import AttackSetting, single_step
from tf_atalp.seeds import derive_seed


def scored(evaluation: dict, threat_model: str) -> dict:
    """The JSON-ready numbers of one model's evaluation."""
    return {"clean_accuracy": evaluation["clean_accuracy"],
            "clean_correct": evaluation["clean_correct"],
            "num_examples": evaluation["num_examples"],
            "class_totals": evaluation["per_class"]["num_examples"],
            "points": attack_points(evaluation, threat_model),
            "robust": robust_accuracy(evaluation, threat_model),
            **{key: evaluation[key] for key in ("clean_examples", "clean_examples_per_draw")
               if key in evaluation}}


def white_box_cell(model: Callable, batches: Sequence, setting: AttackSetting,
                   epsilons: Sequence[float], *, seed: int, drop_broken: bool,
                   eot_samples: int = 1, random_draws: int = 1) -> dict:
    """White-box PGD of `setting` at every epsilon on `model`; draws averaged when > 1."""
    attacks = [Restarts(setting.pgd(epsilon, early_stop=drop_broken), setting.restarts)
               for epsilon in epsilons]
    evaluations = [evaluate_robustness(
        model, batches, attacks, record_at=setting.record_at,
        seed=seed if draw == 0 else derive_seed(seed, "draw", draw), eot_samples=eot_samples)
        for draw in range(random_draws)]
    result = scored(average_over_draws(evaluations), WHITE_BOX)
    result.update(eot_samples=eot_samples, random_draws=random_draws)
    return result


def single_step_cell(model: Callable, batches: Sequence, epsilons: Sequence[float], *,
                     eot_samples: int = 1) -> dict:
    """FGSM at every epsilon on `model` (white-box)."""
    evaluation = evaluate_robustness(model, batches, [single_step(e) for e in epsilons],
                                     eot_samples=eot_samples)
    return scored(evaluation, WHITE_BOX)


def transfer_cell(source: Callable, targets: Mapping[str, Callable], batches: Sequence,
                  setting: AttackSetting, epsilons: Sequence[float], *, threat_model: str,
                  seed: int, observe: Callable | None = None, cache=None,
                  cache_key: str | None = None) -> dict:
    """PGD of `setting` crafted on `source` once per batch, scored on each of `targets`.

    Returns {"source": the source's own white-box numbers, "targets": {name: numbers}}.
    `observe(batch_index, images, labels, epsilon, final_iterate)` is called for
    every batch and epsilon (e.g. to measure attention on the adversarial images).
    `cache`, `cache_key`: `evaluate_transfer`'s (iterates crafted by an earlier cell).
    """
    attacks = [setting.pgd(epsilon) for epsilon in epsilons]
    result = evaluate_transfer(source, targets, batches, attacks, record_at=setting.record_at,
                               seed=seed, observe=observe, cache=cache, cache_key=cache_key)
    models = result["models"]
    return {"source": scored(models[SOURCE], WHITE_BOX),
            "targets": {name: scored(models[name], threat_model) for name in targets}}
