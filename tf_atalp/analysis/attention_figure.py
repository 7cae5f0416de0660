"""Figure 4 of the paper: each defense's attention maps on clean and adversarial images.

`attention_panels` computes, for each network, the attention map F(A) =
mean_c |A_c|^2 of every conv group and the predicted class on the clean
images and on their adversarial twins (the same adversarial images for all
networks, as the paper's gray-box figure: crafted once on a source).
`write_attention_summaries` puts them in TensorBoard; the PNG grid is drawn
by `tf_atalp.protocol.figures.plot_attention_grid`.
"""

from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from tf_atalp.analysis.key_regions import group_attention
from tf_atalp.attacks.model_fns import inference_logits

CLEAN = "clean"
ADVERSARIAL = "adversarial"


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


def write_attention_summaries(log_dir: str, panels: dict, clean, adversarial,
                              step: int = 0) -> None:
    """TensorBoard images: "images/<which>" and "attention/<name>/<group>/<which>"."""
    writer = tf.summary.create_file_writer(log_dir)
    count = int(np.shape(clean)[0])
    with writer.as_default(step=step):
        tf.summary.image(f"images/{CLEAN}", tf.convert_to_tensor(clean), max_outputs=count)
        tf.summary.image(f"images/{ADVERSARIAL}", tf.convert_to_tensor(adversarial),
                         max_outputs=count)
        for name, by_which in panels.items():
            for which, panel in by_which.items():
                for group, maps in panel["maps"].items():
                    tf.summary.image(f"attention/{name}/{group}/{which}",
                                     maps[..., None].astype(np.float32), max_outputs=count)
    writer.flush()
    writer.close()
