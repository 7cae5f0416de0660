"""Tests of AWP: the perturbation's size, exact restoring, BatchNorm statistics, the registry."""

import keras
import numpy as np
import tensorflow as tf

from tests.attack_fixtures import IMAGE_SHAPE, NUM_CLASSES, batch, linear_model
from tf_atalp import losses
from tf_atalp.attacks import PGD, inference_logits
from tf_atalp.defenses import (
    AdversarialWeightPerturbation, defense_config, defense_from_config, get_defense)
from tf_atalp.defenses.terms import ADVERSARIAL, CLEAN
from tf_atalp.defenses.weight_perturbation import (
    DEFAULT_AWP_GAMMA, perturbed_weights, relative_perturbation)
from tf_atalp.training import AdversarialTrainer

ATTACK = PGD(epsilon=0.05, step_size=0.02, iterations=2, random_start=False)


def batchnorm_model(seed=0):
    """conv -> BatchNorm -> ReLU -> pool -> dense: logits."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(IMAGE_SHAPE)
    x = keras.layers.BatchNormalization()(keras.layers.Conv2D(8, 3, padding="same")(inputs))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(x))
    return keras.Model(inputs, keras.layers.Dense(NUM_CLASSES)(x))


def built_trainer(network, defense, learning_rate=0.0):
    trainer = AdversarialTrainer(network, defense, attack=ATTACK)
    trainer.compile(optimizer=keras.optimizers.SGD(learning_rate))
    trainer.optimizer.build(trainer.trainable_variables)
    return trainer


class RelativePerturbationTest(tf.test.TestCase):

    def test_each_layer_moves_gamma_times_its_norm_along_its_gradient(self):
        weights = [tf.constant([[3.0, 4.0]]), tf.constant([[1.0], [2.0], [2.0]])]
        gradients = [tf.constant([[0.0, -2.0]]), tf.constant([[5.0], [0.0], [0.0]])]
        steps = relative_perturbation(weights, gradients, 0.01)
        self.assertAllClose(steps[0], [[0.0, -0.05]])  # 0.01 * 5 * (0, -1)
        self.assertAllClose(steps[1], [[0.03], [0.0], [0.0]])  # 0.01 * 3 * (1, 0, 0)

    def test_missing_or_non_finite_gradients_move_nothing(self):
        weight = tf.ones([2, 2])
        steps = relative_perturbation([weight, weight], [None, tf.fill([2, 2], np.nan)], 0.1)
        self.assertAllEqual(steps[0], tf.zeros([2, 2]))
        self.assertAllEqual(steps[1], tf.zeros([2, 2]))

    def test_only_kernels_are_perturbed(self):
        model = batchnorm_model()
        chosen = perturbed_weights(model.trainable_variables)
        self.assertEqual(sorted(len(v.shape) for v in chosen), [2, 4])
        self.assertLen(model.trainable_variables, 6)  # + conv bias, BN gamma and beta, bias


class WeightPerturbationStepTest(tf.test.TestCase):

    def test_the_perturbing_pass_leaves_batchnorm_statistics_and_restores_exactly(self):
        images, labels = batch()
        network = batchnorm_model()
        trainer = built_trainer(network, get_defense("pat", awp_gamma=0.05))
        statistics = [v.numpy().copy() for v in network.non_trainable_variables]
        weights = [v.numpy().copy() for v in network.trainable_variables]
        adversarial = trainer.make_adversarial(images, labels, ATTACK)
        x = {CLEAN: tf.constant(images), ADVERSARIAL: adversarial}

        def loss():
            return float(losses.cross_entropy(labels, network(adversarial, training=False)))

        before = loss()
        kernels, saved, perturbed = trainer._perturb_weights(x, tf.constant(labels))
        for old, variable in zip(statistics, network.non_trainable_variables):
            self.assertAllEqual(old, variable.numpy())
        for kernel, value in zip(kernels, saved):
            self.assertAllClose(np.linalg.norm(kernel.numpy() - value.numpy()),
                                0.05 * np.linalg.norm(value.numpy()), rtol=1e-4)
        self.assertGreater(loss(), before)  # the perturbation ascends the loss
        trainer._remove_weight_perturbation(kernels, saved, perturbed)
        for old, variable in zip(weights, network.trainable_variables):
            self.assertAllEqual(old, variable.numpy())

    def test_a_step_without_update_leaves_the_weights_exactly(self):
        images, labels = batch()
        network = batchnorm_model()
        trainer = built_trainer(network, get_defense("trades", awp_gamma=0.01))
        weights = [v.numpy().copy() for v in network.trainable_variables]
        trainer.train_on_batch(images, labels)
        for old, variable in zip(weights, network.trainable_variables):
            self.assertAllEqual(old, variable.numpy())

    def test_the_update_is_the_gradient_at_the_perturbed_weights(self):
        images, labels = batch()
        gamma = 0.02
        model, weights, bias = linear_model()
        adversarial = ATTACK.attack(inference_logits(model), images, labels).adversarial_images

        def gradients_at(kernel):
            kernel = tf.constant(kernel)
            bias_tensor = tf.constant(bias)
            with tf.GradientTape() as tape:
                tape.watch([kernel, bias_tensor])
                logits = tf.reshape(adversarial, [len(images), -1]) @ kernel + bias_tensor
                loss = losses.cross_entropy(labels, logits)
            return tape.gradient(loss, [kernel, bias_tensor])

        kernel_gradient, _ = gradients_at(weights)
        step = gamma * np.linalg.norm(weights) * kernel_gradient / np.linalg.norm(kernel_gradient)
        expected_kernel_gradient, expected_bias_gradient = gradients_at(weights + step)
        trainer = built_trainer(model, get_defense("pat", awp_gamma=gamma), learning_rate=1.0)
        trainer.train_on_batch(images, labels)
        new_kernel, new_bias = model.layers[-1].get_weights()
        self.assertAllClose(new_kernel, weights - expected_kernel_gradient, atol=1e-5)
        self.assertAllClose(new_bias, bias - expected_bias_gradient, atol=1e-6)


class WeightPerturbationDefenseTest(tf.test.TestCase):

    def test_wraps_any_adversarial_defense_by_one_option(self):
        for name in ("pat", "at_alp", "trades", "mart", "fast_at"):
            wrapped = get_defense(name, awp_gamma=0.005)
            self.assertIsInstance(wrapped, AdversarialWeightPerturbation)
            self.assertEqual(wrapped.name, f"{name}+awp")
            self.assertEqual(wrapped.weight_perturbation(), 0.005)
            self.assertEqual(wrapped.loss_terms(), get_defense(name).loss_terms())
            self.assertEqual(wrapped.training_attack(ATTACK),
                             get_defense(name).training_attack(ATTACK))
            self.assertEqual(defense_config(wrapped),
                             {**defense_config(get_defense(name)), "awp_gamma": 0.005})
            self.assertEqual(defense_from_config(defense_config(wrapped)), wrapped)
        self.assertEqual(get_defense("at_alp", awp_gamma=0.0), get_defense("at_alp"))
        self.assertEqual(DEFAULT_AWP_GAMMA, 5e-3)
        self.assertEqual(AdversarialWeightPerturbation(get_defense("pat")).gamma, 5e-3)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "needs an adversarially trained defense"):
            get_defense("none", awp_gamma=0.005)
        with self.assertRaisesRegex(ValueError, "does not apply to 'free_at'"):
            get_defense("free_at", awp_gamma=0.005)
        with self.assertRaisesRegex(ValueError, "`awp_gamma` must be >= 0"):
            get_defense("pat", awp_gamma=-0.1)
        with self.assertRaisesRegex(ValueError, "already has AWP"):
            AdversarialWeightPerturbation(get_defense("pat", awp_gamma=0.01))


if __name__ == "__main__":
    tf.test.main()
