"""The registry of defenses: small declarative configs, not branches in train_step.

A `Defense` says which loss terms are summed, whether PGD examples are made
during training, and which model-builder options it needs. `get_defense`
builds one by name with the user's weights:

| name     | loss                                   | attack in training |
| -------- | -------------------------------------- | ------------------ |
| none     | CE(clean)                              | no                 |
| pat      | CE(adv)                   (Madry)      | yes                |
| alp      | CE(adv) + alpha * ALP     (Kannan)     | yes                |
| at       | CE(adv) + beta * AT                    | yes                |
| at_alp   | CE(adv) + alpha * ALP + beta * AT      | yes                |

Default weights: alpha = 0.5 (Kannan et al.'s logit-pairing weight on
ImageNet) and beta = 0.1. The paper states neither. AT is an unsquared norm
whose gradient does not fade as the maps agree, so a large beta can hold
learning back: `python bench/beta_sweep.py` (bench/results/beta_sweep.json)
found every beta in [0, 1] harmless for a BatchNorm ResNet-10 on the
synthetic task, but for a CNN without BatchNorm beta >= 0.1 cost accuracy
(beta = 1 stayed at chance). Lower beta for such models.
"""

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from tf_atalp.loss_terms import (
    ADVERSARIAL,
    CLEAN,
    AttentionPairingTerm,
    CrossEntropyTerm,
    LogitPairingTerm,
)

DEFAULT_ALPHA = 0.5
DEFAULT_BETA = 0.1
DEFAULT_ATTENTION_GROUPS = ("conv2_x", "conv3_x", "conv4_x", "conv5_x")


@dataclasses.dataclass(frozen=True)
class Defense:
    """A training recipe.

    Attributes:
      name: registry name.
      loss_terms: the weighted terms summed into the training loss.
      adversarial_training: make PGD examples of each batch in train_step.
      model_options: keyword arguments for `tf_atalp.models.build_resnet`.
      description: one line for humans.
    """

    name: str
    loss_terms: tuple
    adversarial_training: bool
    model_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    description: str = ""

    def __post_init__(self):
        if not self.loss_terms:
            raise ValueError(f"Defense {self.name!r} has no loss terms.")
        names = [t.name for t in self.loss_terms]
        if len(set(names)) != len(names):
            raise ValueError(f"Defense {self.name!r} has repeated loss-term names: {names}")
        if self.uses(ADVERSARIAL) and not self.adversarial_training:
            raise ValueError(
                f"Defense {self.name!r} has a term on adversarial examples but "
                "`adversarial_training=False`.")

    def uses(self, which: str) -> bool:
        """Whether any term needs the CLEAN or ADVERSARIAL forward pass."""
        return any(which in t.needs for t in self.loss_terms)

    @property
    def term_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.loss_terms)


def _check_weight(name: str, value: float) -> float:
    if value < 0:
        raise ValueError(f"`{name}` must be >= 0. Received: {name}={value}")
    return float(value)


def _none(**_) -> Defense:
    return Defense("none", (CrossEntropyTerm(on=CLEAN),), adversarial_training=False,
                   description="plain cross-entropy on clean images")


def _pairing_defense(name, description, *, alpha, beta, ce_on, attention_groups, p,
                     attention_power) -> Defense:
    terms = [CrossEntropyTerm(on=ce_on)]
    if alpha:
        terms.append(LogitPairingTerm(weight=alpha))
    if beta:
        terms.append(AttentionPairingTerm(weight=beta, groups=attention_groups, p=p,
                                          attention_power=attention_power))
    return Defense(name, tuple(terms), adversarial_training=True, description=description)


def _factory(name: str, description: str, use_alpha: bool, use_beta: bool) -> Callable:
    def make(alpha=DEFAULT_ALPHA, beta=DEFAULT_BETA, ce_on=ADVERSARIAL,
             attention_groups=DEFAULT_ATTENTION_GROUPS, p=2.0, attention_power=2.0):
        return _pairing_defense(
            name, description,
            alpha=_check_weight("alpha", alpha) if use_alpha else 0.0,
            beta=_check_weight("beta", beta) if use_beta else 0.0,
            ce_on=ce_on, attention_groups=attention_groups, p=p,
            attention_power=attention_power)
    return make


_REGISTRY: dict[str, Callable[..., Defense]] = {
    "none": _none,
    "pat": _factory("pat", "PGD adversarial training (Madry et al.)", False, False),
    "alp": _factory("alp", "PGD training + adversarial logit pairing (Kannan et al.)",
                    True, False),
    "at": _factory("at", "PGD training + attention pairing", False, True),
    "at_alp": _factory("at_alp", "PGD training + attention and logit pairing (the paper)",
                       True, True),
}


def defense_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def register_defense(name: str, factory: Callable[..., Defense]) -> None:
    """Adds a defense: `factory(**options)` returns a `Defense`."""
    if name in _REGISTRY:
        raise ValueError(f"A defense named {name!r} is already registered.")
    _REGISTRY[name] = factory


def get_defense(name: str, **options) -> Defense:
    """The defense `name` with the given options (alpha, beta, ce_on, ...).

    `none` ignores the options; `pat` ignores alpha and beta, `alp` beta and
    `at` alpha.
    """
    if name not in _REGISTRY:
        raise ValueError(f"`defense` must be one of {defense_names()}. Received: defense={name!r}")
    return _REGISTRY[name](**options)
