"""Attacks: L-inf PGD (Madry et al.) and FGSM, in pixel units on [0, 1] images."""

from tf_atalp.attacks.pgd import (
    OBJECTIVES,
    PGDConfig,
    PGDTrace,
    cross_entropy_objective,
    fgsm,
    linf_project,
    margin_objective,
    model_logits,
    pgd,
    pgd_from_config,
    pgd_with_trace,
    random_start,
)

__all__ = [
    "OBJECTIVES", "PGDConfig", "PGDTrace", "cross_entropy_objective", "fgsm",
    "linf_project", "margin_objective", "model_logits", "pgd", "pgd_from_config",
    "pgd_with_trace", "random_start",
]
