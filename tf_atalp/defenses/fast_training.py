"""Adversarial training at about the cost of clean training: `fast_at` and `free_at`.

`fast_at` (Wong, Rice, Kolter 2020, "Fast is better than free: Revisiting
adversarial training"): CE on one FGSM step of fgsm_step * epsilon (1.25
epsilon) from a uniform random start in the epsilon-ball, projected back
onto the ball and [0, 1] (the run's PGD with those settings and one
iteration). The paper trains it with a cyclic learning rate
(`--lr_schedule=cyclic`: linear from 0 to the peak at half the run, back to
0 at its end) and stops early on catastrophic overfitting: PGD accuracy on a
held-out batch collapsing from one epoch to the next, which
`tf_atalp.training.overfitting` detects and reports (on by default for
fast_at and free_at). `grad_align_lambda` > 0 adds GradAlign (Andriushchenko
& Flammarion 2020, "Understanding and Improving Fast Adversarial
Training"), lambda * (1 - mean_n cos(grad_x CE(x_n), grad_x CE(x_n + eta_n))),
eta uniform in the epsilon-ball, by double backprop: the regulariser that
prevents catastrophic overfitting (two more forward and backward passes per
step).

Defaults: fgsm_step = 1.25 (locuslab/fast_adversarial, CIFAR10/train_fgsm.py:
alpha = 10/255 at epsilon = 8/255, `--delta-init=random`); the cyclic
schedule is that script's `CyclicLR` (base 0, up for half the steps, down
for the other half); the overfitting test (a drop of more than 0.2 in PGD
accuracy on one batch from the previous epoch) is its `--early-stop`.
grad_align_lambda = 0 (plain Fast-AT); tml-epfl/understanding-fast-adv-training
(README) uses 0.2 at epsilon = 8/255, with eta unclipped and examples with a
zero gradient left out of the mean, as here. The authors run the FGSM step
with BatchNorm in training mode; train_step's attack runs in inference
mode unless `--attack_batchnorm_training`.

`free_at` (Shafahi, Najibi, Ghiasi, Xu, Dickerson, Studer, Davis, Taylor,
Goldstein 2019, "Adversarial Training for Free!"): each minibatch is trained
on `replays` = m times in a row; every replay is ONE forward and backward
pass whose weight gradient updates the network and whose input gradient
moves the perturbation, x_adv <- Proj(x_adv + epsilon * sign(grad_x)), for
the next replay. No attack is run, and the epochs are divided by m
(rounded up), so the run does the forward and backward passes of clean
training. Defaults: m = 8 and the step epsilon (ashafahi/free_adv_train:
`--replay_m` 8, the perturbation moved by epsilon * sign and clipped to
+-epsilon; the epochs divided by m, rounded up, as in
mahyarnajibi/FreeAdversarialTraining's `main_free.py`). One difference: the
perturbation starts at 0 for every minibatch; the authors carry it over
from the previous minibatch (a perturbation crafted for other images), which
would give the trainer state shaped like one replica's batch.
"""

import dataclasses
import math

import tensorflow as tf

from tf_atalp import losses
from tf_atalp.defenses.base import Defense, check_weight
from tf_atalp.defenses.terms import ADVERSARIAL, CrossEntropyTerm, LossInputs, LossTerm
from tf_atalp.models.outputs import logits_of

DEFAULT_FGSM_STEP = 1.25
DEFAULT_FREE_REPLAYS = 8
# The key folded into the step's seed for GradAlign's random points.
_GRAD_ALIGN_SEED_KEY = 7


