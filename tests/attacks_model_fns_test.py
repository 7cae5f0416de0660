"""Tests of tf_atalp.attacks.model_fns: BatchNorm mode, EoT and BPDA belong to the model function."""

import numpy as np
import tensorflow as tf

from tests.attack_fixtures import NUM_CLASSES, batch, conv_model, linear_model
from tf_atalp import attacks
from tf_atalp.attacks import model_fns


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


class JitteryLinear:
    """A randomized model function whose gradient is mostly noise but whose output is not.

    logits = x W + b + (a / w) sin(w x) R with R ~ N(0, 1) [D, K] drawn per
    call: the added logits are at most ~a sqrt(D) / w (small for w = 1000),
    but their input gradient a cos(w x) R is large and random, with mean zero
    over draws, so one draw's gradient hides W and the mean over many shows it.
    """

    def __init__(self, model, amplitude, frequency=1000.0):
        self.model, self.amplitude, self.frequency = model, amplitude, frequency

    def __call__(self, images):
        flat = tf.reshape(images, [tf.shape(images)[0], -1])
        noise = tf.random.normal([flat.shape[1], NUM_CLASSES])
        return (self.model(images)
                + self.amplitude / self.frequency * tf.sin(self.frequency * flat) @ noise)


class ExpectationOverTransformationAttackTest(tf.test.TestCase):

    def test_eot_gives_lower_accuracy_than_one_sample_gradients(self):
        tf.random.set_seed(0)
        model, _, _ = linear_model()
        images, _ = batch(n=64)
        labels = np.argmax(model(images).numpy(), axis=1).astype(np.int32)  # all correct
        jittery = JitteryLinear(model, amplitude=32.0)

        def accuracy(samples):
            eot = attacks.ExpectationOverTransformation(jittery, samples)
            found = attacks.PGD(0.1, 0.02, 10, random_start=False).attack(
                eot, images, labels).adversarial_images
            return np.mean(np.argmax(model(found).numpy(), axis=1) == labels)

        one_sample, averaged = accuracy(1), accuracy(64)
        self.assertLess(averaged + 0.3, one_sample)


def quantize(images):
    """Rounds pixels to 8 levels: no gradient (tf.round has none)."""
    return tf.round(images * 7.0) / 7.0


class BackwardPassDifferentiableApproximationTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.model, self.weights, self.bias = linear_model()
        self.images, self.labels = batch(n=32)
        self.model_fn = attacks.inference_logits(self.model)
        self.objective = attacks.get_objective("cross_entropy")

    def quantized_model_fn(self, images):
        return self.model_fn(quantize(images))

    def test_the_forward_pass_keeps_the_transform(self):
        bpda = attacks.BackwardPassDifferentiableApproximation(self.model_fn, quantize)
        self.assertAllClose(bpda(self.images), self.quantized_model_fn(self.images))

    def test_identity_backward_pass_gives_the_gradient_at_the_transformed_point(self):
        bpda = attacks.BackwardPassDifferentiableApproximation(self.model_fn, quantize)
        images = tf.constant(self.images)
        _, gradient = model_fns.objective_and_gradient(bpda, self.objective, images, self.labels)
        _, expected = model_fns.objective_and_gradient(
            self.model_fn, self.objective, quantize(images), self.labels)
        self.assertAllClose(gradient, expected)
        with self.assertRaisesRegex(ValueError, "no gradient"):
            model_fns.objective_and_gradient(self.quantized_model_fn, self.objective, images,
                                             self.labels)

    def test_an_approximation_gives_its_own_gradient(self):
        halve = lambda images: 0.5 * images  # noqa: E731 (its gradient is 0.5)
        bpda = attacks.BackwardPassDifferentiableApproximation(self.model_fn, quantize, halve)
        images = tf.constant(self.images)
        _, gradient = model_fns.objective_and_gradient(bpda, self.objective, images, self.labels)
        _, expected = model_fns.objective_and_gradient(
            self.model_fn, self.objective, quantize(images), self.labels)
        self.assertAllClose(gradient, 0.5 * expected)

    def test_pgd_through_bpda_breaks_a_quantized_model(self):
        bpda = attacks.BackwardPassDifferentiableApproximation(self.model_fn, quantize)
        labels = np.argmax(bpda(self.images).numpy(), axis=1)  # all correct to start with
        result = attacks.PGD(0.3, 0.05, 20).attack(bpda, self.images, labels, seed=0,
                                                   record_at=[0, 20])
        accuracy = result.correct_at.numpy().mean(axis=1)
        self.assertLess(accuracy[-1], 0.5 * accuracy[0])
        self.assertEqual(bpda.describe(), {"wrapper": "bpda", "approximation": "identity"})


if __name__ == "__main__":
    tf.test.main()
