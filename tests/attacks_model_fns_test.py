"""Tests of tf_atalp.attacks.model_fns: BatchNorm mode and EoT belong to the model function."""

import numpy as np
import tensorflow as tf

from tests.attack_fixtures import NUM_CLASSES, batch, conv_model, linear_model
from tf_atalp import attacks


class ModelLogitsTest(tf.test.TestCase):

    def test_one_wrapper_per_model_and_mode(self):
        model = conv_model()
        self.assertIs(attacks.inference_logits(model), attacks.inference_logits(model))
        self.assertIsNot(attacks.inference_logits(model), attacks.training_logits(model))
        images, _ = batch()
        self.assertAllClose(attacks.inference_logits(model)(images), model(images)["logits"])

    def test_batchnorm_mode_is_a_property_of_the_model_function(self):
        model = conv_model()
        images, labels = batch()
        before = [w.numpy().copy() for w in model.non_trainable_weights]
        attacks.PGD(0.1, 0.01, 3).attack(attacks.inference_logits(model), images, labels)
        for old, new in zip(before, model.non_trainable_weights):
            self.assertAllClose(old, new)
        attacks.PGD(0.1, 0.01, 3).attack(attacks.training_logits(model), images, labels)
        self.assertTrue(any(not np.allclose(old, new.numpy())
                            for old, new in zip(before, model.non_trainable_weights)))


class NoisyLinear:
    """A randomized model function: a linear model on images plus Gaussian pixel noise."""

    def __init__(self, model, stddev):
        self.model, self.stddev = model, stddev

    def __call__(self, images):
        return self.model(images + tf.random.normal(tf.shape(images), stddev=self.stddev))


class ExpectationOverTransformationTest(tf.test.TestCase):

    def test_gradient_is_the_mean_over_draws(self):
        # For a linear model the input gradient of the objective depends on the noise only
        # through the softmax; with noise 0 every draw gives the plain gradient.
        model, _, _ = linear_model()
        images, labels = batch()
        eot = attacks.ExpectationOverTransformation(NoisyLinear(model, 0.0), samples=4)
        logits, gradient = attacks.objective_and_gradient(
            eot, attacks.cross_entropy_objective, tf.constant(images), tf.constant(labels))
        plain_logits, plain_gradient = attacks.objective_and_gradient(
            attacks.inference_logits(model), attacks.cross_entropy_objective,
            tf.constant(images), tf.constant(labels))
        self.assertAllClose(logits, plain_logits, atol=1e-5)
        self.assertAllClose(gradient, plain_gradient, atol=1e-5)

    def test_averaging_reduces_the_spread_of_the_gradient(self):
        model, _, _ = linear_model()
        images, labels = batch(n=4)
        images, labels = tf.constant(images), tf.constant(labels)

        def gradients(samples, draws=12):
            eot = attacks.ExpectationOverTransformation(NoisyLinear(model, 0.5), samples)
            return np.stack([attacks.objective_and_gradient(
                eot, attacks.cross_entropy_objective, images, labels)[1].numpy()
                for _ in range(draws)])

        self.assertLess(gradients(16).std(axis=0).mean(), gradients(1).std(axis=0).mean())

    def test_pgd_runs_on_an_eot_model_function(self):
        model, _, _ = linear_model()
        images, labels = batch()
        eot = attacks.ExpectationOverTransformation(NoisyLinear(model, 0.05), samples=3)
        result = attacks.PGD(0.1, 0.02, 3).attack(eot, images, labels, seed=0, record_at=[3])
        self.assertEqual(result.correct_at.shape, (1, len(labels)))
        self.assertLessEqual(np.abs(result.adversarial_images.numpy() - images).max(), 0.1 + 1e-6)
        self.assertEqual(eot(images).shape, (len(labels), NUM_CLASSES))

    def test_one_eot_wrapper_per_model_and_sample_count(self):
        model = conv_model()
        first = attacks.expectation_over_transformation(model, 4)
        self.assertIs(attacks.expectation_over_transformation(model, 4), first)
        self.assertIsNot(attacks.expectation_over_transformation(model, 5), first)
        self.assertEqual(first.samples, 4)
        self.assertIs(first.model_fn, attacks.inference_logits(model))

    def test_samples_must_be_positive(self):
        with self.assertRaisesRegex(ValueError, "`samples` must be an int >= 1"):
            attacks.ExpectationOverTransformation(lambda x: x, 0)


if __name__ == "__main__":
    tf.test.main()
