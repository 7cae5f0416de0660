"""Tests of tf_atalp.analysis: key-region activation (Table 2), attention maps, loss landscape."""

import os

import keras
import numpy as np
import tensorflow as tf

from tests.attack_fixtures import linear_model
from tests.evaluation_fixtures import temporary_folder
from tf_atalp.analysis.attention_maps import attention_panels, group_attention
from tf_atalp.analysis.key_regions import (
    KeyRegionTally, key_region_activation, load_masks, mask_path, max_normalised)
from tf_atalp.analysis.loss_landscape import loss_landscape

SIZE = 16


def image_as_features_model():
    """Logits from the mean pixel; its one feature map is the image itself (attention = mean x^2)."""
    inputs = keras.Input((SIZE, SIZE, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    logits = keras.layers.Dense(2)(pooled)
    features = keras.layers.Identity(name="image")(inputs)
    return keras.Model(inputs, {"logits": logits, "features": {"conv2_x": features}})


def square_images(n=3):
    """Dark images, each with a bright 6x6 square at a different place; and the squares."""
    images = np.full((n, SIZE, SIZE, 3), 0.0, np.float32)
    masks = np.zeros((n, SIZE, SIZE), bool)
    for i in range(n):
        top = 2 + 3 * i
        images[i, top:top + 6, 4:10] = 0.9
        masks[i, top:top + 6, 4:10] = True
    return images, masks


class KeyRegionsTest(tf.test.TestCase):

    def test_activation_is_one_on_the_bright_square_and_zero_off_it(self):
        images, masks = square_images()
        model = image_as_features_model()
        tally = KeyRegionTally()
        tally.add("clean", model, images, masks)
        tally.add("background", model, images, ~masks)
        means = tally.means()
        # Attention = 0.81 inside the square, 0 outside; divided by its maximum: 1 and 0.
        self.assertAllClose(means["clean"]["conv2_x"], 1.0)
        self.assertAllClose(means["background"]["conv2_x"], 0.0)
        self.assertAllClose(means["clean"]["mean"], 1.0)

    def test_half_covered_mask_gives_the_covered_share(self):
        images, masks = square_images(1)
        wide = masks.copy()
        wide[0, 2:8, 10:16] = True  # as many dark pixels as bright ones
        maps = tf.reduce_mean(tf.square(images), axis=-1)
        self.assertAllClose(key_region_activation(maps, wide), [0.5])

    def test_maps_are_upsampled_and_scaled_to_a_maximum_of_one(self):
        maps = tf.constant(np.arange(16, dtype=np.float32).reshape(1, 4, 4) + 1)
        normalised = max_normalised(maps, SIZE).numpy()
        self.assertEqual(normalised.shape, (1, SIZE, SIZE))
        self.assertAllClose(normalised.max(), 1.0)
        self.assertGreaterEqual(normalised.min(), 0.0)

    def test_empty_or_misshapen_masks_are_refused(self):
        maps = tf.ones([2, 4, 4])
        with self.assertRaisesRegex(ValueError, "at least one key pixel"):
            key_region_activation(maps, np.zeros((2, SIZE, SIZE), bool))
        with self.assertRaisesRegex(ValueError, "must be"):
            key_region_activation(maps, np.ones((3, SIZE, SIZE), bool))

    def test_masks_are_read_from_a_folder_mirroring_the_images(self):
        root = temporary_folder(self)
        images_root, masks_root = os.path.join(root, "images"), os.path.join(root, "masks")
        _, masks = square_images(2)
        paths = []
        for i, mask in enumerate(masks):
            path = os.path.join(images_root, "cls", f"img{i}.jpg")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tf.io.write_file(path, tf.io.encode_jpeg(tf.zeros([SIZE, SIZE, 3], tf.uint8)))
            os.makedirs(os.path.join(masks_root, "cls"), exist_ok=True)
            pixels = np.repeat(mask[..., None].astype(np.uint8) * 255, 3, axis=-1)
            tf.io.write_file(os.path.join(masks_root, "cls", f"img{i}.png"),
                             tf.io.encode_png(pixels))
            paths.append(path)
        loaded = load_masks(paths, images_root, masks_root, SIZE)
        self.assertAllEqual(loaded, masks)
        self.assertEqual(mask_path(paths[0], images_root, masks_root),
                         os.path.join(masks_root, "cls", "img0.png"))
        os.remove(os.path.join(masks_root, "cls", "img1.png"))
        with self.assertRaisesRegex(FileNotFoundError, "img1"):
            load_masks(paths, images_root, masks_root, SIZE)


class AttentionPanelsTest(tf.test.TestCase):

    def test_group_attention_is_the_mean_square_over_channels(self):
        images, _ = square_images()
        maps = group_attention(image_as_features_model(), images)
        self.assertEqual(list(maps), ["conv2_x"])
        self.assertAllClose(maps["conv2_x"], np.mean(images ** 2, axis=-1))

    def test_panels_hold_unit_range_maps_and_predictions(self):
        images, _ = square_images()
        adversarial = np.clip(images + 0.05, 0, 1)
        model = image_as_features_model()
        panels = attention_panels({"m": model}, images, adversarial)
        for which in ("clean", "adversarial"):
            maps = panels["m"][which]["maps"]["conv2_x"]
            self.assertEqual(maps.shape, (3, SIZE, SIZE))
            self.assertAllClose(maps.max(axis=(1, 2)), np.ones(3))
            self.assertAllClose(maps.min(axis=(1, 2)), np.zeros(3))
            self.assertEqual(panels["m"][which]["predictions"].shape, (3,))
        with self.assertRaisesRegex(ValueError, "no feature map"):
            attention_panels({"m": model}, images, adversarial, groups=["conv9_x"])


class LossLandscapeTest(tf.test.TestCase):

    def test_centre_is_the_loss_at_the_image_and_it_rises_along_the_gradient_sign(self):
        model, _, _ = linear_model()
        rng = np.random.default_rng(0)
        image = rng.uniform(0.4, 0.6, size=model.inputs[0].shape[1:]).astype(np.float32)
        label = 0
        surface = loss_landscape(model, image, label, radius=0.05, grid=5, seed=1)
        loss = np.asarray(surface["loss"])
        self.assertEqual(loss.shape, (5, 5))
        logits = model(image[None])
        logits = logits["logits"] if isinstance(logits, dict) else logits
        expected = tf.nn.sparse_softmax_cross_entropy_with_logits([label], logits)[0]
        self.assertAllClose(loss[2, 2], expected, rtol=1e-5)
        # A linear model's loss is convex along a line and rises at 0 along sign(grad):
        # it keeps rising for a > 0 (no clipping: the image stays inside [0.35, 0.65]).
        self.assertTrue(np.all(np.diff(loss[2:, 2]) > 0))
        self.assertAllClose(surface["a"], np.linspace(-0.05, 0.05, 5))
        with self.assertRaisesRegex(ValueError, "radius"):
            loss_landscape(model, image, label, radius=0.0)
