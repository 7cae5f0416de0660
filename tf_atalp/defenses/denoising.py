"""`fd`: feature denoising (Xie et al. 2018, "Feature Denoising for Improving Adversarial
Robustness"): PGD adversarial training of a ResNet with a non-local denoising block
after each conv group.

Defaults, and where they come from (the paper and the authors' code,
facebookresearch/ImageNet-Adversarial-Training, `nets.py`, `ResNetDenoiseModel`):
- a block after every group (`GROUP_NAMES`, conv2_x..conv5_x): "we add 4
  denoising blocks to a ResNet: each is added after the last residual block
  of res2, res3, res4, and res5" (paper Sec. 6, quoted in that code);
- `denoise_mode="embedded_gaussian"`: softmax affinity of 1x1-conv
  embeddings, the code's `denoising(..., embed=True, softmax=True)`;
  "dot_product" and "gaussian" (no embedding) are the alternatives;
- each block is `x + BN(Conv1x1(nonlocal_means(x)))` with the BN scale
  initialised to zero, so a new block starts as the identity (the paper's
  residual form; see `tf_atalp.models.NonLocalDenoising`);
- cross-entropy on the PGD examples only (Madry's objective, which the paper
  trains with).
"""

import dataclasses

from tf_atalp.defenses.base import Defense
from tf_atalp.defenses.terms import ADVERSARIAL, CrossEntropyTerm
from tf_atalp.models.denoising import NONLOCAL_MODES
from tf_atalp.models.heads import GROUP_NAMES
from tf_atalp.validation import check


@dataclasses.dataclass(frozen=True)
class FeatureDenoising(Defense):
    """PGD training of a network with non-local denoising blocks (see the module docstring).

    Attributes:
      denoise_groups: the conv groups followed by a denoising block.
      denoise_mode: the block's affinity, one of NONLOCAL_MODES.
      ce_on: where the cross-entropy is taken ("adversarial", "clean", "mixed").
    """

    name = "fd"
    description = "PGD training with non-local denoising blocks after the conv groups (Xie et al.)"
    denoise_groups: tuple[str, ...] = GROUP_NAMES
    denoise_mode: str = "embedded_gaussian"
    ce_on: str = ADVERSARIAL

    def __post_init__(self):
        groups = tuple(self.denoise_groups)
        check(bool(groups) and set(groups) <= set(GROUP_NAMES),
              f"`denoise_groups` must be a non-empty subset of {GROUP_NAMES}. "
              f"Received: denoise_groups={list(groups)}")
        object.__setattr__(self, "denoise_groups", groups)
        check(self.denoise_mode in NONLOCAL_MODES,
              f"`denoise_mode` must be one of {NONLOCAL_MODES}. "
              f"Received: denoise_mode={self.denoise_mode!r}")
        super().__post_init__()

    def loss_terms(self):
        return (CrossEntropyTerm(on=self.ce_on),)

    def model_options(self) -> dict:
        return {"denoise_groups": self.denoise_groups,
                "denoise_kwargs": {"mode": self.denoise_mode}}
