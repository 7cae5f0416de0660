"""Defenses whose prediction is random: `rat` and `randomization`.

`rat`, randomized adversarial training (Araujo, Meunier, Pinot, Negrevergne
2019, "Robust Neural Networks using Randomized Adversarial Training"): PGD
adversarial training of a network whose first layer adds random noise to the
image, at training and at inference (`tf_atalp.models.PersistentNoise`,
clipped to [0, 1]); PGD in training attacks the noisy network. Defaults,
and why: uniform noise, because the authors' later version of the method
("Advocating for Multiple Defense Strategies against Adversarial Examples",
Araujo et al. 2020) found "RAT-l_inf and a noise from uniform distribution
offers the best performances"; half-width 8/256 = 0.03125, the L-inf radius
the CPU configs train at (CIFAR's 8/255): the text we could read states no
scale (their 2019 code put Gaussian noise of scale 1 after the first
convolution, a different place), and noise as large as the perturbation it
has to drown is the smallest that can; larger noise costs clean accuracy.
`--noise_distribution` (gaussian, laplace, uniform) and `--noise_scale` set them.

`randomization` (Xie, Wang, Zhang, Ren, Yuille 2018, "Mitigating Adversarial
Effects Through Randomization"): at inference only, resize the image to
r x r, r uniform in [S, P), and zero-pad it to P x P at a random offset
(`tf_atalp.models.randomization`); P / S = 331 / 299 and nearest-neighbour
resizing as in their code (cihangxie/NIPS2017_adv_challenge_defense). The
network is trained as `ce_on` says: PGD training by default (their strongest
entry wrapped an adversarially trained network, ens-adv-Inception-ResNet-v2),
`--ce_on=clean` for a plain network as in their first experiments.
"""

import dataclasses

import keras

from tf_atalp.defenses.base import Defense
from tf_atalp.defenses.terms import ADVERSARIAL, CLEAN, CrossEntropyTerm
from tf_atalp.models.layers import NOISE_DISTRIBUTIONS
from tf_atalp.models.randomization import DEFAULT_SIZE_RATIO, INTERPOLATIONS, randomized_model
from tf_atalp.validation import check

DEFAULT_NOISE_DISTRIBUTION = "uniform"
DEFAULT_NOISE_SCALE = 8 / 256


@dataclasses.dataclass(frozen=True)
class RandomizedAdversarialTraining(Defense):
    """PGD training of a network with input noise at training and inference (RAT).

    Attributes:
      noise_distribution: one of NOISE_DISTRIBUTIONS.
      noise_scale: pixel units (> 0): stddev (gaussian), scale b (laplace) or
        half-width (uniform).
      ce_on: where the cross-entropy is taken (adversarial, clean, mixed).
    """

    name = "rat"
    description = "PGD training with random input noise at training and inference (Araujo et al.)"
    noise_distribution: str = DEFAULT_NOISE_DISTRIBUTION
    noise_scale: float = DEFAULT_NOISE_SCALE
    ce_on: str = ADVERSARIAL

    def __post_init__(self):
        check(self.noise_distribution in NOISE_DISTRIBUTIONS,
              f"`noise_distribution` must be one of {NOISE_DISTRIBUTIONS}. "
              f"Received: noise_distribution={self.noise_distribution!r}")
        check(0 < self.noise_scale <= 1,
              f"`noise_scale` must be in (0, 1]. Received: noise_scale={self.noise_scale}")
        super().__post_init__()

    def loss_terms(self):
        return (CrossEntropyTerm(on=self.ce_on),)

    def model_options(self) -> dict:
        return {"input_noise_scale": self.noise_scale,
                "input_noise_distribution": self.noise_distribution}

    def randomization(self) -> str:
        return (f"{self.noise_distribution} pixel noise of scale {self.noise_scale:g} is added "
                "to the input (then clipped to [0, 1]) on every call")


@dataclasses.dataclass(frozen=True)
class Randomization(Defense):
    """Random resizing and zero-padding at inference around a trained network (Xie et al.).

    Attributes:
      size_ratio: P / S, the padded size over the image size (> 1).
      interpolation: "nearest" (Xie et al.) or "bilinear".
      ce_on: how the network is trained: "adversarial" (PGD training, the
        default), "clean" (plain training) or "mixed".
    """

    name = "randomization"
    description = "random resize and pad at inference (Xie et al.), around a trained network"
    size_ratio: float = DEFAULT_SIZE_RATIO
    interpolation: str = "nearest"
    ce_on: str = ADVERSARIAL

    def __post_init__(self):
        check(self.size_ratio > 1,
              f"`size_ratio` must be > 1. Received: size_ratio={self.size_ratio}")
        check(self.interpolation in INTERPOLATIONS,
              f"`interpolation` must be one of {INTERPOLATIONS}. "
              f"Received: interpolation={self.interpolation!r}")
        super().__post_init__()

    @property
    def adversarial_training(self) -> bool:
        return self.ce_on != CLEAN

    def loss_terms(self):
        return (CrossEntropyTerm(on=self.ce_on),)

    def inference_model(self, network: keras.Model) -> keras.Model:
        return randomized_model(network, self.size_ratio, self.interpolation)

    def randomization(self) -> str:
        return (f"the S x S image is resized ({self.interpolation}) to r x r, r uniform in "
                f"[S, P), P = {self.size_ratio:.4g} S, and zero-padded to P x P at a random "
                "offset, one draw per batch")
