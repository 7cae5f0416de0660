"""Attack objectives: per-example scores an untargeted attack maximises (larger = more wrong).

One vocabulary for every attack that takes one (PGD's `objective`, APGD's
`loss`): "cross_entropy", "margin" (CW), "kl_to_clean" (TRADES) and "dlr"
(Croce & Hein's Difference of Logits Ratio; `targeted_dlr_loss` is APGD-T's).

An `Objective` maps (logits [N, K], labels [N]) to float32 [N]. One that
compares with the model's prediction on the clean images (`kl_to_clean`, the
TRADES attack) has `needs_clean_logits`; an attack binds it to its batch
before the loop (`objective.bind(model_fn, clean_images)`), which runs the
model once on the clean images and holds those logits fixed.

    get_objective("cross_entropy")(logits, labels)          # float32 [N]
    get_objective("kl_to_clean").bind(model_fn, images)(logits, labels)

Attacks take an objective by name (one of OBJECTIVES) or as an `Objective`.
"""

import dataclasses
from collections.abc import Callable

import tensorflow as tf

from tf_atalp import losses

DLR_OFFSET = 1e-12


def cross_entropy_objective(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Per-example cross-entropy, float32 [N]; larger means more wrong."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def margin_objective(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Per-example CW margin max_{j != y} z_j - z_y, float32 [N]; > 0 means wrong."""
    classes = tf.range(tf.shape(logits)[-1], dtype=labels.dtype)
    true_mask = tf.equal(classes[None, :], labels[:, None])
    true_logit = tf.reduce_max(tf.where(true_mask, logits, -float("inf")), axis=-1)
    best_other = tf.reduce_max(tf.where(true_mask, -float("inf"), logits), axis=-1)
    return best_other - true_logit


def _sorted_logits(logits: tf.Tensor) -> tf.Tensor:
    return tf.sort(logits, axis=-1, direction="DESCENDING")


def dlr_loss(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """float32 [N]: the untargeted DLR loss (larger = more wrong; > 0 means misclassified).

    Croce & Hein 2020's Difference of Logits Ratio, invariant to shifting and
    scaling the logits, with z sorted in decreasing order z_pi1 >= z_pi2 >= ...:
    DLR(z, y) = -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3 + 1e-12).
    Needs at least 3 classes.
    """
    logits = tf.cast(logits, tf.float32)
    if logits.shape[-1] is not None and logits.shape[-1] < 3:
        raise ValueError(f"DLR needs at least 3 classes. Received: {logits.shape[-1]}")
    ranked = _sorted_logits(logits)
    true = tf.gather(logits, labels, batch_dims=1)
    classes = tf.range(tf.shape(logits)[-1], dtype=labels.dtype)
    best_other = tf.reduce_max(tf.where(tf.equal(classes[None], labels[:, None]),
                                        -float("inf"), logits), axis=-1)
    return -(true - best_other) / (ranked[:, 0] - ranked[:, 2] + DLR_OFFSET)


def targeted_dlr_loss(logits: tf.Tensor, labels: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """float32 [N]: the targeted DLR loss towards `targets` (larger = closer to the target).

    -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12), z sorted as in
    `dlr_loss` (APGD-T's loss). Needs at least 4 classes.
    """
    logits = tf.cast(logits, tf.float32)
    if logits.shape[-1] is not None and logits.shape[-1] < 4:
        raise ValueError(f"Targeted DLR needs at least 4 classes. Received: {logits.shape[-1]}")
    ranked = _sorted_logits(logits)
    true = tf.gather(logits, labels, batch_dims=1)
    target = tf.gather(logits, targets, batch_dims=1)
    return -(true - target) / (ranked[:, 0] - (ranked[:, 2] + ranked[:, 3]) / 2 + DLR_OFFSET)


def kl_to_clean_objective(logits: tf.Tensor, labels: tf.Tensor,
                          clean_logits: tf.Tensor) -> tf.Tensor:
    """Per-example KL(p(clean) || p(x)), float32 [N] (the labels are not used).

    The TRADES attack (Zhang et al. 2019): move the prediction as far as
    possible from the clean one. It is 0 at the clean image, with a zero
    gradient there, which is why TRADES starts from clean + 0.001 * N(0, 1).
    """
    del labels
    return losses.kl_divergence(clean_logits, logits, reduction="none")


@dataclasses.dataclass(frozen=True)
class Objective:
    """An attack objective: `objective(logits, labels[, clean_logits]) -> float32 [N]`.

    Attributes:
      name: its name (in describe() and results files).
      function: (logits, labels) -> [N], or (logits, labels, clean_logits)
        -> [N] when `needs_clean_logits`.
      needs_clean_logits: whether it compares with the clean prediction.
    """

    name: str
    function: Callable[..., tf.Tensor]
    needs_clean_logits: bool = False

    def __call__(self, logits: tf.Tensor, labels: tf.Tensor,
                 clean_logits: tf.Tensor | None = None) -> tf.Tensor:
        if not self.needs_clean_logits:
            return self.function(logits, labels)
        if clean_logits is None:
            raise ValueError(f"The objective {self.name!r} needs the clean logits: bind it to "
                             "the batch first (`objective.bind(model_fn, clean_images)`).")
        return self.function(logits, labels, clean_logits)

    def bind(self, model_fn: Callable[[tf.Tensor], tf.Tensor],
             clean_images: tf.Tensor) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
        """The objective as (logits, labels) -> [N] for one batch.

        Runs `model_fn` once on the clean images if the objective needs their
        logits (held fixed: no gradient flows through them).
        """
        if not self.needs_clean_logits:
            return self
        clean_logits = tf.stop_gradient(model_fn(clean_images))
        return lambda logits, labels: self(logits, labels, clean_logits)


_REGISTERED = {objective.name: objective for objective in (
    Objective("cross_entropy", cross_entropy_objective),
    Objective("margin", margin_objective),
    Objective("kl_to_clean", kl_to_clean_objective, needs_clean_logits=True),
    Objective("dlr", dlr_loss),
)}
OBJECTIVES = tuple(_REGISTERED)


def get_objective(objective: "str | Objective") -> Objective:
    """The `Objective` called `objective` (one of OBJECTIVES), or `objective` itself."""
    if isinstance(objective, Objective):
        return objective
    if objective not in _REGISTERED:
        raise ValueError(
            f"`objective` must be one of {OBJECTIVES} or an Objective. "
            f"Received: objective={objective!r}")
    return _REGISTERED[objective]


def objective_name(objective: "str | Objective") -> str:
    """The registered name of `objective`; ValueError for an unregistered `Objective`."""
    resolved = get_objective(objective)
    if _REGISTERED.get(resolved.name) != resolved:
        raise ValueError(f"The objective {resolved.name!r} is not one of {OBJECTIVES}, so it "
                         "cannot be saved by name.")
    return resolved.name
