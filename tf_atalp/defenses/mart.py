"""`mart`: misclassification-aware adversarial training (Wang, Zou, Yi, Bailey,
Ma, Gu 2020, "Improving Adversarial Robustness Requires Revisiting
Misclassified Examples").

Loss, per example n, then averaged over the batch:

    BCE_n + lambda * KL(p(clean_n) || p(adv_n)) * (1 - p_y(clean_n))

with the boosted cross-entropy on the adversarial example
BCE_n = CE(adv_n, y_n) - log(1 - max_{k != y} p_k(adv_n)): it also pushes
down the most likely wrong class. The KL weight 1 - p_y(clean) is large for
the examples the network gets wrong on clean images, the ones MART argues
matter most. Gradients flow through every probability (the weight too), as
in the authors' code. The training attack is cross-entropy PGD (the run's
epsilon, step and iterations) started at clean + 0.001 * N(0, 1).

Defaults, from the authors' code (YisenWang/MART): lambda = 5 (`--beta` of
`train_resnet.py`, their ResNet-18 script; `mart.py`'s signature and the
WideResNet script use 6); the offsets 1.0001 and 1e-12 in the boosted term
and 1.0000001 in the weight, and the 0.001 * N(0, 1) start, from `mart.py`.
The KL is computed from log-softmaxes (the authors take log(p_adv + 1e-12));
the two differ only where p_adv < 1e-12.
"""

import dataclasses

import tensorflow as tf

from tf_atalp import losses
from tf_atalp.defenses.base import Defense, check_weight
from tf_atalp.defenses.terms import ADVERSARIAL, CLEAN, LossInputs, LossTerm

DEFAULT_MART_LAMBDA = 5.0
# mart.py: log(1.0001 - p + 1e-12) in the boosted term, 1.0000001 - p_y in the KL weight.
BOOST_OFFSET = 1.0001
LOG_OFFSET = 1e-12
WEIGHT_OFFSET = 1.0000001


def _probabilities(logits: tf.Tensor) -> tf.Tensor:
    return tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)


def _true_class_mask(labels: tf.Tensor, probabilities: tf.Tensor) -> tf.Tensor:
    """bool [N, K]: the true class of each example."""
    return tf.cast(tf.one_hot(tf.cast(labels, tf.int32), tf.shape(probabilities)[-1]), tf.bool)


def boosted_cross_entropy(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """float32 [N]: CE(logits, y) - log(1.0001 - max_{k != y} p_k + 1e-12)."""
    probabilities = _probabilities(logits)
    others = tf.where(_true_class_mask(labels, probabilities), -1.0, probabilities)
    best_wrong = tf.reduce_max(others, axis=-1)
    return (losses.cross_entropy(labels, logits, reduction="none")
            - tf.math.log(BOOST_OFFSET - best_wrong + LOG_OFFSET))


def misclassification_weight(labels: tf.Tensor, clean_logits: tf.Tensor) -> tf.Tensor:
    """float32 [N]: 1.0000001 - p_y(clean), MART's weight of each example's KL."""
    probabilities = _probabilities(clean_logits)
    true_probability = tf.reduce_sum(
        tf.where(_true_class_mask(labels, probabilities), probabilities, 0.0), axis=-1)
    return WEIGHT_OFFSET - true_probability


@dataclasses.dataclass(frozen=True)
class BoostedCrossEntropyTerm(LossTerm):
    """mean_n BCE_n on the adversarial batch (see the module docstring)."""

    name: str = "boosted_ce"
    needs: frozenset = frozenset({ADVERSARIAL})

    def __call__(self, inputs: LossInputs) -> tf.Tensor:
        return tf.reduce_mean(boosted_cross_entropy(inputs.labels, inputs.logits(ADVERSARIAL)))


@dataclasses.dataclass(frozen=True)
class MisclassificationWeightedKLTerm(LossTerm):
    """mean_n KL(p(clean_n) || p(adv_n)) * (1 - p_y(clean_n))."""

    name: str = "weighted_kl"
    needs: frozenset = frozenset({CLEAN, ADVERSARIAL})

    def __call__(self, inputs: LossInputs) -> tf.Tensor:
        clean = inputs.logits(CLEAN)
        divergence = losses.kl_divergence(clean, inputs.logits(ADVERSARIAL), reduction="none")
        return tf.reduce_mean(divergence * misclassification_weight(inputs.labels, clean))


@dataclasses.dataclass(frozen=True)
class MART(Defense):
    """Boosted CE(adv) + mart_lambda * KL(clean || adv) weighted by 1 - p_y(clean).

    Attributes:
      mart_lambda: the weighted KL's weight (>= 0).
    """

    name = "mart"
    description = "boosted CE(adv) + lambda (1 - p_y(clean)) KL(clean || adv) (Wang et al.)"
    mart_lambda: float = DEFAULT_MART_LAMBDA

    def __post_init__(self):
        check_weight("mart_lambda", self.mart_lambda)
        super().__post_init__()

    def loss_terms(self):
        return (BoostedCrossEntropyTerm(), MisclassificationWeightedKLTerm(weight=self.mart_lambda))

    def training_attack(self, attack):
        return dataclasses.replace(attack, random_start=True, start_noise="gaussian")