def _input_gradient(network, images: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """d sum_n CE_n / d images, differentiable (double backprop) inside an outer tape."""
    with tf.GradientTape() as tape:
        tape.watch(images)
        total = losses.cross_entropy(labels, logits_of(network(images)), reduction="sum")
    return tape.gradient(total, images)


def gradient_misalignment(network, images: tf.Tensor, labels: tf.Tensor, epsilon: float,
                          seed=None) -> tf.Tensor:
    """float32 scalar: 1 - mean_n cos(grad_x CE(x_n), grad_x CE(x_n + eta_n)), eta ~ U(ball).

    Examples where either gradient is 0 are left out of the mean (0 if none
    is left). `seed`: None, or an int64 [2] stateless seed for eta.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    shape = tf.shape(images)
    eta = (tf.random.uniform(shape, -epsilon, epsilon) if seed is None
           else tf.random.stateless_uniform(shape, seed, -epsilon, epsilon))
    first = tf.reshape(_input_gradient(network, images, labels), [shape[0], -1])
    second = tf.reshape(_input_gradient(network, images + eta, labels), [shape[0], -1])
    norms = tf.norm(first, axis=-1) * tf.norm(second, axis=-1)
    kept = norms > 0
    cosines = tf.reduce_sum(first * second, axis=-1) / tf.where(kept, norms, 1.0)
    count = tf.reduce_sum(tf.cast(kept, tf.float32))
    mean_cosine = tf.reduce_sum(tf.where(kept, cosines, 0.0)) / tf.maximum(count, 1.0)
    return tf.where(count > 0, 1.0 - mean_cosine, 0.0)


@dataclasses.dataclass(frozen=True)
class GradAlignTerm(LossTerm):
    """GradAlign on the clean images, at the training attack's radius (runs the network)."""

    name: str = "grad_align"
    needs: frozenset = frozenset()

    def __call__(self, inputs: LossInputs) -> tf.Tensor:
        if inputs.images is None or inputs.network is None or inputs.epsilon is None:
            raise ValueError("GradAlign needs the images, the network and the attack's epsilon.")
        seed = (None if inputs.seed is None else
                tf.random.experimental.stateless_fold_in(inputs.seed, _GRAD_ALIGN_SEED_KEY))
        return gradient_misalignment(inputs.network, inputs.images, inputs.labels,
                                     inputs.epsilon, seed)


@dataclasses.dataclass(frozen=True)
class FastAdversarialTraining(Defense):
    """Fast-AT: CE on one FGSM step of fgsm_step * epsilon from a uniform random start.

    Attributes:
      fgsm_step: the step, as a multiple of epsilon (> 0; the authors' 1.25).
      grad_align_lambda: GradAlign's weight (>= 0; 0: off).
    """

    name = "fast_at"
    description = "one FGSM step of 1.25 epsilon from a random start (Wong et al.)"
    fgsm_step: float = DEFAULT_FGSM_STEP
    grad_align_lambda: float = 0.0

    def __post_init__(self):
        if not self.fgsm_step > 0:
            raise ValueError(f"`fgsm_step` must be > 0. Received: fgsm_step={self.fgsm_step}")
        check_weight("grad_align_lambda", self.grad_align_lambda)
        super().__post_init__()

    def loss_terms(self):
        terms = [CrossEntropyTerm(on=ADVERSARIAL)]
        if self.grad_align_lambda:
            terms.append(GradAlignTerm(weight=self.grad_align_lambda))
        return tuple(terms)

    def training_attack(self, attack):
        return dataclasses.replace(attack, iterations=1, random_start=True,
                                   start_noise="uniform",
                                   step_size=min(1.0, self.fgsm_step * attack.epsilon))

    def watches_overfitting(self) -> bool:
        return True


@dataclasses.dataclass(frozen=True)
class FreeAdversarialTraining(Defense):
    """Free-AT: each minibatch replayed m times, the perturbation carried across replays.

    Attributes:
      replays: m, the replays of each minibatch (>= 2); the run's epochs are
        divided by m, rounded up.
    """

    name = "free_at"
    description = "each minibatch replayed m times, one pass per replay (Shafahi et al.)"
    replays: int = DEFAULT_FREE_REPLAYS

    def __post_init__(self):
        if isinstance(self.replays, bool) or not isinstance(self.replays, int) \
                or self.replays < 2:
            raise ValueError("`replays` must be an int >= 2 (one replay would train on clean "
                             f"images only). Received: replays={self.replays!r}")
        super().__post_init__()

    def loss_terms(self):
        return (CrossEntropyTerm(on=ADVERSARIAL),)

    def free_replays(self) -> int:
        return self.replays

    def epochs_to_run(self, epochs: int) -> int:
        return math.ceil(epochs / self.replays)

    def watches_overfitting(self) -> bool:
        return True
