"""A learnable synthetic image-classification task, made in process.

Each class is an oriented sinusoidal grating (its own orientation and colour
tint) of amplitude `signal_amplitude` at a random phase, on a grey background
with Gaussian pixel noise. A small CNN learns it in a few hundred steps; the
grating survives an L-inf perturbation smaller than its amplitude, so a robust
classifier exists and adversarial training has something to find.
"""

import numpy as np


def make_synthetic_arrays(
        num_examples: int,
        image_size: int = 32,
        num_classes: int = 4,
        seed: int = 0,
        signal_amplitude: float = 0.25,
        noise_stddev: float = 0.08,
) -> tuple[np.ndarray, np.ndarray]:
    """Returns `(images, labels)`.

    Args:
        num_examples: number of images N.
        image_size: side S of the square images, in pixels.
        num_classes: number of classes K (2 to 16).
        seed: the numpy seed; equal seeds give equal arrays.
        signal_amplitude: peak amplitude of the class grating, pixel units.
        noise_stddev: standard deviation of the i.i.d. Gaussian noise, pixel units.

    Returns:
        images: float32 [N, S, S, 3] in [0, 1].
        labels: int32 [N] in [0, K), balanced (round-robin, then shuffled).
    """
    if num_examples < 1:
        raise ValueError(f"`num_examples` must be >= 1. Received: num_examples={num_examples}")
    if image_size < 8:
        raise ValueError(f"`image_size` must be >= 8. Received: image_size={image_size}")
    if not 2 <= num_classes <= 16:
        raise ValueError(f"`num_classes` must be in [2, 16]. Received: num_classes={num_classes}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num_examples) % num_classes).astype(np.int32)
    coords = np.arange(image_size, dtype=np.float32) / image_size
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    angles = np.pi * np.arange(num_classes) / num_classes  # one orientation per class
    frequency = 3.0  # cycles per image
    tints = 0.6 + 0.4 * np.stack(
            [np.cos(2 * np.pi * (np.arange(num_classes) / num_classes + k / 3)) for k in range(3)],
            axis=-1)  # [K, 3], each channel in [0.2, 1]
    phases = rng.uniform(0, 2 * np.pi, size=num_examples).astype(np.float32)
    angle = angles[labels][:, None, None]
    projection = xx[None] * np.cos(angle) + yy[None] * np.sin(angle)
    grating = np.sin(2 * np.pi * frequency * projection + phases[:, None, None])  # [N, S, S]
    images = 0.5 + signal_amplitude * grating[..., None] * tints[labels][:, None, None, :]
    images += rng.normal(0.0, noise_stddev, size=images.shape)
    return np.clip(images, 0.0, 1.0).astype(np.float32), labels
