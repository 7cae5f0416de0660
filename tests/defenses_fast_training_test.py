"""Tests of fast_at (its FGSM step, GradAlign) and free_at (its replays and their work)."""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from tests.attack_fixtures import IMAGE_SHAPE, batch, linear_model
from tf_atalp.attacks import PGD, inference_logits, linf_project, random_start
from tf_atalp.defenses import (
    FastAdversarialTraining, FreeAdversarialTraining, defense_config, defense_from_config,
    get_defense)
from tf_atalp.defenses.fast_training import gradient_misalignment
from tf_atalp.training import AdversarialTrainer
from tf_atalp.data import DataConfig
from tf_atalp.training.config import ModelConfig, RunConfig, TrainConfig
from tf_atalp.training.run import make_optimizer

ATTACK = PGD(epsilon=0.05, step_size=0.0125, iterations=7)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def two_class_linear_model(seed=0):
    """logits = flatten(x) @ W + b with 2 classes; returns (model, W, b)."""
    rng = np.random.default_rng(seed)
    inputs = keras.Input(IMAGE_SHAPE)
    dense = keras.layers.Dense(2)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    weights = rng.normal(size=(int(np.prod(IMAGE_SHAPE)), 2)).astype(np.float32)
    bias = rng.normal(size=2).astype(np.float32)
    dense.set_weights([weights, bias])
    return model, weights, bias


def relu_model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(IMAGE_SHAPE)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    logits = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, logits)


class CountingLayer(keras.layers.Layer):
    """Identity that counts its calls in training mode (forward passes of a train step)."""

    def build(self, input_shape):
        self.calls = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                     name="calls")

    def call(self, inputs, training=False):
        if training:
            self.calls.assign_add(1.0)
        return inputs


class FastAdversarialTrainingTest(tf.test.TestCase):

    def test_training_attack_is_one_fgsm_step_of_one_and_a_quarter_epsilon(self):
        attack = get_defense("fast_at").training_attack(ATTACK)
        self.assertEqual((attack.iterations, attack.random_start, attack.start_noise),
                         (1, True, "uniform"))
        self.assertAllClose(attack.step_size, 1.25 * 0.05)
        self.assertEqual(attack.epsilon, 0.05)

    def test_fgsm_step_by_hand_on_a_linear_model(self):
        model, weights, _ = linear_model()
        images, labels = batch()
        attack = FastAdversarialTraining().training_attack(ATTACK)
        seed = tf.constant([3, 0], tf.int64)
        result = attack.attack(inference_logits(model), images, labels, seed=seed)
        start = random_start(tf.constant(images), 0.05, seed).numpy()
        logits = start.reshape(len(images), -1) @ weights + model.layers[-1].get_weights()[1]
        gradient = (softmax(logits) - np.eye(3)[labels]) @ weights.T
        expected = linf_project(start + 1.25 * 0.05 * np.sign(gradient).reshape(images.shape),
                                images, 0.05)
        self.assertAllClose(result.adversarial_images, expected, atol=1e-6)

    def test_grad_align_is_zero_for_a_two_class_linear_model(self):
        # d CE / dx = p_1 (w_1 - w_0) for label 0 and p_0 (w_0 - w_1) for label 1: one
        # direction everywhere, so every cosine is 1.
        model, _, _ = two_class_linear_model()
        images, labels = batch()
        labels = labels % 2
        self.assertAllClose(gradient_misalignment(model, images, labels, 0.1, seed=[1, 2]), 0.0,
                            atol=1e-5)  # float32 rounding of cosines of 108-long vectors

    def test_grad_align_of_a_relu_net_is_positive_and_has_a_weight_gradient(self):
        model = relu_model()
        images, labels = batch()
        with tf.GradientTape() as tape:
            value = gradient_misalignment(model, images, labels, 0.3, seed=[1, 2])
        gradients = tape.gradient(value, model.trainable_variables)
        self.assertGreater(float(value), 0.0)
        self.assertLessEqual(float(value), 2.0)
        self.assertGreater(sum(float(tf.reduce_sum(tf.abs(g))) for g in gradients if g is not None),
                           0.0)

    def test_grad_align_skips_zero_gradients(self):
        inputs = keras.Input(IMAGE_SHAPE)
        constant = keras.Model(inputs, keras.layers.Lambda(
            lambda x: 0.0 * tf.reshape(x, [-1, int(np.prod(IMAGE_SHAPE))])[:, :3])(inputs))
        images, labels = batch()
        self.assertEqual(float(gradient_misalignment(constant, images, labels, 0.1)), 0.0)

    def test_options_terms_and_config(self):
        defense = get_defense("fast_at", grad_align_lambda=0.2)
        self.assertEqual(defense.term_names, ("ce", "grad_align"))
        self.assertEqual(defense.loss_terms()[1].weight, 0.2)
        self.assertEqual(get_defense("fast_at").term_names, ("ce",))
        self.assertTrue(defense.watches_overfitting())
        self.assertEqual(defense_from_config(defense_config(defense)), defense)
        with self.assertRaisesRegex(ValueError, "`fgsm_step` must be > 0"):
            FastAdversarialTraining(fgsm_step=0.0)

    def test_grad_align_in_a_step_uses_the_seed_and_the_attack_radius(self):
        images, labels = batch()
        losses = []
        for _ in range(2):
            trainer = AdversarialTrainer(relu_model(), get_defense("fast_at", grad_align_lambda=1.0),
                                         attack=ATTACK, seed=5)
            trainer.compile(optimizer=keras.optimizers.SGD(0.0))
            losses.append(trainer.train_on_batch(images, labels, return_dict=True))
        self.assertEqual(losses[0]["grad_align"], losses[1]["grad_align"])
        self.assertGreater(losses[0]["grad_align"], 0.0)
        self.assertAllClose(losses[0]["loss"], losses[0]["ce"] + losses[0]["grad_align"])


