"""Tests for tf_atalp.models.layers: ImageNormalization and PersistentGaussianNoise."""

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tf_atalp.models.layers import (
        IMAGENET_MEAN, IMAGENET_STD, ImageNormalization, PersistentGaussianNoise)


def _images(shape=(2, 8, 8, 3), seed=0):
    return np.random.default_rng(seed).uniform(size=shape).astype("float32")


class ImageNormalizationTest(tf.test.TestCase, parameterized.TestCase):

    def test_matches_hand_computation_with_imagenet_defaults(self):
        x = _images()
        expected = (x - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
        self.assertAllClose(ImageNormalization()(x), expected, atol=1e-6)

    def test_reverse_channels_flips_before_normalising(self):
        x = _images()
        layer = ImageNormalization(
                mean=(0.1, 0.2, 0.3), std=(0.5, 0.25, 2.0), reverse_channels=True)
        expected = (x[..., ::-1] - np.array([0.1, 0.2, 0.3])) / np.array([0.5, 0.25, 2.0])
        self.assertAllClose(layer(x), expected, atol=1e-6)

    def test_config_round_trip(self):
        layer = ImageNormalization(mean=(0.1, 0.2, 0.3), std=(1.0, 2.0, 3.0), reverse_channels=True)
        clone = ImageNormalization.from_config(layer.get_config())
        x = _images()
        self.assertAllClose(layer(x), clone(x))

    @parameterized.named_parameters(
            ("length_mismatch", dict(mean=(0.5, 0.5), std=(1.0, 1.0, 1.0)),
             "one value per channel"),
            ("zero_std", dict(std=(0.2, 0.0, 0.2)), "`std` values must all be > 0"))
    def test_bad_arguments_raise(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            ImageNormalization(**kwargs)

    def test_channel_mismatch_raises(self):
        with self.assertRaisesRegex(ValueError, "Expected inputs with 3 channels"):
            ImageNormalization()(np.zeros((1, 4, 4, 1), "float32"))


class PersistentGaussianNoiseTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.parameters(False, True, None)
    def test_noise_is_on_in_every_mode(self, training):
        x = np.full((4, 16, 16, 3), 0.5, "float32")
        y = PersistentGaussianNoise(0.1, seed=1)(x, training=training)
        self.assertNotAllClose(y, x)
        self.assertAllClose(np.std(y - x), 0.1, rtol=0.1)  # 3072 draws, none clipped at 5 sigma

    def test_noise_is_on_in_model_predict(self):
        inputs = keras.Input((8, 8, 3))
        model = keras.Model(inputs, PersistentGaussianNoise(0.05, seed=2)(inputs))
        x = _images((2, 8, 8, 3))
        first, second = model.predict(x, verbose=0), model.predict(x, verbose=0)
        self.assertNotAllClose(first, x)
        self.assertNotAllClose(first, second)  # fresh noise on every call

    def test_output_is_clipped_to_unit_interval(self):
        layer = PersistentGaussianNoise(1.0, seed=3)
        y = keras.ops.convert_to_numpy(layer(_images((4, 16, 16, 3))))
        self.assertAllInRange(y, 0.0, 1.0)
        self.assertIn(0.0, y)
        self.assertIn(1.0, y)

    def test_zero_stddev_is_identity(self):
        x = _images()
        self.assertAllEqual(PersistentGaussianNoise(0.0)(x, training=False), x)

    def test_equal_seeds_give_equal_noise(self):
        x = _images()
        first, second = PersistentGaussianNoise(0.1, seed=7), PersistentGaussianNoise(0.1, seed=7)
        self.assertAllEqual(first(x), second(x))

    def test_config_round_trip(self):
        layer = PersistentGaussianNoise(0.2, seed=5, name="noise")
        clone = PersistentGaussianNoise.from_config(layer.get_config())
        self.assertEqual((clone.stddev, clone.seed, clone.name), (0.2, 5, "noise"))
        x = _images()
        self.assertAllEqual(layer(x), clone(x))

    def test_negative_stddev_raises(self):
        with self.assertRaisesRegex(ValueError, r"`scale` must be >= 0. Received: scale=-0.1"):
            PersistentGaussianNoise(-0.1)


if __name__ == "__main__":
    tf.test.main()
