"""`adp`: adaptive diversity promoting (Pang, Xu, Du, Chen, Zhu 2019, "Improving
Adversarial Robustness via Promoting Ensemble Diversity").

An ensemble of M members (`build_resnet(..., members=M)`) predicting with the
mean of their softmax outputs F = (1/M) sum_m f_m. Loss, per example, then
averaged over the batch:

    sum_m CE(f_m, y) - alpha * H(F) - beta * log det(G + det_offset * I)

H(F) = -sum_k F_k log(F_k + log_offset), the entropy of the ensemble
prediction; G = M M^T, M [M, K-1] the members' probabilities with the TRUE
class removed, each row L2-normalised, so log det G is large when the
members disagree about the wrong classes. Trained on clean images (ADP
without adversarial training, the method's main form).

Defaults, from the authors' code (P2333/Adaptive-Diversity-Promoting): M = 3
and alpha = 2, beta = 0.5 (the README's training command, ADP_{2,0.5}),
log_offset = 1e-20 and det_offset = 1e-6 (`utils.py`).
"""

import dataclasses

import tensorflow as tf

from tf_atalp import losses
from tf_atalp.defenses.base import Defense, check_weight
from tf_atalp.defenses.terms import CLEAN, LossInputs, LossTerm
from tf_atalp.models.outputs import MEMBERS, as_roles

DEFAULT_MEMBERS = 3
DEFAULT_ENTROPY_WEIGHT = 2.0
DEFAULT_LOG_DET_WEIGHT = 0.5
LOG_OFFSET = 1e-20
DET_OFFSET = 1e-6


def member_logits(outputs) -> list[tf.Tensor]:
    """The M members' logits [N, K] (sorted by name), from outputs holding the "members" role."""
    members = as_roles(outputs).get(MEMBERS)
    if not members:
        raise ValueError("ADP needs an ensemble: the model's outputs have no 'members' "
                         "(build it with `build_resnet(..., members=M)`, M >= 2).")
    return [tf.cast(members[name], tf.float32) for name in sorted(members)]


def member_probabilities(outputs) -> tf.Tensor:
    """float32 [M, N, K]: each member's softmax, from outputs holding the "members" role."""
    return tf.stack([tf.nn.softmax(logits, axis=-1) for logits in member_logits(outputs)],
                    axis=0)


def ensemble_entropy(probabilities: tf.Tensor, log_offset: float = LOG_OFFSET) -> tf.Tensor:
    """float32 [N]: H(mean_m probabilities[m]) for probabilities [M, N, K]."""
    mean = tf.reduce_mean(probabilities, axis=0)
    return -tf.reduce_sum(mean * tf.math.log(mean + log_offset), axis=-1)


def non_true_log_det(probabilities: tf.Tensor, labels: tf.Tensor,
                     det_offset: float = DET_OFFSET) -> tf.Tensor:
    """float32 [N]: log det(M M^T + det_offset I), M [M, K-1] the L2-normalised
    non-true-class probabilities of the members (probabilities [M, N, K])."""
    num_classes = tf.shape(probabilities)[-1]
    keep = tf.logical_not(tf.cast(tf.one_hot(labels, num_classes), tf.bool))  # [N, K]
    per_example = tf.transpose(probabilities, [1, 0, 2])  # [N, M, K]
    num_members = tf.shape(per_example)[1]
    mask = tf.broadcast_to(keep[:, None, :], tf.shape(per_example))
    others = tf.reshape(tf.boolean_mask(per_example, mask),
                        [-1, num_members, num_classes - 1])
    others = others / tf.norm(others, axis=-1, keepdims=True)
    gram = tf.matmul(others, others, transpose_b=True)
    return tf.linalg.logdet(gram + det_offset * tf.eye(num_members, dtype=gram.dtype))


@dataclasses.dataclass(frozen=True)
class EnsembleCrossEntropyTerm(LossTerm):
    """sum_m CE(f_m, y), mean over the batch, on the clean pass."""

    name: str = "members_ce"
    needs: frozenset = frozenset({CLEAN})

    def __call__(self, inputs: LossInputs) -> tf.Tensor:
        return tf.add_n([losses.cross_entropy(inputs.labels, logits)
                         for logits in member_logits(inputs.outputs(CLEAN))])


@dataclasses.dataclass(frozen=True)
class NegativeEnsembleEntropyTerm(LossTerm):
    """-H(F), mean over the batch (weighted by alpha: the loss rewards entropy)."""

    name: str = "negative_entropy"
    needs: frozenset = frozenset({CLEAN})

    def __call__(self, inputs: LossInputs) -> tf.Tensor:
        return -tf.reduce_mean(ensemble_entropy(member_probabilities(inputs.outputs(CLEAN))))


@dataclasses.dataclass(frozen=True)
class NegativeLogDetTerm(LossTerm):
    """-log det(G + det_offset I), mean over the batch (weighted by beta)."""

    name: str = "negative_log_det"
    needs: frozenset = frozenset({CLEAN})

    def __call__(self, inputs: LossInputs) -> tf.Tensor:
        probabilities = member_probabilities(inputs.outputs(CLEAN))
        return -tf.reduce_mean(non_true_log_det(probabilities, tf.cast(inputs.labels, tf.int32)))


@dataclasses.dataclass(frozen=True)
class AdaptiveDiversityPromoting(Defense):
    """An ensemble trained with the ADP regularizer (see the module docstring).

    Attributes:
      members: M >= 2 ensemble members.
      entropy_weight: alpha, the weight of the ensemble entropy (>= 0).
      log_det_weight: beta, the weight of the log-determinant (>= 0).
    """

    name = "adp"
    description = "ensemble with adaptive diversity promoting regularizer (Pang et al.)"
    adversarial_training = False
    members: int = DEFAULT_MEMBERS
    entropy_weight: float = DEFAULT_ENTROPY_WEIGHT
    log_det_weight: float = DEFAULT_LOG_DET_WEIGHT

    def __post_init__(self):
        if isinstance(self.members, bool) or not isinstance(self.members, int) \
                or self.members < 2:
            raise ValueError(f"`members` must be an int >= 2. Received: members={self.members!r}")
        check_weight("entropy_weight", self.entropy_weight)
        check_weight("log_det_weight", self.log_det_weight)
        super().__post_init__()

    def loss_terms(self):
        terms = [EnsembleCrossEntropyTerm()]
        if self.entropy_weight:
            terms.append(NegativeEnsembleEntropyTerm(weight=self.entropy_weight))
        if self.log_det_weight:
            terms.append(NegativeLogDetTerm(weight=self.log_det_weight))
        return tuple(terms)

    def model_options(self) -> dict:
        return {"members": self.members}
