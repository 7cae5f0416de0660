"""Tests for tf_atalp.models.applications.build_applications_resnet."""

import os
import re

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tf_atalp.models import GROUP_NAMES, build_applications_resnet
from tf_atalp.models.applications import build_applications_backbone, stage_output_layer_names

IMAGE_SIZE = 32


def _images(n=2, seed=0):
    shape = (n, IMAGE_SIZE, IMAGE_SIZE, 3)
    return np.random.default_rng(seed).uniform(size=shape).astype("float32")


class BuildApplicationsResnetTest(tf.test.TestCase, parameterized.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        keras.utils.set_random_seed(0)
        cls.model = build_applications_resnet(50, num_classes=3, image_size=IMAGE_SIZE)

    def test_output_keys_and_shapes(self):
        outputs = self.model(_images(), training=False)
        self.assertEqual(set(outputs), {"logits", "features"})
        self.assertEqual(set(outputs["features"]), set(GROUP_NAMES))
        self.assertEqual(outputs["logits"].dtype, tf.float32)
        self.assertEqual(tuple(outputs["logits"].shape), (2, 3))
        expected = {"conv2_x": (8, 8, 256), "conv3_x": (4, 4, 512),
                    "conv4_x": (2, 2, 1024), "conv5_x": (1, 1, 2048)}
        for name, shape in expected.items():
            self.assertEqual(tuple(outputs["features"][name].shape), (2, *shape), name)

    def test_features_are_tapped_by_layer_name(self):
        # The backbone's layers are the model's own, so its stage outputs can be tapped.
        for group, layer in stage_output_layer_names(self.model).items():
            self.assertIs(self.model.output["features"][group], self.model.get_layer(layer).output)

    def test_caffe_preprocessing_inside_the_model(self):
        preprocessing = self.model.get_layer("caffe_preprocessing")
        to_backbone = keras.Model(self.model.input, preprocessing.output)
        x = _images()
        expected = keras.applications.resnet.preprocess_input(x * 255.0)
        self.assertAllClose(to_backbone(x), expected, atol=1e-3)

    @parameterized.parameters(
            (50, (3, 4, 6, 3)), (101, (3, 4, 23, 3)), (152, (3, 8, 36, 3)))
    def test_stage_outputs_are_the_last_blocks(self, depth, block_counts):
        backbone = build_applications_backbone(depth, IMAGE_SIZE)
        expected = {group: f"conv{stage}_block{count}_out"
                    for stage, group, count in zip(range(2, 6), GROUP_NAMES, block_counts)}
        self.assertEqual(stage_output_layer_names(backbone), expected)

    @parameterized.named_parameters(
            ("weights_h5", "backbone.weights.h5"), ("legacy_h5", "backbone.h5"))
    def test_loads_backbone_weights_from_local_file(self, file_name):
        source = build_applications_backbone(50, IMAGE_SIZE)
        path = os.path.join(self.get_temp_dir(), file_name)
        if file_name.endswith(".weights.h5"):
            source.save_weights(path)
        else:
            source.save(path)  # the legacy HDF5 format of the keras.applications weight files
        model = build_applications_resnet(50, 3, IMAGE_SIZE, weights_path=path)
        for layer_name in ("conv1_conv", "conv4_block6_2_conv", "conv5_block3_3_bn"):
            loaded, saved = model.get_layer(layer_name), source.get_layer(layer_name)
            for loaded_weight, saved_weight in zip(loaded.weights, saved.weights):
                self.assertAllEqual(loaded_weight, saved_weight)

    def test_missing_weights_file_names_the_path(self):
        path = os.path.join(self.get_temp_dir(), "missing.weights.h5")
        message = re.escape(f"No weights file found at weights_path='{path}'")
        with self.assertRaisesRegex(FileNotFoundError, message):
            build_applications_resnet(50, 3, IMAGE_SIZE, weights_path=path)

    def test_corrupt_weights_file_names_the_path(self):
        path = os.path.join(self.get_temp_dir(), "corrupt.weights.h5")
        with open(path, "w") as f:
            f.write("not an HDF5 file")
        message = f"Could not load .* weights_path='{re.escape(path)}'"
        with self.assertRaisesRegex(ValueError, message):
            build_applications_resnet(50, 3, IMAGE_SIZE, weights_path=path)

    @parameterized.parameters("imagenet", "https://storage.googleapis.com/resnet50_notop.h5")
    def test_downloads_are_refused(self, weights_path):
        message = "downloads are not possible here .* Pass the path of a local"
        with self.assertRaisesRegex(ValueError, message):
            build_applications_resnet(50, 3, IMAGE_SIZE, weights_path=weights_path)

    @parameterized.named_parameters(
            ("depth", dict(depth=18),
             r"`depth` must be one of \(50, 101, 152\). Received: depth=18"),
            ("image_size", dict(image_size=16),
             "`image_size` must be an int >= 32. Received: image_size=16"),
            ("suffix", dict(weights_path="weights.keras"),
             "`weights_path` must be a .h5 or .weights.h5 file"))
    def test_bad_arguments_raise(self, overrides, message):
        kwargs = dict(depth=50, num_classes=3, image_size=IMAGE_SIZE)
        kwargs.update(overrides)
        with self.assertRaisesRegex(ValueError, message):
            build_applications_resnet(**kwargs)


if __name__ == "__main__":
    tf.test.main()
