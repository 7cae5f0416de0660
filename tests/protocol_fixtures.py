"""A tiny image folder, masks mirroring it, and model_dirs for the protocol tests."""

import os

import numpy as np
import tensorflow as tf

from tests.evaluation_fixtures import NUM_CLASSES, make_model_dir
from tf_atalp.model_dir import FLAGFILE

IMAGES_PER_CLASS = 10  # "folder" data: the last 20% of each class (2) are test images
PIXELS = 24


def write_image_folder(root: str, seed: int = 0) -> str:
    """<root>/images/class{k}/img{i}.png: NUM_CLASSES classes of noisy tinted squares."""
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, "images")
    for k in range(NUM_CLASSES):
        os.makedirs(os.path.join(folder, f"class{k}"), exist_ok=True)
        for i in range(IMAGES_PER_CLASS):
            pixels = rng.integers(0, 60, size=(PIXELS, PIXELS, 3))
            pixels[6:18, 6:18, k % 3] += 150
            tf.io.write_file(os.path.join(folder, f"class{k}", f"img{i:02d}.png"),
                             tf.io.encode_png(tf.constant(pixels, tf.uint8)))
    return folder


def write_masks(images_root: str, masks_root: str) -> None:
    """A mask per image (the central square is key), mirroring the image folder."""
    mask = np.zeros((PIXELS, PIXELS, 3), np.uint8)
    mask[6:18, 6:18] = 255
    for class_dir in os.listdir(images_root):
        os.makedirs(os.path.join(masks_root, class_dir), exist_ok=True)
        for name in os.listdir(os.path.join(images_root, class_dir)):
            tf.io.write_file(os.path.join(masks_root, class_dir, name),
                             tf.io.encode_png(tf.constant(mask)))


def make_protocol_model_dirs(root: str) -> dict[str, str]:
    """Targets (none, at_alp), a gray-box source (none, other seed), a black-box one (wider)
    and a same-defense one (at_alp, other seed)."""
    dirs = {"none": os.path.join(root, "target_none"),
            "at_alp": os.path.join(root, "target_at_alp"),
            "gray": os.path.join(root, "gray_source"),
            "black": os.path.join(root, "black_source"),
            "at_alp_copy": os.path.join(root, "at_alp_copy")}
    made = {"none": ("none", 0, 8), "at_alp": ("at_alp", 1, 8), "gray": ("none", 2, 8),
            "black": ("none", 3, 16), "at_alp_copy": ("at_alp", 4, 8)}
    for role, (defense, seed, width) in made.items():
        make_model_dir(dirs[role], defense=defense, seed=seed, width=width)
        with open(os.path.join(dirs[role], FLAGFILE), "w") as f:
            f.write(f"--defense={defense}\n--seed={seed}\n--width={width}\n")
    return dirs


def protocol_workspace(root: str) -> dict[str, str]:
    """The model_dirs of `make_protocol_model_dirs` and the image folder ("images") under root."""
    dirs = make_protocol_model_dirs(root)
    dirs["images"] = write_image_folder(root)
    return dirs
