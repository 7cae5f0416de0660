"""Tests for tf_atalp.models.denoising.NonLocalDenoising."""

import os

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tf_atalp.models import denoising
from tf_atalp.models.denoising import NONLOCAL_MODES, NonLocalDenoising


def _features(shape=(2, 4, 5, 6), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _softmax(logits):
    logits = logits - logits.max(axis=-1, keepdims=True)
    return np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)


def _embed(conv, x):
    """theta(x) or phi(x) of a built layer, [N, H, W, C] -> [N, HW, d] in numpy."""
    y = keras.ops.convert_to_numpy(conv(x))
    return y.reshape(y.shape[0], -1, y.shape[-1])


def _expected_means(layer, x):
    """Hand computation of `layer.nonlocal_means(x)` in numpy."""
    n, h, w, c = x.shape
    values = x.reshape(n, h * w, c)
    if layer.mode == "gaussian":
        return (_softmax(values @ values.transpose(0, 2, 1) / np.sqrt(c)) @ values).reshape(x.shape)
    theta, phi = _embed(layer.theta, x), _embed(layer.phi, x)
    affinity = theta @ phi.transpose(0, 2, 1)
    if layer.mode == "dot_product":
        weights = affinity / (h * w)
    else:
        weights = _softmax(affinity / np.sqrt(theta.shape[-1]))
    return (weights @ values).reshape(x.shape)


class NonLocalDenoisingTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)

    @parameterized.parameters(*NONLOCAL_MODES)
    def test_nonlocal_means_matches_hand_computation(self, mode):
        x = _features()
        layer = NonLocalDenoising(mode=mode, embed_channels=3)
        layer.build(x.shape)
        if mode != "gaussian":  # embeddings larger than the 0.01-stddev init make the test sharp
            for conv in (layer.theta, layer.phi):
                conv.kernel.assign(np.random.default_rng(1).normal(size=conv.kernel.shape))
        expected = _expected_means(layer, x)
        self.assertAllClose(layer.nonlocal_means(x), expected, atol=1e-4, rtol=1e-4)

    @parameterized.parameters(*NONLOCAL_MODES)
    def test_shape_preserved_and_new_block_is_identity(self, mode):
        x = _features((2, 3, 3, 8))
        y = NonLocalDenoising(mode=mode)(x, training=False)
        self.assertEqual(y.shape, x.shape)
        self.assertAllClose(y, x)  # the BN scale starts at zero

    @parameterized.parameters(*NONLOCAL_MODES)
    def test_output_is_input_plus_branch(self, mode):
        x = _features()
        layer = NonLocalDenoising(mode=mode, zero_init=False)
        y = layer(x, training=False)
        branch = layer.norm(layer.projection(layer.nonlocal_means(x)), training=False)
        self.assertNotAllClose(branch, np.zeros_like(x))
        self.assertAllClose(y, x + branch, atol=1e-5)

    @parameterized.named_parameters(
            ("affinity_matrix", (2, 4, 8, 16)),  # P=4 positions, d=8, C=16: forms [N, P, P]
            ("associative", (2, 64, 2, 2)))  # P=64: theta @ (phi^T @ values) is cheaper
    def test_dot_product_orders_agree(self, sizes):
        n, positions, embed_channels, channels = sizes
        rng = np.random.default_rng(2)
        theta = rng.normal(size=(n, positions, embed_channels)).astype("float32")
        phi = rng.normal(size=(n, positions, embed_channels)).astype("float32")
        values = rng.normal(size=(n, positions, channels)).astype("float32")
        expected = theta @ phi.transpose(0, 2, 1) @ values / positions
        self.assertAllClose(denoising._dot_product_means(theta, phi, values), expected, atol=1e-4)

    def test_default_embedding_is_half_the_channels(self):
        layer = NonLocalDenoising()
        layer.build((None, 4, 4, 10))
        self.assertEqual((layer.theta.filters, layer.phi.filters), (5, 5))

    def test_gaussian_mode_has_no_embedding_weights(self):
        layer = NonLocalDenoising(mode="gaussian")
        layer.build((None, 4, 4, 6))
        self.assertIsNone(layer.theta)
        self.assertLen(layer.trainable_weights, 3)  # projection kernel, BN gamma and beta

    @parameterized.named_parameters(
            ("mode", dict(mode="mean"), r"`mode` must be one of \('embedded_gaussian'"),
            ("embed_channels", dict(embed_channels=0), "`embed_channels` must be None or >= 1"))
    def test_bad_arguments_raise(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            NonLocalDenoising(**kwargs)

    @parameterized.parameters(*NONLOCAL_MODES)
    def test_keras_file_round_trip(self, mode):
        inputs = keras.Input((4, 4, 6))
        layer = NonLocalDenoising(mode=mode, embed_channels=2, zero_init=False, name="denoise")
        model = keras.Model(inputs, layer(inputs))
        path = os.path.join(self.get_temp_dir(), f"{mode}.keras")
        model.save(path)
        loaded = keras.models.load_model(path)
        self.assertEqual(loaded.get_layer("denoise").get_config(), layer.get_config())
        x = _features((2, 4, 4, 6))
        self.assertAllClose(loaded(x), model(x), atol=1e-6)


if __name__ == "__main__":
    tf.test.main()
