"""Writes small image folders (one sub-folder per class) for the data and training tests."""

import os

import numpy as np
import tensorflow as tf


def write_image_folder(root, counts, size=32):
    """Writes `counts[class]` random PNG images into `root/<class>/`, named 000.png, 001.png, ..."""
    rng = np.random.default_rng(0)
    for name, count in counts.items():
        os.makedirs(os.path.join(root, name))
        for index in range(count):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            tf.io.write_file(os.path.join(root, name, f"{index:03d}.png"),
                             tf.io.encode_png(pixels))
