"""Tests of tf_atalp.export: the serving signature and white-box attacks through it."""

import json
import os
from unittest import mock

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tests.evaluation_fixtures import IMAGE_SIZE, NUM_CLASSES, temporary_folder, tiny_resnet
from tf_atalp.attacks import PGD, inference_logits
from tf_atalp.export import export_saved_model, load_serving_model, read_class_names

CLASS_NAMES = ("cat", "dog", "fox", "owl")


def images_batch(n, seed=0):
    return tf.random.stateless_uniform([n, IMAGE_SIZE, IMAGE_SIZE, 3], [seed, 7])


@tf.function
def input_gradient(model, images, labels):
    """d(sum of cross-entropy)/d(images); in a tf.function, as the attacks take it."""
    with tf.GradientTape() as tape:
        tape.watch(images)
        logits = model(images, training=False)
        if isinstance(logits, dict):
            logits = logits["logits"]
        loss = tf.reduce_sum(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    return tape.gradient(loss, images)


class ExportTest(tf.test.TestCase, parameterized.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.network = tiny_resnet()
        cls.export_dir = export_saved_model(
            cls.network, os.path.join(temporary_folder(cls), "saved_model"))
        cls.signature = tf.saved_model.load(cls.export_dir).signatures["serving_default"]

    @parameterized.parameters(1, 3, 8)
    def test_signature_predicts_what_the_keras_model_predicts(self, batch_size):
        loaded = tf.saved_model.load(self.export_dir)
        images = images_batch(batch_size)
        outputs = loaded.signatures["serving_default"](images=images)
        expected = self.network(images, training=False)["logits"]
        self.assertEqual(set(outputs), {"logits", "probabilities"})
        self.assertEqual(outputs["logits"].shape, (batch_size, NUM_CLASSES))
        self.assertEqual(outputs["logits"].dtype, tf.float32)
        self.assertAllClose(outputs["logits"], expected, atol=1e-5)
        self.assertAllClose(outputs["probabilities"], tf.nn.softmax(expected), atol=1e-6)

    def test_keras_tfsmlayer_predicts_what_the_keras_model_predicts(self):
        # The export is a Keras ExportArchive: Keras itself can load it back as a layer.
        layer = keras.layers.TFSMLayer(self.export_dir, call_endpoint="serving_default")
        images = images_batch(4, seed=3)
        outputs = layer(images)
        self.assertAllClose(outputs["logits"], self.network(images, training=False)["logits"],
                            atol=1e-5)
        self.assertAllClose(outputs["probabilities"],
                            tf.nn.softmax(outputs["logits"]), atol=1e-6)

    def test_signature_takes_float_images_of_any_batch_size(self):
        signature = tf.saved_model.load(self.export_dir).signatures["serving_default"]
        _, inputs = signature.structured_input_signature
        self.assertEqual(list(inputs), ["images"])
        self.assertEqual(inputs["images"].shape.as_list(), [None, IMAGE_SIZE, IMAGE_SIZE, 3])
        self.assertEqual(inputs["images"].dtype, tf.float32)

    def test_serving_model_gives_logits_and_sizes(self):
        model = load_serving_model(self.export_dir)
        self.assertEqual((model.image_size, model.num_classes), (IMAGE_SIZE, NUM_CLASSES))
        images = images_batch(3)
        self.assertAllClose(model(images), self.network(images)["logits"], atol=1e-5)

    def test_gradients_flow_through_the_serving_model(self):
        model = load_serving_model(self.export_dir)
        images, labels = images_batch(4), tf.constant([0, 1, 2, 3])
        served = input_gradient(model, images, labels)
        expected = input_gradient(self.network, images, labels)
        self.assertGreater(float(tf.reduce_max(tf.abs(served))), 0.0)
        self.assertAllClose(served, expected, atol=1e-5)

    def test_pgd_step_through_serving_model_equals_step_on_keras_model(self):
        model = load_serving_model(self.export_dir)
        images, labels = images_batch(8, seed=3), tf.constant([0, 1, 2, 3] * 2)
        attack = PGD(epsilon=0.05, step_size=0.01, iterations=1, random_start=False)
        served, expected = (attack.attack(inference_logits(net), images, labels)
                            .adversarial_images.numpy() for net in (model, self.network))
        self.assertAllEqual(served, expected)
        self.assertAllClose(np.abs(served - images.numpy()).max(), 0.01)

    def test_serving_model_refuses_training_mode_and_wrong_sizes(self):
        model = load_serving_model(self.export_dir)
        with self.assertRaisesRegex(ValueError, "inference mode only.*training=True"):
            model(images_batch(2), training=True)
        with self.assertRaisesRegex(ValueError, r"`images` must be \[N, 32, 32, 3\]"):
            model(tf.zeros([2, 16, 16, 3]))

    @parameterized.parameters([[2, 16, 16, 3]], [[2, 48, 48, 3]], [[2, 32, 48, 3]],
                              [[2, 32, 32, 1]], [[32, 32, 3]])
    def test_signature_refuses_images_of_another_shape(self, shape):
        with self.assertRaisesRegex(
                tf.errors.InvalidArgumentError,
                r"images must be \[N, 32, 32, 3\] float32 in \[0, 1\]; "
                r"received height/width/channels"):
            self.signature(images=tf.zeros(shape))

    @parameterized.named_parameters(
        ("uint8_range", lambda x: x * 255.0), ("negative", lambda x: x - 0.5),
        ("just_above_one", lambda x: x + (1.0 + 1e-6 - tf.reduce_max(x))), ("nan", lambda x: x + float("nan")))
    def test_signature_refuses_pixels_outside_zero_one(self, transform):
        images = transform(images_batch(2))
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                    r"float pixels in \[0, 1\] \(divide uint8 images by 255\)"):
            self.signature(images=images)
        with self.assertRaises(tf.errors.InvalidArgumentError):
            load_serving_model(self.export_dir)(images)

    def test_signature_takes_the_ends_of_the_range(self):
        for value in (0.0, 1.0):
            images = tf.fill([2, IMAGE_SIZE, IMAGE_SIZE, 3], value)
            self.assertAllClose(self.signature(images=images)["logits"],
                                self.network(images)["logits"], atol=1e-5)

    def test_serving_info_describes_the_signature(self):
        with open(os.path.join(self.export_dir, "assets", "serving_info.json")) as f:
            info = json.load(f)
        self.assertEqual(info["signature"], "serving_default")
        self.assertEqual(info["inputs"]["images"]["shape"], [None, IMAGE_SIZE, IMAGE_SIZE, 3])
        self.assertEqual(info["inputs"]["images"]["dtype"], "float32")
        self.assertEqual(info["inputs"]["images"]["range"], [0.0, 1.0])
        for output in ("logits", "probabilities"):
            self.assertEqual(info["outputs"][output]["shape"], [None, NUM_CLASSES])
        self.assertIn("InvalidArgumentError", info["invalid_input"])
        self.assertIsNone(info["class_names"])

    def test_export_without_class_names_has_none(self):
        self.assertIsNone(read_class_names(self.export_dir))
        self.assertIsNone(load_serving_model(self.export_dir).class_names)
        self.assertFalse(os.path.exists(
            os.path.join(self.export_dir, "assets", "class_names.txt")))

    def test_load_serving_model_names_a_missing_saved_model(self):
        with self.assertRaisesRegex(FileNotFoundError, "saved_model.pb"):
            load_serving_model(temporary_folder(self))


def half_write_then(error):
    """A stand-in for ExportArchive.write_out that writes part of a SavedModel, then fails."""
    def write_out(archive, filepath, **kwargs):
        os.makedirs(os.path.join(filepath, "variables"))
        with open(os.path.join(filepath, "saved_model.pb"), "wb") as f:
            f.write(b"\x00half")
        raise error
    return mock.patch.object(type(keras.export.ExportArchive()), "write_out",
                             autospec=True, side_effect=write_out)


class ExportWritingTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.parent = temporary_folder(self)
        self.export_dir = os.path.join(self.parent, "saved_model")

    def test_export_replaces_an_existing_saved_model_and_leaves_no_temp_folders(self):
        first, second = tiny_resnet(seed=1), tiny_resnet(seed=2)
        export_saved_model(first, self.export_dir)
        export_saved_model(second, self.export_dir)
        self.assertEqual(os.listdir(self.parent), ["saved_model"])
        images = images_batch(2)
        self.assertAllClose(load_serving_model(self.export_dir)(images),
                            second(images)["logits"], atol=1e-5)

    def test_interrupted_export_keeps_the_old_saved_model(self):
        network = tiny_resnet()
        export_saved_model(network, self.export_dir)
        with half_write_then(KeyboardInterrupt()):
            with self.assertRaises(KeyboardInterrupt):
                export_saved_model(tiny_resnet(seed=5), self.export_dir)
        self.assertEqual(os.listdir(self.parent), ["saved_model"])
        images = images_batch(2)
        self.assertAllClose(load_serving_model(self.export_dir)(images),
                            network(images)["logits"], atol=1e-5)

    def test_failed_rename_puts_the_old_saved_model_back(self):
        network = tiny_resnet()
        export_saved_model(network, self.export_dir)
        rename = os.rename

        def fail_on_the_new_model(source, target):
            if target == self.export_dir and os.path.basename(source) == "saved_model":
                raise OSError("rename failed")  # the new model; the old one is "previous"
            rename(source, target)

        with mock.patch("os.rename", side_effect=fail_on_the_new_model):
            with self.assertRaisesRegex(OSError, "rename failed"):
                export_saved_model(tiny_resnet(seed=5), self.export_dir)
        self.assertEqual(os.listdir(self.parent), ["saved_model"])
        images = images_batch(2)
        self.assertAllClose(load_serving_model(self.export_dir)(images),
                            network(images)["logits"], atol=1e-5)

    def test_interrupted_first_export_leaves_nothing(self):
        with half_write_then(OSError("disk full")):
            with self.assertRaisesRegex(OSError, "disk full"):
                export_saved_model(tiny_resnet(), self.export_dir)
        self.assertEqual(os.listdir(self.parent), [])

    def test_export_refuses_to_overwrite_a_folder_that_is_not_a_saved_model(self):
        os.makedirs(self.export_dir)
        with open(os.path.join(self.export_dir, "notes.txt"), "w") as f:
            f.write("keep me")
        with self.assertRaisesRegex(ValueError, "`export_dir` must be a new folder"):
            export_saved_model(tiny_resnet(), self.export_dir)
        self.assertEqual(os.listdir(self.export_dir), ["notes.txt"])


class ExportClassNamesTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.parent = temporary_folder(self)
        self.export_dir = os.path.join(self.parent, "saved_model")

    def test_class_names_round_trip_through_tracked_assets(self):
        export_saved_model(tiny_resnet(), self.export_dir, class_names=list(CLASS_NAMES))
        self.assertEqual(read_class_names(self.export_dir), CLASS_NAMES)
        self.assertEqual(load_serving_model(self.export_dir).class_names, CLASS_NAMES)
        with open(os.path.join(self.export_dir, "assets", "class_names.txt")) as f:
            self.assertEqual(f.read(), "cat\ndog\nfox\nowl\n")
        with open(os.path.join(self.export_dir, "assets", "serving_info.json")) as f:
            self.assertEqual(json.load(f)["class_names"], list(CLASS_NAMES))
        loaded = tf.saved_model.load(self.export_dir)  # Assets of the SavedModel, not stray files
        for attribute, name in (("class_names_file", "class_names.txt"),
                                ("serving_info_file", "serving_info.json")):
            path = getattr(loaded, attribute).asset_path.numpy().decode()
            self.assertEqual(path, os.path.join(self.export_dir, "assets", name))

    def test_mismatched_class_names_are_refused_before_any_write(self):
        with self.assertRaisesRegex(ValueError, r"`class_names` must have K=4 entries.*Received: 3"):
            export_saved_model(tiny_resnet(), self.export_dir, class_names=CLASS_NAMES[:3])
        self.assertEqual(os.listdir(self.parent), [])

    def test_class_names_must_be_strings_on_one_line(self):
        for bad in ("catdogfoxowl", ["cat", "dog", "fox", 4], ["cat", "dog", "f\nox", "owl"],
                    ["cat", "", "fox", "owl"]):
            with self.assertRaisesRegex(ValueError, "`class_names` must"):
                export_saved_model(tiny_resnet(), self.export_dir, class_names=bad)
        self.assertEqual(os.listdir(self.parent), [])

    def test_reexport_without_class_names_drops_them(self):
        export_saved_model(tiny_resnet(), self.export_dir, class_names=CLASS_NAMES)
        export_saved_model(tiny_resnet(), self.export_dir)
        self.assertIsNone(read_class_names(self.export_dir))


if __name__ == "__main__":
    tf.test.main()
