"""AWP: adversarial weight perturbation (Wu, Xia, Wang 2020, "Adversarial Weight
Perturbation Helps Robust Generalization"), a wrapper around any adversarially
trained defense.

Before each update, train_step perturbs the network's weights towards a
higher value of the defense's own adversarial loss L (on the batch's clean
and adversarial examples), one ascent step of relative size gamma per layer:

    v_l = gamma * ||w_l|| * g_l / ||g_l||,   g_l = dL/dw_l,

for each multi-dimensional weight (convolution and dense kernels; biases and
BatchNorm parameters are not perturbed), takes the update's gradient at
w + v, and removes v after the update (the weights end at w - the update,
exactly w when the update is 0). The pass that computes g runs the network
in training mode, as the authors' proxy model does, and leaves the
BatchNorm statistics as they were (the authors compute it on a copy of the
model "which does not affect the statistics of BN").

    get_defense("at_alp", awp_gamma=0.005)      # "at_alp+awp"
    train_main.py --defense=at_alp --awp_gamma=0.005

Defaults, from the authors' code (csdongxian/AWP): gamma = 5e-3
(`trades_AWP/train_trades_cifar.py`, `--awp-gamma`; `AT_AWP/train_cifar10.py`
uses 1e-2 for PGD training), one ascent step, the per-layer rescaling and
EPS = 1e-20 from `utils_awp.py` (`diff_in_weights`: weights with more than
one dimension; the proxy's SGD learning rate cancels in the rescaling). No
warm-up (AT_AWP's `--awp-warmup` default 0; TRADES-AWP waits 10 epochs "for
accelerating"). Not for free_at, which crafts its examples in the same pass
as the update.
"""

import dataclasses

import keras
import tensorflow as tf

from tf_atalp.defenses.base import Defense

DEFAULT_AWP_GAMMA = 5e-3
EPS = 1e-20  # utils_awp.py


def perturbed_weights(variables) -> list:
    """The variables AWP perturbs: those with more than one dimension (kernels)."""
    return [variable for variable in variables if len(variable.shape) > 1]


def relative_perturbation(weights, gradients, gamma: float) -> list[tf.Tensor]:
    """gamma * ||w|| * g / (||g|| + EPS) per weight (0 where g is None or not finite)."""
    perturbations = []
    for weight, gradient in zip(weights, gradients):
        weight = tf.convert_to_tensor(weight)
        if gradient is None:
            perturbations.append(tf.zeros_like(weight))
            continue
        gradient = tf.cast(gradient, weight.dtype)
        gradient_norm = tf.norm(gradient)
        step = gamma * tf.norm(weight) / (gradient_norm + EPS) * gradient
        perturbations.append(tf.where(tf.math.is_finite(gradient_norm), step,
                                      tf.zeros_like(weight)))
    return perturbations


@dataclasses.dataclass(frozen=True)
class AdversarialWeightPerturbation(Defense):
    """`defense` trained with AWP of relative size `gamma` (see the module docstring).

    Attributes:
      defense: the wrapped defense (adversarially trained, not free_at).
      gamma: the perturbation's size relative to each layer's weight norm (> 0).
    Its name is the wrapped defense's plus "+awp"; everything but the weight
    perturbation is the wrapped defense's.
    """

    defense: Defense = None
    gamma: float = DEFAULT_AWP_GAMMA

    def __post_init__(self):
        if not isinstance(self.defense, Defense):
            raise ValueError(f"`defense` must be a Defense. Received: defense={self.defense!r}")
        if isinstance(self.defense, AdversarialWeightPerturbation):
            raise ValueError(f"{self.defense.name!r} already has AWP.")
        if not self.defense.adversarial_training:
            raise ValueError(f"AWP needs an adversarially trained defense; {self.defense.name!r} "
                             "trains on clean images.")
        if self.defense.free_replays():
            raise ValueError(f"AWP does not apply to {self.defense.name!r}: it crafts its "
                             "examples in the same pass as the update.")
        if not 0 < self.gamma <= 1:
            raise ValueError(f"`awp_gamma` must be in (0, 1]. Received: awp_gamma={self.gamma}")
        super().__post_init__()

    @property
    def name(self) -> str:
        return f"{self.defense.name}+awp"

    @property
    def description(self) -> str:
        return f"{self.defense.description}, with adversarial weight perturbation (Wu et al.)"

    @property
    def adversarial_training(self) -> bool:
        return True

    def loss_terms(self):
        return self.defense.loss_terms()

    def model_options(self) -> dict:
        return self.defense.model_options()

    def inference_model(self, network: keras.Model) -> keras.Model:
        return self.defense.inference_model(network)

    def randomization(self) -> str | None:
        return self.defense.randomization()

    def training_attack(self, attack):
        return self.defense.training_attack(attack)

    def weight_perturbation(self) -> float:
        return self.gamma

    def epochs_to_run(self, epochs: int) -> int:
        return self.defense.epochs_to_run(epochs)

    def watches_overfitting(self) -> bool:
        return self.defense.watches_overfitting()

    def get_config(self) -> dict:
        """The wrapped defense's hyperparameters and `awp_gamma` (its registry form)."""
        return {**self.defense.get_config(), "awp_gamma": self.gamma}

    @classmethod
    def from_config(cls, config: dict) -> "AdversarialWeightPerturbation":
        raise ValueError("AWP wraps a defense named in its config: rebuild it with "
                         "`defense_from_config({'name': ..., 'awp_gamma': ...})`.")


def with_weight_perturbation(defense: Defense, gamma: float) -> Defense:
    """`defense` with AWP of relative size `gamma`, or `defense` itself when gamma == 0."""
    if not gamma >= 0:
        raise ValueError(f"`awp_gamma` must be >= 0 (0: off). Received: awp_gamma={gamma}")
    return AdversarialWeightPerturbation(defense, gamma) if gamma else defense
