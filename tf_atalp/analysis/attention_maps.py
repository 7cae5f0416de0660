"""Attention maps of a network's conv groups: the tensors behind Figure 4 and Table 2.

`group_attention` takes the attention map F(A) = mean_c |A_c|^2 of every
feature output; `attention_panels` computes, for each network, those maps
(scaled to [0, 1]) and the predicted class on clean images and on their
adversarial twins (Figure 4 uses the same adversarial images for all
networks, as the paper's gray-box figure: crafted once on a source).
"""

from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from tf_atalp.attacks.model_fns import inference_logits
from tf_atalp.losses import attention_map
from tf_atalp.models.outputs import features_of

CLEAN = "clean"
ADVERSARIAL = "adversarial"


def group_attention(network, images) -> dict[str, tf.Tensor]:
    """{group: float32 [N, h, w] attention map F(A)} of the network's feature outputs."""
    features = features_of(network(tf.convert_to_tensor(images, tf.float32), training=False))
    if not features:
        raise ValueError("The network has no feature outputs to take attention maps of.")
    return {name: attention_map(value) for name, value in features.items()}


def _unit_range(maps: np.ndarray) -> np.ndarray:
    """Each [h, w] map scaled to [0, 1] (min to 0, max to 1)."""
    low = maps.min(axis=(1, 2), keepdims=True)
    high = maps.max(axis=(1, 2), keepdims=True)
    return (maps - low) / np.maximum(high - low, 1e-12)


def attention_panels(networks: Mapping[str, object], clean, adversarial,
                     groups=None) -> dict:
    """{name: {"clean"|"adversarial": {"maps": {group: float [N, h, w] in [0, 1]},
                                        "predictions": int [N]}}}.

    Args:
      networks: {name: network with "features" outputs}.
      clean, adversarial: float [N, S, S, 3] in [0, 1].
      groups: the feature maps drawn (None: all of each network's, sorted).
    """
    panels = {}
    for name, network in networks.items():
        predict = inference_logits(network)
        panels[name] = {}
        for which, images in ((CLEAN, clean), (ADVERSARIAL, adversarial)):
            images = tf.convert_to_tensor(images, tf.float32)
            maps = group_attention(network, images)
            chosen = groups or sorted(maps)
            missing = [g for g in chosen if g not in maps]
            if missing:
                raise ValueError(f"{name!r} has no feature map {missing}. Its features: "
                                 f"{sorted(maps)}")
            panels[name][which] = {
                "maps": {g: _unit_range(maps[g].numpy()) for g in chosen},
                "predictions": tf.argmax(predict(images), axis=-1).numpy().astype(int)}
    return panels
