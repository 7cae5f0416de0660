"""Tests of the igr defense: the input-gradient penalty against a hand-derived answer."""

import keras
import numpy as np
import tensorflow as tf

from tf_atalp.defenses import InputGradientRegularization, get_defense
from tf_atalp.defenses.gradient_regularization import (
    DEFAULT_IGR_LAMBDA, InputGradientPenaltyTerm, input_gradient_penalty)
from tf_atalp.defenses.terms import LossInputs


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class InputGradientPenaltyTest(tf.test.TestCase):

    def setUp(self):
        rng = np.random.default_rng(0)
        self.images = rng.uniform(size=(5, 2, 2, 3)).astype("float32")
        self.labels = np.array([0, 2, 1, 2, 0], "int32")
        self.weights = rng.normal(size=(12, 3)).astype("float32")
        self.bias = rng.normal(size=3).astype("float32")

    def linear(self, images):
        flat = tf.reshape(images, [-1, 12])
        return flat @ self.weights + self.bias

    def test_linear_model_against_numpy(self):
        # For logits z = x W + b, d CE_n / d x_n = W (softmax(z_n) - onehot(y_n)).
        z = self.images.reshape(5, 12) @ self.weights + self.bias
        residual = softmax(z) - np.eye(3)[self.labels]
        gradients = residual @ self.weights.T  # [5, 12]
        expected = np.mean(np.sum(gradients**2, axis=1))
        penalty = input_gradient_penalty(self.linear, self.images, self.labels)
        self.assertAllClose(penalty, expected, rtol=1e-5)

    def test_penalty_does_not_depend_on_the_batch_it_is_averaged_in(self):
        alone = input_gradient_penalty(self.linear, self.images[:1], self.labels[:1])
        per_example = [input_gradient_penalty(self.linear, self.images[i:i + 1],
                                              self.labels[i:i + 1]) for i in range(5)]
        self.assertAllClose(per_example[0], alone)
        self.assertAllClose(input_gradient_penalty(self.linear, self.images, self.labels),
                            np.mean(per_example), rtol=1e-5)

    def test_the_penalty_has_a_gradient_with_respect_to_the_weights(self):
        weights = tf.Variable(self.weights)

        def model(images):
            return tf.reshape(images, [-1, 12]) @ weights

        with tf.GradientTape() as tape:
            penalty = input_gradient_penalty(model, self.images, self.labels)
        gradient = tape.gradient(penalty, weights)
        self.assertIsNotNone(gradient)
        self.assertGreater(float(tf.reduce_sum(tf.abs(gradient))), 0.0)
        # Finite-difference check of one weight (double backprop is exact).
        delta = 1e-2
        bumped = self.weights.copy()
        bumped[3, 1] += delta
        weights.assign(bumped)
        up = input_gradient_penalty(model, self.images, self.labels)
        bumped[3, 1] -= 2 * delta
        weights.assign(bumped)
        down = input_gradient_penalty(model, self.images, self.labels)
        self.assertAllClose((up - down) / (2 * delta), gradient[3, 1], rtol=2e-2, atol=1e-3)

    def test_term_runs_the_network_it_is_given(self):
        inputs = LossInputs(labels=tf.constant(self.labels), clean=None, adversarial=None,
                            images=tf.constant(self.images), network=self.linear)
        self.assertAllClose(InputGradientPenaltyTerm(weight=2.0)(inputs),
                            input_gradient_penalty(self.linear, self.images, self.labels))

    def test_defense_terms_and_options(self):
        defense = get_defense("igr", igr_lambda=7.0, alpha=3.0)
        self.assertIsInstance(defense, InputGradientRegularization)
        self.assertFalse(defense.adversarial_training)
        self.assertEqual(defense.term_names, ("ce", "input_gradient"))
        self.assertEqual(defense.loss_terms()[1].weight, 7.0)
        self.assertEqual(get_defense("igr").igr_lambda, DEFAULT_IGR_LAMBDA)
        self.assertEqual(get_defense("igr", igr_lambda=0.0).term_names, ("ce",))
        with self.assertRaisesRegex(ValueError, "`igr_lambda` must be >= 0"):
            get_defense("igr", igr_lambda=-1.0)

    def test_the_default_lambda_carries_its_measured_underfitting_caveat(self):
        (caveat,) = get_defense("igr").caveats()
        self.assertIn("underfit", caveat)
        self.assertIn("--igr_lambda=1", caveat)
        self.assertEqual(get_defense("igr", igr_lambda=1.0).caveats(), ())
        self.assertEqual(get_defense("pat").caveats(), ())

    def test_keras_model_with_dict_outputs(self):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((2, 2, 3))
        logits = keras.layers.Dense(3)(keras.layers.Flatten()(inputs))
        model = keras.Model(inputs, {"logits": logits})
        penalty = input_gradient_penalty(model, self.images, self.labels)
        self.assertGreater(float(penalty), 0.0)


if __name__ == "__main__":
    tf.test.main()
