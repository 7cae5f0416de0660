"""Attacks as objects with one call: `attack.attack(model_fn, images, labels, seed=...)`.

- `base.py`: the `Attack` protocol, `AttackResult`, and `AttackBase` (what the
  single attacks share: the epsilon check, `get_config`/`from_config`, `for_xla`).
- `pgd.py`: L-inf `PGD` (Madry et al.) and `FGSM`.
- `apgd.py`: `APGD` (Croce & Hein 2020): APGD-CE, APGD-DLR and APGD-T.
- `fab.py`: `FAB` and `FABTargeted` (FAB-T) (Croce & Hein 2020): minimal L-inf
  perturbations.
- `autoattack.py`: `AutoAttack` (standard, plus, rand, custom) and its gradient-masking flags.
- `square.py`: `Square` (Andriushchenko et al. 2020): score-based, no gradients.
- `composite.py`: `Restarts(attack, n)` and `WorstCase([attacks])`.
- `model_fns.py`: what an attack is given: `inference_logits(model)`,
  `training_logits(model)`, `ExpectationOverTransformation(model_fn, samples)`,
  `BackwardPassDifferentiableApproximation(model_fn, transform)`.
- `objectives.py`: `Objective`: the cross-entropy, CW-margin, KL-to-clean (TRADES)
  and DLR objectives, by the names PGD and APGD both take (`OBJECTIVES`), and
  `dlr_loss`, `targeted_dlr_loss`.
Pixel units on [0, 1] images throughout.
"""

from tf_atalp.attacks.apgd import APGD
from tf_atalp.attacks.autoattack import AutoAttack, AutoAttackResult, masking_flags
from tf_atalp.attacks.base import Attack, AttackBase, AttackResult, ModelFn, for_xla
from tf_atalp.attacks.composite import Restarts, WorstCase, restart_seed
from tf_atalp.attacks.fab import FAB, FABTargeted
from tf_atalp.attacks.model_fns import (
    BackwardPassDifferentiableApproximation, ExpectationOverTransformation, ModelLogits,
    expectation_over_transformation, inference_logits, objective_and_gradient,
    training_logits)
from tf_atalp.attacks.objectives import (
    OBJECTIVES, Objective, cross_entropy_objective, dlr_loss, get_objective,
    kl_to_clean_objective, margin_objective, targeted_dlr_loss)
from tf_atalp.attacks.pgd import FGSM, PGD, linf_project, random_start
from tf_atalp.attacks.square import Square

__all__ = [
    "APGD", "Attack", "AttackBase", "AttackResult", "AutoAttack", "AutoAttackResult",
    "BackwardPassDifferentiableApproximation", "ExpectationOverTransformation", "FAB",
    "FABTargeted", "FGSM", "ModelFn", "ModelLogits", "OBJECTIVES", "Objective", "PGD",
    "Restarts", "Square", "WorstCase", "cross_entropy_objective", "dlr_loss",
    "expectation_over_transformation", "for_xla", "get_objective", "inference_logits",
    "kl_to_clean_objective", "linf_project", "margin_objective", "masking_flags",
    "objective_and_gradient", "random_start", "restart_seed", "targeted_dlr_loss",
    "training_logits",
]
