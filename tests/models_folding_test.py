"""Tests of tf_atalp.models.folding: BatchNorm folded into convolutions computes the same logits."""

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tf_atalp.models import build_resnet
from tf_atalp.models.folding import fold_batchnorm


def with_random_statistics(model: keras.Model, seed=0) -> keras.Model:
    """Gives every BatchNormalization non-trivial gamma, beta, mean and variance."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            shapes = [w.shape for w in layer.get_weights()]  # gamma, beta, mean, variance
            layer.set_weights([rng.uniform(0.5, 1.5, shapes[0]), rng.normal(0, 0.3, shapes[1]),
                               rng.normal(0, 0.3, shapes[2]), rng.uniform(0.5, 2.0, shapes[3])])
    return model


def count(model, kind) -> int:
    return sum(isinstance(layer, kind) for layer in model.layers)


class FoldBatchNormTest(tf.test.TestCase, parameterized.TestCase):

    def tearDown(self):
        keras.mixed_precision.set_global_policy("float32")
        super().tearDown()

    # Tolerance relative to the largest logit: float32 rounding, or 4 ulps of
    # bfloat16's 8 significant bits (the folded kernels round differently).
    @parameterized.parameters(("float32", 1e-5), ("mixed_bfloat16", 2.0 ** -6))
    def test_a_resnet_folds_every_batchnorm_and_gives_the_same_logits(self, policy, relative):
        keras.mixed_precision.set_global_policy(policy)
        keras.utils.set_random_seed(0)
        model = with_random_statistics(build_resnet(10, num_classes=5, image_size=32, width=4))
        images = tf.random.stateless_uniform([6, 32, 32, 3], [1, 2])
        expected = model(images, training=False)["logits"]
        folded = fold_batchnorm(model)
        self.assertEqual(count(folded, keras.layers.BatchNormalization), 0)
        self.assertGreater(count(model, keras.layers.BatchNormalization), 0)  # untouched
        got = folded(images, training=False)
        self.assertEqual(set(got), set(model(images, training=False)))  # the same outputs
        expected32 = tf.cast(expected, tf.float32)
        self.assertAllClose(tf.cast(got["logits"], tf.float32), expected32, rtol=0,
                            atol=relative * float(tf.reduce_max(tf.abs(expected32))))
        self.assertAllEqual(model(images, training=False)["logits"], expected)

    def test_a_convolution_whose_output_is_also_used_elsewhere_is_left_alone(self):
        inputs = keras.Input((8, 8, 3))
        conv = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)
        normalised = keras.layers.BatchNormalization()(conv)
        outputs = keras.layers.Add()([normalised, conv])  # the raw output is needed too
        model = with_random_statistics(keras.Model(inputs, outputs))
        self.assertIs(fold_batchnorm(model), model)

    def test_a_nested_model_is_folded_and_a_plain_callable_passes_through(self):
        keras.utils.set_random_seed(1)
        inner_in = keras.Input((8, 8, 3))
        x = keras.layers.Conv2D(4, 3, padding="same")(inner_in)
        x = keras.layers.BatchNormalization()(x)
        inner = with_random_statistics(keras.Model(inner_in, keras.layers.ReLU()(x)))
        inputs = keras.Input((8, 8, 3))
        model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inner(inputs)))
        images = tf.random.stateless_uniform([3, 8, 8, 3], [3, 4])
        folded = fold_batchnorm(model)
        self.assertAllClose(folded(images, training=False), model(images, training=False),
                            atol=1e-5)
        nested = [layer for layer in folded.layers if isinstance(layer, keras.Model)]
        self.assertEqual(count(nested[0], keras.layers.BatchNormalization), 0)
        self.assertIs(fold_batchnorm(tf.nn.relu), tf.nn.relu)


if __name__ == "__main__":
    tf.test.main()
