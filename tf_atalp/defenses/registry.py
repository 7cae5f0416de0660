"""The registry of defenses: names to `Defense` classes.

    get_defense("at_alp", alpha=0.5, beta=0.1)      # a configured defense
    defense_from_config({"name": "at_alp", "alpha": 0.5, ...})  # from run_config.json

Options a defense does not have but another registered defense does (alpha
for `pat`, say) are ignored, so one set of flags configures any defense; an
option no defense has is an error. `awp_gamma` > 0 wraps any adversarially
trained defense in AWP (`weight_perturbation.py`); its config is the wrapped
defense's with "awp_gamma" added.
"""

import dataclasses

from tf_atalp.defenses.base import Defense
from tf_atalp.defenses.denoising import FeatureDenoising
from tf_atalp.defenses.ensemble_diversity import AdaptiveDiversityPromoting
from tf_atalp.defenses.fast_training import FastAdversarialTraining, FreeAdversarialTraining
from tf_atalp.defenses.gradient_regularization import InputGradientRegularization
from tf_atalp.defenses.pairing import (
    AttentionAndLogitPairing, AttentionPairing, LogitPairing, NoDefense, PGDTraining)
from tf_atalp.defenses.mart import MART
from tf_atalp.defenses.randomized import Randomization, RandomizedAdversarialTraining
from tf_atalp.defenses.trades import TRADES
from tf_atalp.defenses.weight_perturbation import (
    AdversarialWeightPerturbation, with_weight_perturbation)

_REGISTRY: dict[str, type[Defense]] = {}
# Keys of older run_config.json files, renamed since.
_RENAMED_OPTIONS = {"attention_p": "p"}


def register_defense(defense_class: type[Defense]) -> type[Defense]:
    """Adds a `Defense` subclass under its `name` (usable as a class decorator)."""
    name = defense_class.name
    if not name:
        raise ValueError(f"{defense_class.__name__} has no `name`.")
    if name in _REGISTRY:
        raise ValueError(f"A defense named {name!r} is already registered.")
    _REGISTRY[name] = defense_class
    return defense_class


for _defense_class in (NoDefense, PGDTraining, LogitPairing, AttentionPairing,
                       AttentionAndLogitPairing, InputGradientRegularization,
                       RandomizedAdversarialTraining, Randomization, FeatureDenoising,
                       AdaptiveDiversityPromoting, TRADES, MART, FastAdversarialTraining,
                       FreeAdversarialTraining):
    register_defense(_defense_class)


def defense_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def defense_class(name: str) -> type[Defense]:
    if name not in _REGISTRY:
        raise ValueError(f"`defense` must be one of {defense_names()}. Received: defense={name!r}")
    return _REGISTRY[name]


def _option_names(cls: type[Defense]) -> set[str]:
    return {field.name for field in dataclasses.fields(cls)}


def get_defense(name: str, awp_gamma: float = 0.0, **options) -> Defense:
    """The defense `name` with the given options (alpha, beta, ce_on, attention_groups, ...).

    Options of other registered defenses are ignored (`pat` ignores alpha and
    beta, `alp` beta, `at` alpha, `none` all); an option no defense knows
    raises ValueError. `awp_gamma` > 0 wraps the defense in AWP.
    """
    cls = defense_class(name)
    options = {_RENAMED_OPTIONS.get(key, key): value for key, value in options.items()}
    known = set().union(*(_option_names(c) for c in _REGISTRY.values()))
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"No defense has the option(s) {unknown}. Options: {sorted(known)}")
    own = _option_names(cls)
    defense = cls.from_config({key: value for key, value in options.items() if key in own})
    return with_weight_perturbation(defense, awp_gamma)


def defense_config(defense: Defense) -> dict:
    """{"name": ..., **hyperparameters}: the JSON form of a defense (run_config.json)."""
    if isinstance(defense, AdversarialWeightPerturbation):
        return {**defense_config(defense.defense), "awp_gamma": defense.gamma}
    return {"name": defense.name, **defense.get_config()}


def defense_from_config(config: dict) -> Defense:
    """The defense of `defense_config(...)` (older run_config.json forms included)."""
    config = dict(config)
    if "name" not in config:
        raise ValueError(f"A defense config needs a 'name'. Received: {config}")
    return get_defense(config.pop("name"), **config)
