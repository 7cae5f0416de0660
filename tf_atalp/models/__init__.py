"""ResNet builders whose outputs are the logits and the four conv groups, and their layers.

`build_resnet` makes the functional ResNet v1 family (depth 10 to 152, with
optional denoising blocks and input noise); `build_applications_resnet` wraps
keras.applications ResNet50/101/152. Both go through `with_feature_outputs`
and return `{"logits": [N, K], "features": {GROUP_NAMES...}}` dicts (the
roles of `tf_atalp.models.outputs`) and take float images in [0, 1].
`fold_batchnorm` folds BatchNorm into the convolutions of a trained model
(the same inference function, faster to attack).
"""

from tf_atalp.models._validation import MIN_IMAGE_SIZE
from tf_atalp.models.applications import APPLICATIONS_DEPTHS, build_applications_resnet
from tf_atalp.models.denoising import NonLocalDenoising
from tf_atalp.models.folding import fold_batchnorm
from tf_atalp.models.heads import GROUP_NAMES
from tf_atalp.models.layers import ImageNormalization, PersistentGaussianNoise
from tf_atalp.models.outputs import (
    FEATURES, LOGITS, MEMBERS, ROLES, as_roles, features_of, logits_of, symbolic_logits,
    with_feature_outputs)
from tf_atalp.models.resnet import DEPTHS, STEMS, build_resnet

__all__ = [
    "APPLICATIONS_DEPTHS", "DEPTHS", "FEATURES", "GROUP_NAMES", "ImageNormalization", "LOGITS",
    "MEMBERS", "MIN_IMAGE_SIZE", "NonLocalDenoising", "PersistentGaussianNoise", "ROLES",
    "STEMS", "as_roles", "build_applications_resnet", "build_resnet", "features_of", "fold_batchnorm",
    "logits_of", "symbolic_logits", "with_feature_outputs",
]
