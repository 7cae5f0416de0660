"""The five defenses of the paper's core: none, PGD training, ALP, AT and AT+ALP.

| name     | class                      | loss                                 | attack in training |
| -------- | -------------------------- | ------------------------------------ | ------------------ |
| none     | `NoDefense`                | CE(clean)                            | no                 |
| pat      | `PGDTraining`  (Madry)     | CE(adv)                              | yes                |
| alp      | `LogitPairing` (Kannan)    | CE(adv) + alpha * ALP                | yes                |
| at       | `AttentionPairing`         | CE(adv) + beta * AT                  | yes                |
| at_alp   | `AttentionAndLogitPairing` | CE(adv) + alpha * ALP + beta * AT    | yes                |

Default weights: alpha = 0.5 (Kannan et al.'s logit-pairing weight on
ImageNet) and beta = 0.1. The paper states neither. AT is an unsquared norm
whose gradient does not fade as the maps agree, so a large beta can hold
learning back: `python bench/beta_sweep.py` (bench/results/beta_sweep.json)
found every beta in [0, 1] harmless for a BatchNorm ResNet-10 on the
synthetic task, but for a CNN without BatchNorm beta >= 0.1 cost accuracy
(beta = 1 stayed at chance). Lower beta for such models.

`ce_on` puts the cross-entropy on the adversarial batch (Madry, the
default), the clean one, or both ("mixed"); a weight of 0 drops a pairing
term. Attention groups name feature maps of the model ("features" output);
None pairs all of them.
"""

import dataclasses

from tf_atalp.defenses.base import Defense, check_weight
from tf_atalp.defenses.terms import (
    ADVERSARIAL, CLEAN, AttentionPairingTerm, CrossEntropyTerm, LogitPairingTerm)
from tf_atalp.models.heads import GROUP_NAMES

DEFAULT_ALPHA = 0.5
DEFAULT_BETA = 0.1


def _ce_and_logit_pairing(ce_on: str, alpha: float) -> list:
    """CE on `ce_on`, plus ALP weighted by alpha when alpha > 0 (checked >= 0)."""
    check_weight("alpha", alpha)
    terms = [CrossEntropyTerm(on=ce_on)]
    if alpha:
        terms.append(LogitPairingTerm(weight=alpha))
    return terms


@dataclasses.dataclass(frozen=True)
class NoDefense(Defense):
    """Plain cross-entropy on clean images."""

    name = "none"
    description = "plain cross-entropy on clean images"
    adversarial_training = False

    def loss_terms(self):
        return (CrossEntropyTerm(on=CLEAN),)


@dataclasses.dataclass(frozen=True)
class PGDTraining(Defense):
    """PGD adversarial training (Madry et al.): cross-entropy on PGD examples."""

    name = "pat"
    description = "PGD adversarial training (Madry et al.)"
    ce_on: str = ADVERSARIAL

    def loss_terms(self):
        return (CrossEntropyTerm(on=self.ce_on),)


@dataclasses.dataclass(frozen=True)
class LogitPairing(Defense):
    """PGD training + adversarial logit pairing (Kannan et al.)."""

    name = "alp"
    description = "PGD training + adversarial logit pairing (Kannan et al.)"
    alpha: float = DEFAULT_ALPHA
    ce_on: str = ADVERSARIAL

    def loss_terms(self):
        return tuple(_ce_and_logit_pairing(self.ce_on, self.alpha))


@dataclasses.dataclass(frozen=True)
class AttentionPairing(Defense):
    """PGD training + attention pairing over the conv groups (eq. 4)."""

    name = "at"
    description = "PGD training + attention pairing"
    beta: float = DEFAULT_BETA
    attention_groups: tuple[str, ...] | None = GROUP_NAMES
    p: float = 2.0
    attention_power: float = 2.0
    ce_on: str = ADVERSARIAL

    def __post_init__(self):
        check_weight("beta", self.beta)
        if self.attention_groups is not None:
            groups = tuple(self.attention_groups)
            if not groups:
                raise ValueError("`attention_groups` must be None or a non-empty list of "
                                 "feature names. Received: attention_groups=()")
            object.__setattr__(self, "attention_groups", groups)
        if not self.p > 0:
            raise ValueError(f"`p` must be > 0. Received: p={self.p}")
        super().__post_init__()

    def _attention_terms(self):
        if not self.beta:
            return []
        return [AttentionPairingTerm(weight=self.beta, groups=self.attention_groups, p=self.p,
                                     attention_power=self.attention_power)]

    def loss_terms(self):
        return (CrossEntropyTerm(on=self.ce_on), *self._attention_terms())


@dataclasses.dataclass(frozen=True)
class AttentionAndLogitPairing(AttentionPairing):
    """The paper's AT+ALP: CE(adv) + alpha * ALP + beta * AT."""

    name = "at_alp"
    description = "PGD training + attention and logit pairing (the paper)"
    alpha: float = DEFAULT_ALPHA

    def loss_terms(self):
        return (*_ce_and_logit_pairing(self.ce_on, self.alpha), *self._attention_terms())