class FreeAdversarialTrainingTest(tf.test.TestCase):

    def test_defaults_epochs_and_errors(self):
        defense = get_defense("free_at")
        self.assertEqual((defense.replays, defense.free_replays()), (8, 8))
        self.assertEqual(defense.updates_per_batch(), 8)
        self.assertEqual([defense.epochs_to_run(e) for e in (60, 16, 1)], [8, 2, 1])
        self.assertEqual(defense_from_config(defense_config(defense)), defense)
        for bad in (1, 0, 2.5, True):
            with self.assertRaisesRegex(ValueError, "`replays` must be an int >= 2"):
                FreeAdversarialTraining(replays=bad)

    def test_each_batch_is_m_passes_and_m_updates_and_no_attack(self):
        calls = []

        @dataclasses.dataclass(frozen=True)
        class RecordingPGD(PGD):
            def attack(self, *args, **kwargs):
                calls.append(1)
                return super().attack(*args, **kwargs)

        inputs = keras.Input(IMAGE_SHAPE)
        counter = CountingLayer()
        hidden = counter(inputs)
        network = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(hidden)))
        images, labels = batch(n=16)
        trainer = AdversarialTrainer(network, FreeAdversarialTraining(replays=3),
                                     attack=RecordingPGD(0.05, 0.01, 7))
        trainer.compile(optimizer=keras.optimizers.SGD(0.01))
        trainer.fit(images, labels, batch_size=8, epochs=1, verbose=0, shuffle=False)
        # 2 batches: 3 forward (and backward) passes and 3 updates each, as 3 clean epochs.
        self.assertEqual(float(counter.calls), 6.0)
        self.assertEqual(int(trainer.optimizer.iterations), 6)
        self.assertEmpty(calls)

    def test_replays_carry_the_perturbation_by_hand(self):
        # Two classes, linear: the sign of d CE / dx is the same everywhere, so replay 0
        # trains on x and every later replay on the FGSM image clip(x + eps * sign, 0, 1).
        model, weights, bias = two_class_linear_model()
        images, labels = batch()
        labels = labels % 2
        epsilon, replays = 0.05, 4
        trainer = AdversarialTrainer(model, FreeAdversarialTraining(replays=replays),
                                     attack=PGD(epsilon, 0.01, 1))
        trainer.compile(optimizer=keras.optimizers.SGD(0.0))
        logs = trainer.train_on_batch(images, labels, return_dict=True)
        flat = images.reshape(len(images), -1)
        gradient = (softmax(flat @ weights + bias) - np.eye(2)[labels]) @ weights.T
        moved = np.clip(flat + epsilon * np.sign(gradient), 0.0, 1.0)

        def cross_entropy(x):
            return -np.mean(np.log(softmax(x @ weights + bias)[np.arange(len(labels)), labels]))

        expected = (cross_entropy(flat) + (replays - 1) * cross_entropy(moved)) / replays
        self.assertAllClose(logs["loss"], expected, rtol=1e-5)

    def test_the_schedule_spans_every_update(self):
        config = RunConfig(
            data=DataConfig(dataset="synthetic", image_size=32),
            model=ModelConfig(depth=10, width=8, image_size=32),
            defense=get_defense("free_at", replays=4), attack=PGD(0.03, 0.01, 3),
            train=TrainConfig(model_dir="/tmp/x", epochs=2, warmup_epochs=1.0))
        schedule = make_optimizer(config, steps_per_epoch=10).get_config()["learning_rate"]
        self.assertEqual((schedule["config"]["total_steps"], schedule["config"]["warmup_steps"]),
                         (80, 40))


if __name__ == "__main__":
    tf.test.main()
