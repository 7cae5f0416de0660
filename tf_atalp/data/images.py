"""Per-image ops of the pipelines: decode, RGB, resize, [0, 1] floats, augmentation."""

import tensorflow as tf


def decode_image_file(path: tf.Tensor) -> tf.Tensor:
    """Reads and decodes an image file: uint8 [H, W, 3] (gray -> RGB; GIF: first frame)."""
    return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)


def to_rgb(image: tf.Tensor) -> tf.Tensor:
    """uint8 [H, W, C], static C in {1, 3, 4} -> uint8 [H, W, 3] (gray tiled, alpha dropped)."""
    channels = image.shape[-1]
    if image.dtype != tf.uint8:
        raise ValueError(f"Images must be uint8. Received: dtype={image.dtype.name}")
    if channels == 1:
        return tf.image.grayscale_to_rgb(image)
    if channels == 4:
        return image[..., :3]
    if channels != 3:
        raise ValueError(f"Images must have 1, 3 or 4 channels. Received: channels={channels}")
    return image


def resize_uint8(image: tf.Tensor, image_size: int) -> tf.Tensor:
    """uint8 [H, W, 3] -> uint8 [S, S, 3], S = `image_size`.

    Bilinear with antialiasing; the aspect ratio is not kept (no crop).
    """
    resized = tf.image.resize(image, [image_size, image_size], antialias=True)
    return tf.saturate_cast(tf.round(resized), tf.uint8)


def to_unit_float(image: tf.Tensor) -> tf.Tensor:
    """uint8 images -> float32 in [0, 1]; float32 images (already in [0, 1]) pass through."""
    if image.dtype == tf.uint8:
        return tf.cast(image, tf.float32) / 255.0
    return tf.cast(image, tf.float32)


def augment(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Pad-and-crop plus horizontal flip, deterministic in `seed`.

    Args:
        image: float32 [S, S, 3] in [0, 1], S static.
        seed: int32/int64 [2], a stateless-random seed.

    Returns:
        float32 [S, S, 3] in [0, 1]: a random S x S crop of the image
        reflect-padded by S // 8 on each side, flipped left-right with
        probability 1/2.
    """
    size = image.shape[0]
    pad = size // 8
    padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    cropped = tf.image.stateless_random_crop(padded, [size, size, 3], seed=crop_seed)
    return tf.image.stateless_random_flip_left_right(cropped, seed=flip_seed)
