"""Defenses: classes that own their hyperparameters, loss terms and model parts.

- `base.py`: `Defense`, the base class (see its docstring for what a
  defense owns).
- `terms.py`: `LossTerm` and `LossInputs`, the protocol between defenses and
  the trainer, and the cross-entropy, ALP and AT terms.
- `pairing.py`: none, pat, alp, at, at_alp.
- `gradient_regularization.py`: igr (input gradient regularization, Ross &
  Doshi-Velez).
- `randomized.py`: rat (randomized adversarial training, Araujo et al.) and
  randomization (random resize and pad at inference, Xie et al. 2017).
- `denoising.py`: fd (feature denoising, Xie et al. 2018).
- `ensemble_diversity.py`: adp (adaptive diversity promoting, Pang et al.).
- `trades.py`: trades (Zhang et al. 2019).
- `mart.py`: mart (misclassification-aware adversarial training, Wang et al. 2020).
- `fast_training.py`: fast_at (FGSM with a random start, Wong et al. 2020; GradAlign,
  Andriushchenko & Flammarion 2020) and free_at (minibatch replays, Shafahi et al. 2019).
- `weight_perturbation.py`: AWP (Wu et al. 2020), a wrapper around any adversarially
  trained defense (`awp_gamma`).
- `registry.py`: `get_defense(name, **options)`, `register_defense(cls)`,
  `defense_config` / `defense_from_config` (the run_config.json form).
"""

from tf_atalp.defenses.base import Defense
from tf_atalp.defenses.denoising import FeatureDenoising
from tf_atalp.defenses.ensemble_diversity import AdaptiveDiversityPromoting
from tf_atalp.defenses.fast_training import FastAdversarialTraining, FreeAdversarialTraining
from tf_atalp.defenses.gradient_regularization import InputGradientRegularization
from tf_atalp.defenses.pairing import (
    DEFAULT_ALPHA, DEFAULT_BETA, AttentionAndLogitPairing, AttentionPairing, LogitPairing,
    NoDefense, PGDTraining)
from tf_atalp.defenses.mart import MART
from tf_atalp.defenses.randomized import Randomization, RandomizedAdversarialTraining
from tf_atalp.defenses.registry import (
    defense_class, defense_config, defense_from_config, defense_names, get_defense,
    register_defense)
from tf_atalp.defenses.terms import (
    ADVERSARIAL, CE_TARGETS, CLEAN, AttentionPairingTerm, CrossEntropyTerm, LogitPairingTerm,
    LossInputs, LossTerm)
from tf_atalp.defenses.trades import TRADES
from tf_atalp.defenses.weight_perturbation import (
    AdversarialWeightPerturbation, with_weight_perturbation)

__all__ = [
    "ADVERSARIAL", "AdaptiveDiversityPromoting", "AdversarialWeightPerturbation",
    "FastAdversarialTraining", "FreeAdversarialTraining", "InputGradientRegularization", "MART",
    "TRADES",
    "Randomization", "RandomizedAdversarialTraining", "AttentionAndLogitPairing", "AttentionPairing", "AttentionPairingTerm",
    "CE_TARGETS", "CLEAN", "CrossEntropyTerm", "DEFAULT_ALPHA", "DEFAULT_BETA", "Defense",
    "FeatureDenoising",
    "LogitPairing", "LogitPairingTerm", "LossInputs", "LossTerm", "NoDefense", "PGDTraining",
    "defense_class", "defense_config", "defense_from_config", "defense_names", "get_defense",
    "register_defense", "with_weight_perturbation",
]
