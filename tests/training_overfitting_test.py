"""Tests of the catastrophic-overfitting check: fires on a constructed collapse, silent else."""

import contextlib
import io

import keras
import numpy as np
import tensorflow as tf

from tests.attack_fixtures import IMAGE_SHAPE, NUM_CLASSES, batch
from tf_atalp.attacks import PGD
from tf_atalp.training.overfitting import (
    ACCURACY_KEY, FLAG_KEY, CatastrophicOverfitting, check_attack, collapsed, held_out_batch,
    last_accuracy, overfitting_summary)

ATTACK = check_attack(PGD(epsilon=0.05, step_size=0.0125, iterations=3, objective="margin"))


def constant_model():
    """A linear model; `robust` and `fragile` set its weights."""
    inputs = keras.Input(IMAGE_SHAPE)
    return keras.Model(inputs, keras.layers.Dense(NUM_CLASSES)(keras.layers.Flatten()(inputs)))


def robust(model):
    """Predicts class 0 whatever the input: every label-0 image stays correct under attack."""
    dense = model.layers[-1]
    dense.set_weights([np.zeros_like(dense.get_weights()[0]), np.array([5.0, 0.0, 0.0])])


def fragile(model):
    """Class 0 on the clean images, by a margin the epsilon-ball can overturn."""
    dense = model.layers[-1]
    kernel = np.zeros_like(dense.get_weights()[0])
    kernel[:, 1] = 100.0  # +100 per pixel step towards class 1: eps * 100 * 108 >> margin
    dense.set_weights([kernel, np.array([5.0 + 100.0 * 54.0, 0.0, 0.0])])


def run_epochs(callback, model, weight_setters):
    callback.set_model(model)
    logs, printed = [], io.StringIO()
    with contextlib.redirect_stdout(printed):
        for epoch, set_weights in enumerate(weight_setters):
            set_weights(model)
            epoch_logs = {}
            callback.on_epoch_end(epoch, epoch_logs)
            logs.append(epoch_logs)
    return logs, printed.getvalue()


class CatastrophicOverfittingTest(tf.test.TestCase):

    def setUp(self):
        images, _ = batch(n=16)
        self.images = np.full_like(images, 0.5)
        self.labels = np.zeros(16, np.int32)

    def test_check_attack_follows_the_training_radius(self):
        self.assertEqual((ATTACK.iterations, ATTACK.objective, ATTACK.epsilon, ATTACK.step_size),
                         (5, "cross_entropy", 0.05, 0.0125))

    def test_fires_on_a_constructed_collapse(self):
        callback = CatastrophicOverfitting(self.images, self.labels, ATTACK)
        logs, printed = run_epochs(callback, constant_model(), [robust, robust, fragile])
        self.assertEqual([entry[ACCURACY_KEY] for entry in logs], [1.0, 1.0, 0.0])
        self.assertEqual([entry[FLAG_KEY] for entry in logs], [0.0, 0.0, 1.0])
        self.assertEqual(callback.collapsed_epochs, [3])
        self.assertIn("Epoch 3: catastrophic overfitting", printed)
        self.assertIn("from 1.000 to 0.000", printed)

    def test_silent_on_a_healthy_run(self):
        callback = CatastrophicOverfitting(self.images, self.labels, ATTACK)
        logs, printed = run_epochs(callback, constant_model(), [fragile, robust, robust])
        # Accuracy rising (0 -> 1) is no collapse.
        self.assertEqual([entry[FLAG_KEY] for entry in logs], [0.0, 0.0, 0.0])
        self.assertEmpty(callback.collapsed_epochs)
        self.assertNotIn("catastrophic", printed)

    def test_a_resumed_run_compares_with_the_epoch_before_it(self):
        callback = CatastrophicOverfitting(self.images, self.labels, ATTACK, previous_accuracy=0.9)
        logs, _ = run_epochs(callback, constant_model(), [fragile])
        self.assertEqual(logs[0][FLAG_KEY], 1.0)

    def test_the_rule(self):
        self.assertTrue(collapsed(0.5, 0.29))
        self.assertFalse(collapsed(0.5, 0.3))
        self.assertFalse(collapsed(None, 0.0))

    def test_summary_from_the_history_rows(self):
        rows = [{"epoch": "1", ACCURACY_KEY: "0.40"}, {"epoch": "2", ACCURACY_KEY: "0.45"},
                {"epoch": "3", ACCURACY_KEY: "0.10"}, {"epoch": "4", ACCURACY_KEY: "0.05"}]
        summary = overfitting_summary(rows, ATTACK, examples=16)
        self.assertTrue(summary["detected"])
        self.assertEqual(summary["epochs"], [3])
        self.assertEqual(summary["held_out_accuracy"], [0.4, 0.45, 0.1, 0.05])
        self.assertEqual(summary["attack"]["iterations"], 5)
        self.assertFalse(overfitting_summary(rows[:2], ATTACK, 16)["detected"])
        self.assertIsNone(overfitting_summary([{"epoch": "1", "loss": "1.0"}], ATTACK, 16))
        self.assertEqual(last_accuracy(rows), 0.05)
        self.assertIsNone(last_accuracy([]))

    def test_held_out_batch_is_class_balanced_and_fixed(self):
        labels = np.repeat(np.arange(4), 10).astype(np.int32)  # sorted by class, as folders are
        images = np.arange(40, dtype=np.float32).reshape(40, 1, 1, 1) * np.ones((1, 2, 2, 3),
                                                                                np.float32)
        dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(7)
        first_images, first_labels = held_out_batch(dataset, examples=8)
        self.assertEqual(np.bincount(first_labels.numpy()).tolist(), [2, 2, 2, 2])
        again_images, _ = held_out_batch(dataset, examples=8)
        self.assertAllEqual(first_images, again_images)
        self.assertLen(held_out_batch(dataset, examples=100)[1], 40)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "`images` must be"):
            CatastrophicOverfitting(self.images[0], self.labels, ATTACK)
        with self.assertRaisesRegex(ValueError, "`drop` must be in"):
            CatastrophicOverfitting(self.images, self.labels, ATTACK, drop=0.0)


if __name__ == "__main__":
    tf.test.main()
