"""Tests of the callbacks that watch robustness: RobustAccuracy and AttentionMaps."""

import glob
import os

import keras
import numpy as np
import tensorflow as tf

from tf_atalp.attacks import PGD
from tf_atalp.data.synthetic import make_synthetic_arrays
from tf_atalp.defenses import get_defense
from tf_atalp.models import with_feature_outputs
from tf_atalp.training import AdversarialTrainer
from tf_atalp.training.callbacks import AttentionMaps, RobustAccuracy

IMAGE_SIZE = 16
NUM_CLASSES = 4


def user_model(seed=0):
    """A plain user's functional model: logits only."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inputs)
    logits = keras.layers.Dense(NUM_CLASSES)(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, logits)


def data(n=64, seed=0):
    return make_synthetic_arrays(n, IMAGE_SIZE, NUM_CLASSES, seed=seed)


def event_tags(log_dir):
    """{tag: number of summaries} in the TensorBoard event files under `log_dir`."""
    tags = {}
    for path in glob.glob(os.path.join(log_dir, "**", "events.out.tfevents.*"), recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tags[value.tag] = tags.get(value.tag, 0) + 1
    return tags


class RobustAccuracyTest(tf.test.TestCase):

    def test_a_users_plain_fit_gets_the_key_in_history_and_csv(self):
        images, labels = data()
        model = user_model()
        model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True))
        csv_path = os.path.join(self.get_temp_dir(), "history.csv")
        checkpoint = os.path.join(self.get_temp_dir(), "best.keras")
        attack = PGD(0.03, 0.01, 3)
        history = model.fit(images, labels, epochs=3, batch_size=32, verbose=0, callbacks=[
            RobustAccuracy((images, labels), attack, every_n_epochs=1, max_examples=40),
            keras.callbacks.CSVLogger(csv_path),
            keras.callbacks.ModelCheckpoint(checkpoint, monitor="val_robust_accuracy",
                                            mode="max", save_best_only=True),
            keras.callbacks.EarlyStopping(monitor="val_robust_accuracy", mode="max",
                                          patience=5)])
        values = history.history["val_robust_accuracy"]
        self.assertLen(values, 3)
        self.assertTrue(all(0.0 <= v <= 1.0 for v in values))
        with open(csv_path) as f:
            self.assertIn("val_robust_accuracy", f.readline())
        self.assertTrue(os.path.exists(checkpoint))

    def test_value_is_the_accuracy_on_the_attacks_images(self):
        images, labels = data(48)
        model = user_model()
        attack = PGD(0.05, 0.02, 4, random_start=False)  # deterministic
        callback = RobustAccuracy((images, labels), attack, max_examples=40, batch_size=16)
        callback.set_model(model)
        adversarial = attack.attack(lambda x: model(x), images[:40], labels[:40]).adversarial_images
        expected = np.mean(np.argmax(model(adversarial), axis=1) == labels[:40])
        self.assertAllClose(callback.robust_accuracy(), expected)
        clean = np.mean(np.argmax(model(images[:40]), axis=1) == labels[:40])
        self.assertLessEqual(callback.robust_accuracy(), clean)

    def test_every_n_epochs(self):
        images, labels = data(32)
        model = user_model()
        model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True))
        history = model.fit(images, labels, epochs=4, batch_size=32, verbose=0, callbacks=[
            RobustAccuracy(tf.data.Dataset.from_tensor_slices((images, labels)).batch(16),
                           PGD(0.03, 0.01, 2), every_n_epochs=2)])
        # Keras' History keeps a key from its first appearance (epoch 2 here).
        self.assertLen(history.history["val_robust_accuracy"], 2)

    def test_errors(self):
        images, labels = data(8)
        with self.assertRaisesRegex(ValueError, "`attack` must be an Attack"):
            RobustAccuracy((images, labels), "pgd")
        with self.assertRaisesRegex(ValueError, "`every_n_epochs` must be an int >= 1"):
            RobustAccuracy((images, labels), PGD(0.03, 0.01, 2), every_n_epochs=0)


class AttentionMapsTest(tf.test.TestCase):

    def test_writes_images_maps_and_predictions_to_tensorboard(self):
        images, labels = data(64)
        network = with_feature_outputs(user_model(), {"conv": "conv"})
        trainer = AdversarialTrainer(network, get_defense("at_alp", attention_groups=None),
                                     attack=PGD(0.03, 0.01, 2))
        trainer.compile(optimizer="adam")
        log_dir = os.path.join(self.get_temp_dir(), "attention")
        trainer.fit(images, labels, epochs=2, batch_size=32, verbose=0, callbacks=[
            AttentionMaps(images[:4], labels[:4], log_dir)])
        tags = event_tags(log_dir)
        for tag in ("images/clean", "images/adversarial", "attention/conv/clean",
                    "attention/conv/adversarial", "predictions"):
            self.assertEqual(tags.get(tag), 2, (tag, tags))

    def test_needs_known_groups_and_an_attack(self):
        images, labels = data(4)
        network = with_feature_outputs(user_model(), {"conv": "conv"})
        callback = AttentionMaps(images, labels, self.get_temp_dir(), groups=("nope",),
                                 attack=PGD(0.03, 0.01, 1), network=network)
        callback.set_model(network)
        with self.assertRaisesRegex(ValueError, r"no feature map named \['nope'\]"):
            callback.on_epoch_end(0)
        callback = AttentionMaps(images, labels, self.get_temp_dir(), network=network)
        callback.set_model(network)
        with self.assertRaisesRegex(ValueError, "needs an `attack`"):
            callback.on_epoch_end(0)


if __name__ == "__main__":
    tf.test.main()
