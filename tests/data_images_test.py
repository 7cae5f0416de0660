"""Tests of tf_atalp.data.images: RGB conversion, resizing, [0, 1] floats, augmentation."""

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tf_atalp.data import images

SIZE = 32


def random_image(seed=0, size=SIZE):
    return np.random.default_rng(seed).uniform(size=(size, size, 3)).astype(np.float32)


def crops_of_padded(image, pad):
    """Every S x S crop of the reflect-padded image, and of its mirror image."""
    size = image.shape[0]
    padded = np.pad(image, [(pad, pad), (pad, pad), (0, 0)], mode="reflect")
    for top in range(2 * pad + 1):
        for left in range(2 * pad + 1):
            crop = padded[top:top + size, left:left + size]
            yield crop
            yield crop[:, ::-1]


class ImagesTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.parameters(1, 3, 4)
    def test_to_rgb_gives_three_channels(self, channels):
        image = np.arange(2 * 2 * channels, dtype=np.uint8).reshape(2, 2, channels)
        rgb = images.to_rgb(tf.constant(image)).numpy()
        self.assertEqual(rgb.shape, (2, 2, 3))
        if channels == 1:
            self.assertAllEqual(rgb, np.repeat(image, 3, axis=-1))
        else:
            self.assertAllEqual(rgb, image[..., :3])

    def test_to_rgb_rejects_other_channels_and_dtypes(self):
        with self.assertRaisesRegex(ValueError, "Received: channels=2"):
            images.to_rgb(tf.zeros([2, 2, 2], tf.uint8))
        with self.assertRaisesRegex(ValueError, "Received: dtype=float32"):
            images.to_rgb(tf.zeros([2, 2, 3]))

    def test_resize_uint8_keeps_a_constant_image(self):
        image = tf.fill([50, 70, 3], tf.constant(200, tf.uint8))
        resized = images.resize_uint8(image, SIZE)
        self.assertEqual(resized.dtype, tf.uint8)
        self.assertAllEqual(resized, np.full([SIZE, SIZE, 3], 200, np.uint8))

    def test_keep_aspect_crops_the_centre_and_squash_mixes_the_whole(self):
        # Three 32-pixel-wide vertical stripes, red | green | blue, 32 high: the short side
        # is already 32, so keep_aspect crops the green middle; squash averages all three.
        stripes = np.concatenate([np.broadcast_to(np.array(c, np.uint8), (32, 32, 3))
                                  for c in ([255, 0, 0], [0, 255, 0], [0, 0, 255])], axis=1)
        kept = images.fit_image(tf.constant(stripes), 32, "keep_aspect", training=False)
        self.assertEqual(kept.shape, (32, 32, 3))
        self.assertAllEqual(kept.numpy().reshape(-1, 3).mean(axis=0), [0, 255, 0])
        squashed = images.fit_image(tf.constant(stripes), 32, "squash", training=False)
        self.assertAllClose(squashed.numpy().reshape(-1, 3).mean(axis=0), [85, 85, 85], atol=2)

    def test_keep_aspect_in_training_resizes_the_short_side_only(self):
        image = tf.zeros([60, 150, 3], tf.uint8)
        self.assertEqual(images.fit_image(image, 40, "keep_aspect", training=True).shape,
                         (40, 100, 3))
        self.assertEqual(images.random_crop(tf.zeros([40, 100, 3]), 40, [1, 2]).shape,
                         (40, 40, 3))
        with self.assertRaisesRegex(ValueError, "`resize` must be one of"):
            images.fit_image(image, 40, "stretch", training=True)

    def test_to_unit_float(self):
        as_float = images.to_unit_float(tf.constant([0, 51, 255], tf.uint8))
        self.assertAllClose(as_float, [0.0, 0.2, 1.0])
        self.assertEqual(as_float.dtype, tf.float32)
        self.assertAllEqual(images.to_unit_float(tf.constant([0.5])), [0.5])

    def test_augment_is_a_crop_of_the_padded_image_maybe_flipped(self):
        image = random_image()
        for seed in range(4):
            augmented = images.augment(tf.constant(image), tf.constant([seed, 7])).numpy()
            self.assertEqual(augmented.shape, image.shape)
            self.assertTrue(any(np.array_equal(augmented, c)
                                for c in crops_of_padded(image, SIZE // 8)))

    def test_augment_is_deterministic_in_the_seed(self):
        image = tf.constant(random_image())
        first = images.augment(image, tf.constant([1, 2]))
        self.assertAllEqual(first, images.augment(image, tf.constant([1, 2])))
        outputs = [images.augment(image, tf.constant([s, 0])).numpy() for s in range(8)]
        self.assertGreater(len({o.tobytes() for o in outputs}), 1)


if __name__ == "__main__":
    tf.test.main()
