"""ResNet builders whose outputs are the logits and the four conv groups, and their layers.

`build_resnet` makes the functional ResNet v1 family (depth 10 to 152, with
optional denoising blocks and input noise); `build_applications_resnet` wraps
keras.applications ResNet50/101/152. Both return `{"logits", *GROUP_NAMES}`
dicts and take float images in [0, 1].
"""

from tf_atalp.models.applications import build_applications_resnet
from tf_atalp.models.denoising import NonLocalDenoising
from tf_atalp.models.heads import GROUP_NAMES
from tf_atalp.models.layers import ImageNormalization, PersistentGaussianNoise
from tf_atalp.models.resnet import build_resnet

__all__ = [
    "GROUP_NAMES",
    "ImageNormalization",
    "NonLocalDenoising",
    "PersistentGaussianNoise",
    "build_applications_resnet",
    "build_resnet",
]
