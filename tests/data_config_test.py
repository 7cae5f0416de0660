"""Tests of tf_atalp.data.config: validation in DataConfig and source resolution."""

import dataclasses

import tensorflow as tf
from absl.testing import parameterized

from tf_atalp.data import DataConfig


class DataConfigTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.parameters(
            ("synthetic", "auto", "synthetic", ""),
            ("tfds:cats_vs_dogs", "auto", "tfds", "cats_vs_dogs"),
            ("tfds:oxford_flowers102", "tfds", "tfds", "oxford_flowers102"),
            ("flowers17", "auto", "folder", ""),
            ("flowers17", "tfds", "tfds", "oxford_flowers17"),
            ("imagenet4", "tfds", "tfds", "imagenet4"),
            ("dogs_vs_cats", "tfds", "tfds", "dogs_vs_cats"),
            ("dogs_vs_cats", "folder", "folder", ""),
    )
    def test_resolves_source_and_tfds_name(self, dataset, source, resolved, tfds_name):
        config = DataConfig(dataset, data_dir="/some/dir", source=source)
        self.assertEqual(config.resolved_source, resolved)
        self.assertEqual(config.tfds_name, tfds_name)

    @parameterized.named_parameters(
            ("small_image", dict(image_size=8),
             "`image_size` must be >= 32. Received: image_size=8"),
            ("unknown_dataset", dict(dataset="cifar"), "Received: dataset='cifar'"),
            ("empty_tfds_name", dict(dataset="tfds:"), "Received: dataset='tfds:'"),
            ("unknown_source", dict(source="web"), "Received: source='web'"),
            ("batch_size", dict(batch_size=0), "Received: batch_size=0"),
            ("shuffle_buffer", dict(shuffle_buffer=0), "Received: shuffle_buffer=0"),
            ("seed", dict(seed=-1), "Received: seed=-1"),
            ("synthetic_classes", dict(synthetic_num_classes=1), "synthetic_num_classes=1"),
            ("synthetic_size", dict(synthetic_train_size=0), "synthetic_train_size=0"),
            ("test_fraction", dict(test_fraction=1.0), "Received: test_fraction=1.0"),
            ("expected_classes", dict(expected_num_classes=1), "expected_num_classes=1"),
            ("synthetic_from_tfds", dict(source="tfds"), "for dataset='synthetic'"),
            ("manual_dir_without_tfds", dict(manual_dir="/m"), "`manual_dir` is only used"),
    )
    def test_rejects_bad_values(self, changes, message):
        fields = dict(dataset="synthetic")
        fields.update(changes)
        with self.assertRaisesRegex(ValueError, message.replace("(", r"\(")):
            DataConfig(**fields)

    @parameterized.parameters(
            dict(dataset="folder", source="auto", data_dir=None, message="`data_dir` must be set"),
            dict(dataset="folder", source="tfds", data_dir="/d", message="needs a TFDS builder"),
            dict(dataset="tfds:mnist", source="folder", data_dir="/d", message="'auto' or 'tfds'"),
    )
    def test_rejects_bad_source_combinations(self, dataset, source, data_dir, message):
        with self.assertRaisesRegex(ValueError, message):
            DataConfig(dataset, data_dir=data_dir, source=source)

    def test_is_frozen(self):
        config = DataConfig("synthetic")
        with self.assertRaises(dataclasses.FrozenInstanceError):
            config.image_size = 64


if __name__ == "__main__":
    tf.test.main()
