"""Weighted loss terms: the protocol between a defense and the trainer.

A defense lists its terms; the trainer computes the passes they need and
hands each term a `LossInputs`; the training loss is
`sum_i term_i.weight * term_i(inputs)`, and each term's value is logged
under its `name`. A term reads the model outputs of the clean and/or
adversarial batch (dicts of roles: "logits", "features", "members"; see
`tf_atalp.models.outputs`), and may look at the images and run the network
itself (`inputs.network`, inside the trainer's gradient tape: what IGR's
input-gradient penalty, a double backprop, needs).

A new term subclasses `LossTerm`, sets `needs` and implements `__call__`;
weights stay apart from the term's formula, as in Keras' distillation losses.
"""

import dataclasses
from collections.abc import Callable, Mapping

import tensorflow as tf

from tf_atalp import losses
from tf_atalp.models.heads import GROUP_NAMES
from tf_atalp.models.outputs import features_of, logits_of

CLEAN = "clean"
ADVERSARIAL = "adversarial"
CE_TARGETS = ("adversarial", "clean", "mixed")


@dataclasses.dataclass(frozen=True)
class LossInputs:
    """What a loss term may read.

    Attributes:
      labels: int32 [N].
      clean: the network's outputs (a dict of roles) on the clean images, or
        None if no term needs that pass.
      adversarial: the outputs on the adversarial images, or None.
      images: float32 [N, H, W, C] clean images in [0, 1].
      adversarial_images: float32 [N, H, W, C], or None when the defense
        makes no adversarial examples.
      network: runs the network on images, in the step's mode, returning
        its outputs as a dict of roles; gradients flow to its weights and
        its input.
      epsilon: the training attack's L-inf radius, pixel units, or None.
      seed: int64 [2], the step's stateless seed (a function of the run's
        seed and the optimizer step, so a resumed run draws the same), or
        None (draw from TensorFlow's global generator). A term that draws
        folds in its own key (`tf.random.experimental.stateless_fold_in`).
    """

    labels: tf.Tensor
    clean: Mapping[str, tf.Tensor] | None
    adversarial: Mapping[str, tf.Tensor] | None
    images: tf.Tensor | None = None
    adversarial_images: tf.Tensor | None = None
    network: Callable[[tf.Tensor], Mapping[str, tf.Tensor]] | None = None
    epsilon: float | None = None
    seed: tf.Tensor | None = None

    def outputs(self, which: str) -> Mapping[str, tf.Tensor]:
        """The output dict of the CLEAN or ADVERSARIAL pass."""
        outputs = self.clean if which == CLEAN else self.adversarial
        if outputs is None:
            raise ValueError(f"The {which} outputs were not computed for this batch.")
        return outputs

    def logits(self, which: str) -> tf.Tensor:
        """float32 [N, K] logits of the CLEAN or ADVERSARIAL pass."""
        return logits_of(self.outputs(which))

    def features(self, which: str, names: tuple[str, ...] | None) -> dict[str, tf.Tensor]:
        """The feature maps `names` of a pass (None: every feature map of the model)."""
        features = features_of(self.outputs(which))
        if names is None:
            if not features:
                raise ValueError(
                    "The model has no feature maps to pair: its outputs have no 'features'. "
                    "Tap them with `tf_atalp.models.with_feature_outputs`.")
            return features
        missing = [name for name in names if name not in features]
        if missing:
            raise ValueError(
                f"The model has no feature map named {missing}. Attention groups must be "
                f"among its features: {sorted(features)}")
        return {name: features[name] for name in names}


@dataclasses.dataclass(frozen=True)
class LossTerm:
    """A weighted term of the training loss.

    Attributes:
      weight: the term's weight in the sum (>= 0).
      name: the key its value is logged under.
    Subclasses set `needs` (the passes, CLEAN and/or ADVERSARIAL) and
    implement `__call__(inputs) -> float32 scalar`.
    """

    weight: float = 1.0
    name: str = "term"
    needs: frozenset = frozenset()

    def __post_init__(self):
        if not self.weight >= 0:
            raise ValueError(f"`weight` of term {self.name!r} must be >= 0. "
                             f"Received: weight={self.weight}")

    def __call__(self, inputs: LossInputs) -> tf.Tensor:
        raise NotImplementedError

    def get_config(self) -> dict:
        config = dataclasses.asdict(self)
        config.pop("needs")
        return config


@dataclasses.dataclass(frozen=True)
class CrossEntropyTerm(LossTerm):
    """Cross-entropy on the adversarial batch (Madry), the clean batch, or the
    mean of both ("mixed", Kannan et al.'s clean + adversarial minibatch)."""

    on: str = ADVERSARIAL
    name: str = "ce"

    def __post_init__(self):
        super().__post_init__()
        if self.on not in CE_TARGETS:
            raise ValueError(f"`on` must be one of {CE_TARGETS}. Received: on={self.on!r}")
        passes = frozenset({CLEAN, ADVERSARIAL}) if self.on == "mixed" else frozenset({self.on})
        object.__setattr__(self, "needs", passes)

    def __call__(self, inputs: LossInputs) -> tf.Tensor:
        values = [losses.cross_entropy(inputs.labels, inputs.logits(p))
                  for p in sorted(self.needs)]
        return tf.add_n(values) / float(len(values))


@dataclasses.dataclass(frozen=True)
class LogitPairingTerm(LossTerm):
    """ALP (eq. 3): L2 loss between clean and adversarial logits."""

    per_example: str = "mean_squared"
    name: str = "alp"
    needs: frozenset = frozenset({CLEAN, ADVERSARIAL})

    def __call__(self, inputs: LossInputs) -> tf.Tensor:
        return losses.logit_pairing_loss(
            inputs.logits(CLEAN), inputs.logits(ADVERSARIAL), per_example=self.per_example)


@dataclasses.dataclass(frozen=True)
class AttentionPairingTerm(LossTerm):
    """AT (eq. 4): attention-map pairing over the selected feature maps.

    `groups=None` pairs every feature map of the model's "features" output.
    """

    groups: tuple[str, ...] | None = GROUP_NAMES
    p: float = 2.0
    attention_power: float = 2.0
    name: str = "at"
    needs: frozenset = frozenset({CLEAN, ADVERSARIAL})

    def __call__(self, inputs: LossInputs) -> tf.Tensor:
        return losses.attention_pairing_loss(
            inputs.features(CLEAN, self.groups), inputs.features(ADVERSARIAL, self.groups),
            p=self.p, attention_power=self.attention_power)
