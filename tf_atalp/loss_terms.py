"""Weighted loss terms: the pieces a defense's training objective is summed from.

A term reads the model outputs of the clean and/or adversarial batch (dicts
holding "logits" and feature maps) and returns a float32 scalar. It declares
which passes it needs, so the trainer runs only those. New defenses add a new
term here (e.g. IGR's input-gradient norm, ADP's ensemble diversity) without
touching `train_step`.
"""

import dataclasses
from collections.abc import Mapping

import tensorflow as tf

from tf_atalp import losses

CLEAN = "clean"
ADVERSARIAL = "adversarial"
CE_TARGETS = ("adversarial", "clean", "mixed")


@dataclasses.dataclass(frozen=True)
class LossInputs:
    """What a loss term may read.

    Attributes:
      labels: int32 [N].
      clean: the model's output dict on the clean images, or None if no term
        needs it.
      adversarial: the output dict on the adversarial images, or None.
      logits_key: the key of the logits in the output dicts.
    """

    labels: tf.Tensor
    clean: Mapping[str, tf.Tensor] | None
    adversarial: Mapping[str, tf.Tensor] | None
    logits_key: str = "logits"

    def logits(self, which: str) -> tf.Tensor:
        return self._outputs(which)[self.logits_key]

    def features(self, which: str, groups: tuple[str, ...] | None) -> dict[str, tf.Tensor]:
        """The feature maps named `groups` (None: every non-logit output)."""
        outputs = self._outputs(which)
        if groups is None:
            return {k: v for k, v in outputs.items() if k != self.logits_key}
        missing = [g for g in groups if g not in outputs]
        if missing:
            raise ValueError(
                f"The model has no output named {missing}. Attention groups must be among "
                f"its outputs: {sorted(k for k in outputs if k != self.logits_key)}")
        return {g: outputs[g] for g in groups}

    def _outputs(self, which: str) -> Mapping[str, tf.Tensor]:
        outputs = self.clean if which == CLEAN else self.adversarial
        if outputs is None:
            raise ValueError(f"The {which} outputs were not computed for this batch.")
        return outputs


@dataclasses.dataclass(frozen=True)
class CrossEntropyTerm:
    """Cross-entropy on the adversarial batch (Madry), the clean batch, or the
    mean of both ("mixed", Kannan et al.'s clean + adversarial minibatch)."""

    weight: float = 1.0
    on: str = ADVERSARIAL
    name: str = "ce"

    def __post_init__(self):
        if self.on not in CE_TARGETS:
            raise ValueError(f"`on` must be one of {CE_TARGETS}. Received: on={self.on!r}")

    @property
    def needs(self) -> frozenset[str]:
        if self.on == "mixed":
            return frozenset({CLEAN, ADVERSARIAL})
        return frozenset({self.on})

    def __call__(self, inputs: LossInputs) -> tf.Tensor:
        passes = sorted(self.needs)
        values = [losses.cross_entropy(inputs.labels, inputs.logits(p)) for p in passes]
        return tf.add_n(values) / float(len(values))


@dataclasses.dataclass(frozen=True)
class LogitPairingTerm:
    """ALP (eq. 3): L2 loss between clean and adversarial logits."""

    weight: float
    per_example: str = "mean_squared"
    name: str = "alp"
    needs: frozenset[str] = frozenset({CLEAN, ADVERSARIAL})

    def __call__(self, inputs: LossInputs) -> tf.Tensor:
        return losses.logit_pairing_loss(
            inputs.logits(CLEAN), inputs.logits(ADVERSARIAL), per_example=self.per_example)


@dataclasses.dataclass(frozen=True)
class AttentionPairingTerm:
    """AT (eq. 4): attention-map pairing over the selected feature groups.

    `groups=None` pairs every non-logit output of the model.
    """

    weight: float
    groups: tuple[str, ...] | None = ("conv2_x", "conv3_x", "conv4_x", "conv5_x")
    p: float = 2.0
    attention_power: float = 2.0
    name: str = "at"
    needs: frozenset[str] = frozenset({CLEAN, ADVERSARIAL})

    def __call__(self, inputs: LossInputs) -> tf.Tensor:
        return losses.attention_pairing_loss(
            inputs.features(CLEAN, self.groups), inputs.features(ADVERSARIAL, self.groups),
            p=self.p, attention_power=self.attention_power)
