"""Tests of the callbacks that watch robustness: RobustAccuracy and AttentionMaps."""

import contextlib
import glob
import io
import math
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from tests.image_folder_fixtures import write_image_folder
from tf_atalp.attacks import PGD
from tf_atalp.data import DataConfig, make_dataset
from tf_atalp.data.subset import balanced_subset, split_labels
from tf_atalp.data.synthetic import make_synthetic_arrays
from tf_atalp.defenses import get_defense
from tf_atalp.model_dir import last_epoch_metrics, read_history
from tf_atalp.models import with_feature_outputs
from tf_atalp.training import AdversarialTrainer
from tf_atalp.training.callbacks import AttentionMaps, HistoryCSV, RobustAccuracy

IMAGE_SIZE = 16
NUM_CLASSES = 4
FOLDER_IMAGE_SIZE = 32  # the pipeline's smallest


def user_model(seed=0):
    """A plain user's functional model: logits only."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inputs)
    logits = keras.layers.Dense(NUM_CLASSES)(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, logits)


def always_first_class_model(image_size):
    """Predicts class 0 for every image (zero weights, bias favouring 0): under any attack
    its accuracy is the share of class 0 in the images."""
    inputs = keras.Input((image_size, image_size, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    logits = keras.layers.Dense(3, kernel_initializer="zeros",
                                bias_initializer=keras.initializers.Constant([1.0, 0.0, 0.0]))(
        pooled)
    return keras.Model(inputs, logits)


def class_sorted_test_split(root, per_class=8):
    """The test split of an image folder with classes a, b, c: batches of 4, class by class,
    cached (the train_main pipeline, unaugmented)."""
    write_image_folder(os.path.join(root, "train"), {name: 2 for name in "abc"},
                       size=FOLDER_IMAGE_SIZE)
    write_image_folder(os.path.join(root, "test"), {name: per_class for name in "abc"},
                       size=FOLDER_IMAGE_SIZE)
    config = DataConfig(dataset="folder", data_dir=root, image_size=FOLDER_IMAGE_SIZE,
                        batch_size=4)
    return make_dataset(config, "test", training=False)


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
        chosen = balanced_subset(labels, 40)
        adversarial = attack.attack(lambda x: model(x), images[chosen],
                                    labels[chosen]).adversarial_images
        expected = np.mean(np.argmax(model(adversarial), axis=1) == labels[chosen])
        self.assertAllClose(callback.robust_accuracy(), expected)
        clean = np.mean(np.argmax(model(images[chosen]), axis=1) == labels[chosen])
        self.assertLessEqual(callback.robust_accuracy(), clean)

    def test_a_class_sorted_folder_split_is_measured_on_every_class(self):
        # 24 test images listed class by class: the first 6 are all class "a".
        test = class_sorted_test_split(tempfile.mkdtemp(dir=self.get_temp_dir()))
        self.assertAllEqual(split_labels(test)[:6], [0] * 6)
        callback = RobustAccuracy(test, PGD(0.03, 0.01, 2), max_examples=6, batch_size=4,
                                  class_names=("a", "b", "c"))
        self.assertAllEqual(callback.labels, [0, 0, 1, 1, 2, 2])
        self.assertEqual(callback.subset["per_class"], {"a": 2, "b": 2, "c": 2})
        callback.set_model(always_first_class_model(FOLDER_IMAGE_SIZE))
        # Class a's share of the images: 2/6 (the first six images would give 1.0).
        self.assertAllClose(callback.robust_accuracy(), 2 / 6)

    def test_reads_the_data_once_and_attacks_the_same_images_every_epoch(self):
        images, labels = data(24)
        passes = []

        def batches():
            passes.append(len(passes))
            for start in range(0, 24, 8):
                yield images[start:start + 8], labels[start:start + 8]

        dataset = tf.data.Dataset.from_generator(batches, output_signature=(
            tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 3], tf.float32),
            tf.TensorSpec([None], tf.int32)))
        callback = RobustAccuracy(dataset, PGD(0.03, 0.01, 2), max_examples=12)
        self.assertLen(passes, 2)  # the labels, then the chosen images
        chosen = callback.images.copy()
        model = user_model()
        model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True))
        model.fit(images, labels, epochs=3, batch_size=8, verbose=0, callbacks=[callback])
        self.assertLen(passes, 2)
        self.assertAllEqual(callback.images, chosen)
        self.assertAllEqual(chosen, images[balanced_subset(labels, 12)])

    def test_log_line_and_description_name_the_attack_and_the_classes(self):
        images, labels = data(48)  # 12 of each of the 4 classes
        callback = RobustAccuracy((images, labels), PGD(0.03, 0.01, 2), max_examples=20,
                                  verbose=1)
        callback.set_model(user_model())
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            callback.on_epoch_end(0, logs := {})
        self.assertIn("Epoch 1: val_robust_accuracy", printed.getvalue())
        self.assertIn("white-box attack pgd, epsilon 0.03, step_size 0.01, iterations 2; "
                      "20 of 48 images, class-balanced: 4 classes, 5 each",
                      printed.getvalue())
        self.assertIn("val_robust_accuracy", logs)
        described = callback.describe()
        self.assertEqual(described["subset"]["per_class"], {str(k): 5 for k in range(4)})
        self.assertEqual(described["attack"]["epsilon"], 0.03)

    def test_every_n_epochs(self):
        images, labels = data(32)
        model = user_model()
        model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True))
        csv_path = os.path.join(self.get_temp_dir(), "every_n", "history.csv")
        os.makedirs(os.path.dirname(csv_path))
        history = model.fit(images, labels, epochs=5, batch_size=32, verbose=0, callbacks=[
            RobustAccuracy(tf.data.Dataset.from_tensor_slices((images, labels)).batch(16),
                           PGD(0.03, 0.01, 2), every_n_epochs=2),
            HistoryCSV(csv_path, columns=("val_robust_accuracy",))])
        # Measured after epochs 2 and 4 and the last (5); Keras' History lists those.
        self.assertLen(history.history["val_robust_accuracy"], 3)
        # history.csv has the column from epoch 1, nan where it was not measured.
        rows = read_history(csv_path)
        self.assertEqual([row["epoch"] for row in rows], ["1", "2", "3", "4", "5"])
        measured = [math.isfinite(float(row["val_robust_accuracy"])) for row in rows]
        self.assertEqual(measured, [False, True, False, True, True])
        self.assertAllClose([float(rows[i]["val_robust_accuracy"]) for i in (1, 3, 4)],
                            history.history["val_robust_accuracy"])
        self.assertIn("val_robust_accuracy", last_epoch_metrics(rows))
        self.assertNotIn("val_robust_accuracy", last_epoch_metrics(rows[:3]))

    def test_errors(self):
        images, labels = data(8)
        with self.assertRaisesRegex(ValueError, "`attack` must be an Attack"):
            RobustAccuracy((images, labels), "pgd")
        with self.assertRaisesRegex(ValueError, "`every_n_epochs` must be an int >= 1"):
            RobustAccuracy((images, labels), PGD(0.03, 0.01, 2), every_n_epochs=0)
        with self.assertRaisesRegex(ValueError, "yielded no examples"):
            RobustAccuracy((images[:0], labels[:0]), PGD(0.03, 0.01, 2))


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
