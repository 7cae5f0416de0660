"""Per-image ops of the pipelines: decode, RGB, resize, [0, 1] floats, augmentation."""

import tensorflow as tf

# How an image becomes S x S: "squash" resizes it to S x S (the aspect ratio is lost);
# "keep_aspect" resizes its short side to S, then crops S x S (centre at evaluation,
# random in training).
RESIZE_MODES = ("squash", "keep_aspect")


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


def resize_short_side_uint8(image: tf.Tensor, image_size: int) -> tf.Tensor:
    """uint8 [H, W, 3] -> uint8 [h, w, 3] with min(h, w) = S and the aspect ratio kept."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = image_size / tf.reduce_min(shape)
    target = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), image_size)
    resized = tf.image.resize(image, target, antialias=True)
    return tf.saturate_cast(tf.round(resized), tf.uint8)


def center_crop(image: tf.Tensor, image_size: int) -> tf.Tensor:
    """[h, w, C] with h, w >= S -> its central [S, S, C]."""
    shape = tf.shape(image)
    top, left = (shape[0] - image_size) // 2, (shape[1] - image_size) // 2
    cropped = image[top:top + image_size, left:left + image_size]
    return tf.ensure_shape(cropped, [image_size, image_size, image.shape[-1]])


def random_crop(image: tf.Tensor, image_size: int, seed: tf.Tensor) -> tf.Tensor:
    """[h, w, C] with h, w >= S -> a random [S, S, C] window, deterministic in `seed` ([2])."""
    return tf.image.stateless_random_crop(image, [image_size, image_size, image.shape[-1]],
                                          seed=seed)


def fit_image(image: tf.Tensor, image_size: int, resize: str, training: bool) -> tf.Tensor:
    """uint8 [H, W, 3] -> what the pipeline caches: [S, S, 3], or for "keep_aspect" in
    training the short-side-resized image (cropped per epoch, see `random_crop`)."""
    if resize == "squash":
        return resize_uint8(image, image_size)
    if resize != "keep_aspect":
        raise ValueError(f"`resize` must be one of {RESIZE_MODES}. Received: resize={resize!r}")
    resized = resize_short_side_uint8(image, image_size)
    return resized if training else center_crop(resized, image_size)


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
