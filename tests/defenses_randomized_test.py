"""Tests of the randomized defenses (rat, randomization) and their parts: input noise,
random resize-and-pad, and expectation over transformation on them."""

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tf_atalp.attacks.model_fns import (
    ExpectationOverTransformation, inference_logits, objective_and_gradient)
from tf_atalp.attacks.objectives import get_objective
from tf_atalp.defenses import Randomization, RandomizedAdversarialTraining, get_defense
from tf_atalp.models import build_resnet
from tf_atalp.models.layers import PersistentNoise
from tf_atalp.models.randomization import (
    RandomResizePad, padded_size, randomized_model, with_input_size)


def images(n=4, size=32, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, size, size, 3)).astype("float32")


class PersistentNoiseTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.parameters(
        # (distribution, scale, expected mean |noise|): E|N(0, s^2)| = s sqrt(2/pi),
        # E|Laplace(b)| = b, E|U(-s, s)| = s / 2.
        ("gaussian", 0.1, 0.1 * np.sqrt(2 / np.pi)),
        ("laplace", 0.1, 0.1),
        ("uniform", 0.1, 0.05))
    def test_noise_statistics(self, distribution, scale, mean_abs):
        layer = PersistentNoise(scale, distribution, seed=0)
        x = np.full((64, 16, 16, 3), 0.5, "float32")  # far from the clip bounds at this scale
        noise = layer(x, training=False).numpy() - x
        self.assertAllClose(np.mean(np.abs(noise)), mean_abs, rtol=0.05)
        self.assertAllClose(np.mean(noise), 0.0, atol=0.01)
        if distribution == "uniform":
            self.assertLessEqual(np.max(np.abs(noise)), scale + 1e-6)

    def test_output_is_clipped_and_differs_between_calls(self):
        layer = PersistentNoise(0.5, "laplace", seed=1)
        x = images()
        first, second = layer(x), layer(x)
        self.assertAllInRange(first, 0.0, 1.0)
        self.assertNotAllClose(first, second)

    def test_config_round_trip_and_errors(self):
        layer = PersistentNoise(0.2, "uniform", seed=3, name="noise")
        clone = PersistentNoise.from_config(layer.get_config())
        self.assertEqual((clone.scale, clone.distribution, clone.seed), (0.2, "uniform", 3))
        with self.assertRaisesRegex(ValueError, "`distribution` must be one of"):
            PersistentNoise(0.1, "cauchy")
        with self.assertRaisesRegex(ValueError, "`scale` must be >= 0"):
            PersistentNoise(-0.1)


class RandomResizePadTest(tf.test.TestCase):

    def test_shape_range_and_the_image_inside_the_padding(self):
        layer = RandomResizePad(40, seed=0)
        x = np.ones((2, 32, 32, 3), "float32")
        for _ in range(10):
            y = layer(x).numpy()
            self.assertEqual(y.shape, (2, 40, 40, 3))
            self.assertAllInRange(y, 0.0, 1.0)
            # The resized image is a square of ones of side r in [32, 40) in zero padding.
            side = int(np.sqrt(y[0, :, :, 0].sum()))
            self.assertEqual(side**2, y[0, :, :, 0].sum())
            self.assertBetween(side, 32, 39)

    def test_draws_differ_between_calls_and_gradients_flow(self):
        layer = RandomResizePad(40, seed=1)
        x = tf.constant(images())
        outputs = [layer(x).numpy() for _ in range(5)]
        self.assertTrue(any(not np.allclose(outputs[0], o) for o in outputs[1:]))
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(layer(x))
        self.assertGreater(float(tf.reduce_sum(tape.gradient(total, x))), 0.0)

    def test_padded_size(self):
        self.assertEqual(padded_size(299), 331)
        self.assertEqual(padded_size(64), 71)
        self.assertEqual(padded_size(32, 1.001), 33)
        with self.assertRaisesRegex(ValueError, "`size_ratio` must be > 1"):
            padded_size(32, 1.0)

    def test_randomized_model_shares_the_networks_weights(self):
        keras.utils.set_random_seed(0)
        network = build_resnet(10, 3, 32, width=4)
        randomized = randomized_model(network)
        self.assertEqual(len(randomized.weights), len(network.weights))
        self.assertTrue(all(any(w is v for v in randomized.weights) for w in network.weights))
        self.assertEqual(randomized(images())["logits"].shape, (4, 3))

    def test_with_input_size_refuses_a_size_dependent_model(self):
        inputs = keras.Input((8, 8, 3))
        model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
        with self.assertRaisesRegex(ValueError, "cannot take 10x10 inputs"):
            with_input_size(model, 10)


class RandomizedDefensesTest(tf.test.TestCase):

    def test_rat(self):
        defense = get_defense("rat", noise_distribution="laplace", noise_scale=0.1)
        self.assertIsInstance(defense, RandomizedAdversarialTraining)
        self.assertTrue(defense.adversarial_training)
        self.assertEqual(defense.model_options(), {"input_noise_scale": 0.1,
                                                   "input_noise_distribution": "laplace"})
        self.assertIn("laplace", defense.randomization())
        self.assertEqual(get_defense("rat").noise_distribution, "uniform")
        with self.assertRaisesRegex(ValueError, "`noise_scale` must be in"):
            get_defense("rat", noise_scale=0.0)

    def test_randomization_trains_as_ce_on_says(self):
        defense = get_defense("randomization")
        self.assertIsInstance(defense, Randomization)
        self.assertTrue(defense.adversarial_training)
        self.assertFalse(get_defense("randomization", ce_on="clean").adversarial_training)
        self.assertEqual(defense.model_options(), {})
        self.assertIsNotNone(defense.randomization())
        with self.assertRaisesRegex(ValueError, "`interpolation` must be one of"):
            get_defense("randomization", interpolation="area")

    def test_deterministic_defenses_say_so(self):
        for name in ("none", "pat", "at_alp", "igr", "fd", "adp"):
            self.assertIsNone(get_defense(name).randomization(), name)

    def test_randomized_models_predict_differently_on_repeated_calls(self):
        for name in ("rat", "randomization"):
            defense = get_defense(name, noise_scale=0.2)
            keras.utils.set_random_seed(0)
            model = defense.inference_model(
                build_resnet(10, 3, 64, width=4, **defense.model_options()))
            x = images(size=64)
            first, *others = [model(x)["logits"].numpy() for _ in range(4)]
            self.assertTrue(any(not np.allclose(first, other) for other in others), name)

    def test_expectation_over_transformation_reduces_the_gradient_variance(self):
        defense = get_defense("rat", noise_distribution="gaussian", noise_scale=0.2)
        keras.utils.set_random_seed(0)
        model = build_resnet(10, 3, 32, width=4, **defense.model_options())
        x, labels = tf.constant(images(2)), tf.constant([0, 1])
        objective = get_objective("cross_entropy")

        def spread(model_fn, repeats=8):
            gradients = np.stack([objective_and_gradient(model_fn, objective, x, labels)[1]
                                  for _ in range(repeats)])
            return float(np.mean(np.var(gradients, axis=0)))

        single = spread(inference_logits(model))
        averaged = spread(ExpectationOverTransformation(inference_logits(model), 16))
        # Averaging 16 independent draws divides the variance by 16; allow sampling slack.
        self.assertLess(averaged, single / 4)


if __name__ == "__main__":
    tf.test.main()
