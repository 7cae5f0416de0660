"""Table 2 of the paper: how much of a network's attention falls on an image's key regions.

For each image a binary mask marks its key (discriminative) regions; masks
live in a folder that mirrors the image folder (`<masks_dir>/<class>/<name>`
with any image extension; nonzero pixels are key). The activation of a
conv group on an image is its attention map F(A) = mean_c |A_c|^2 ([h, w],
`attention_maps.group_attention`), upsampled bilinearly to the image size
S x S and NORMALISED BY ITS MAXIMUM over the image (so 1 is the most active
position, 0 none). The key-region
activation is the mean of that normalised map over the mask's pixels: 1 when
the network is most active everywhere inside the key regions. Table 2
averages it over the test images (and over the conv groups for one number).
"""

import os

import numpy as np
import tensorflow as tf

from tf_atalp.analysis.attention_maps import group_attention
from tf_atalp.data.images import decode_image_file, fit_image
from tf_atalp.data.listing import IMAGE_EXTENSIONS


def mask_path(image_path: str, images_root: str, masks_root: str) -> str:
    """The mask file of `image_path`: the same relative path under `masks_root`, any extension.

    Raises FileNotFoundError when no such file exists.
    """
    relative = os.path.relpath(image_path, images_root)
    stem = os.path.splitext(os.path.join(masks_root, relative))[0]
    for extension in (".png",) + IMAGE_EXTENSIONS:
        for candidate in (stem + extension, stem + extension.upper()):
            if os.path.isfile(candidate):
                return candidate
    raise FileNotFoundError(f"No mask for {image_path!r}: expected {stem}.png (or another "
                            f"image extension) under {masks_root!r}")


def load_masks(image_paths, images_root: str, masks_root: str, image_size: int,
               resize: str = "squash") -> np.ndarray:
    """bool [N, S, S]: the key-region mask of each image, fitted to S as the images are.

    Raises FileNotFoundError naming the first missing mask and ValueError for a
    mask with no key pixel.
    """
    paths = [mask_path(p, images_root, masks_root) for p in image_paths]
    masks = []
    for path in paths:
        fitted = fit_image(decode_image_file(tf.constant(path)), image_size, resize, False)
        mask = np.asarray(fitted).max(axis=-1) > 127
        if not mask.any():
            raise ValueError(f"The mask {path!r} marks no key pixel (all pixels <= 127).")
        masks.append(mask)
    return np.stack(masks)


def max_normalised(maps: tf.Tensor, image_size: int) -> tf.Tensor:
    """[N, h, w] -> [N, S, S]: upsampled bilinearly, each map divided by its maximum."""
    upsampled = tf.image.resize(maps[..., None], [image_size, image_size], method="bilinear")
    upsampled = tf.maximum(upsampled[..., 0], 0.0)
    peak = tf.reduce_max(upsampled, axis=[1, 2], keepdims=True)
    return upsampled / tf.maximum(peak, 1e-12)


def key_region_activation(maps: tf.Tensor, masks: np.ndarray) -> np.ndarray:
    """float [N]: the mean max-normalised attention inside each image's mask.

    Args:
      maps: [N, h, w] attention maps.
      masks: bool [N, S, S] key regions (at least one pixel each).
    """
    masks = np.asarray(masks, bool)
    if masks.ndim != 3 or masks.shape[0] != maps.shape[0] or masks.shape[1] != masks.shape[2]:
        raise ValueError(f"`masks` must be [N, S, S] with N = {maps.shape[0]}. Received: "
                         f"{masks.shape}")
    inside = masks.sum(axis=(1, 2))
    if (inside == 0).any():
        raise ValueError("Every mask must mark at least one key pixel.")
    normalised = max_normalised(tf.convert_to_tensor(maps, tf.float32), masks.shape[1]).numpy()
    return (normalised * masks).sum(axis=(1, 2)) / inside


class KeyRegionTally:
    """Sums of key-region activation per (column, group) over batches; `means()` at the end."""

    def __init__(self):
        self.sums: dict[tuple[str, str], float] = {}
        self.counts: dict[tuple[str, str], int] = {}

    def add(self, column: str, network, images, masks: np.ndarray) -> None:
        """Adds the images' activations under `column` (e.g. "clean", "gray_box 0.25")."""
        for group, maps in group_attention(network, images).items():
            values = key_region_activation(maps, masks)
            key = (column, group)
            self.sums[key] = self.sums.get(key, 0.0) + float(values.sum())
            self.counts[key] = self.counts.get(key, 0) + len(values)

    def means(self) -> dict[str, dict[str, float]]:
        """{column: {group: mean, ..., "mean": mean over groups}}."""
        table: dict[str, dict[str, float]] = {}
        for (column, group), total in sorted(self.sums.items()):
            table.setdefault(column, {})[group] = total / self.counts[(column, group)]
        for row in table.values():
            row["mean"] = float(np.mean(list(row.values())))
        return table
