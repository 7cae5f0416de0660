"""Tests of the TFDS source: our builders built from the real data, tfds.load via mock_data."""

import collections
import dataclasses
import os
import tempfile
from unittest import mock

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl.testing import parameterized

from tests.real_data import shared_data_dir
from tests.tfds_fixtures import load_labels_and_names
from tf_atalp.data import DataConfig, get_dataset_info, make_dataset, validate_data_config
from tf_atalp.data import flowers17, tfds_flowers17
from tf_atalp.data.tfds_imagenet4 import Imagenet4Config

SIZE = 32


def write_jpeg(path, seed=0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    tf.io.write_file(path, tf.io.encode_jpeg(pixels))


class RealDataBuildersTest(tf.test.TestCase, parameterized.TestCase):
    """Builds oxford_flowers17 (about 2 s) and imagenet4 once, from ../shared/data."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        tfds.disable_progress_bar()
        cls.data_dir = tempfile.mkdtemp()
        cls.flowers = DataConfig("flowers17", source="tfds", data_dir=cls.data_dir,
                                 manual_dir=shared_data_dir("flowers17"), image_size=SIZE,
                                 batch_size=16, shuffle_buffer=64)
        cls.imagenet = DataConfig("imagenet4", source="tfds", data_dir=cls.data_dir,
                                  manual_dir=shared_data_dir("imagenet4"), image_size=SIZE,
                                  batch_size=8)
        cls.flowers_info = get_dataset_info(cls.flowers)
        cls.imagenet_info = get_dataset_info(cls.imagenet)

    def test_flowers17_counts_and_classes(self):
        info = self.flowers_info
        self.assertEqual((info.num_classes, info.num_train, info.num_test), (17, 1088, 272))
        self.assertEqual(info.class_names, flowers17.CLASS_NAMES)

    def test_flowers17_split_follows_file_numbers(self):
        for split, positions in (("train", range(0, 64)), ("test", range(64, 80))):
            examples = load_labels_and_names("oxford_flowers17", self.data_dir, split)
            self.assertEqual(set(collections.Counter(l for l, _ in examples).values()),
                             {len(positions)})
            for label, file_name in examples:
                number = flowers17.file_number(os.path.basename(file_name))
                self.assertEqual(flowers17.class_of(number), label)
                self.assertIn((number - 1) % 80, positions)

    def test_imagenet4_counts_and_classes(self):
        info = self.imagenet_info
        self.assertEqual((info.num_train, info.num_test), (160, 40))
        self.assertEqual(info.class_names, ("n01440764", "n01443537", "n01484850", "n02102040"))

    @parameterized.parameters(("flowers", 16, 17), ("imagenet", 8, 4))
    def test_pipeline_reads_the_built_dataset(self, which, batch_size, num_classes):
        config = getattr(self, which)
        images, labels = next(iter(make_dataset(config, "train", training=True)))
        self.assertEqual(images.shape, (batch_size, SIZE, SIZE, 3))
        self.assertAllInRange(images, 0.0, 1.0)
        self.assertAllInRange(labels, 0, num_classes - 1)

    def test_imagenet_subset_config(self):
        config = Imagenet4Config(name="fish2", wnids=("n01443537", "n01440764"))
        builder = tfds.builder("imagenet4", config=config, data_dir=tempfile.mkdtemp())
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
                manual_dir=shared_data_dir("imagenet4")))
        self.assertEqual(builder.info.features["label"].names, ["n01443537", "n01440764"])
        self.assertEqual(builder.info.splits["train"].num_examples, 80)
        self.assertEqual(builder.info.splits["test"].num_examples, 20)

    def test_unknown_split_name_is_an_error(self):
        config = DataConfig("flowers17", source="tfds", data_dir=self.data_dir,
                            tfds_test_split="validation")
        with self.assertRaisesRegex(ValueError, "Received: tfds_test_split='validation'"):
            validate_data_config(config)


class Flowers17ManualLayoutsTest(tf.test.TestCase, parameterized.TestCase):

    def build(self, manual_dir, **builder_kwargs):
        builder = tfds.builder("oxford_flowers17", data_dir=tempfile.mkdtemp(), **builder_kwargs)
        builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
        return builder.data_dir

    @parameterized.parameters("jpg", "")
    def test_flat_layout_classes_come_from_numbers(self, subfolder):
        manual_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
        for number in (1, 65, 81, 1360):
            write_jpeg(os.path.join(manual_dir, subfolder, f"image_{number:04d}.jpg"), number)
        data_dir = os.path.dirname(os.path.dirname(self.build(manual_dir)))
        train = load_labels_and_names("oxford_flowers17", data_dir, "train")
        test = load_labels_and_names("oxford_flowers17", data_dir, "test")
        self.assertCountEqual([label for label, _ in train], [0, 1])
        self.assertCountEqual([label for label, _ in test], [0, 16])

    def test_without_manual_dir_downloads_the_official_archive(self):
        extracted = tempfile.mkdtemp(dir=self.get_temp_dir())
        for number in (80, 81):
            write_jpeg(os.path.join(extracted, "jpg", f"image_{number:04d}.jpg"), number)
        with mock.patch.object(tfds.download.DownloadManager, "download_and_extract",
                               return_value=extracted) as download:
            builder = tfds.builder("oxford_flowers17", data_dir=tempfile.mkdtemp())
            builder.download_and_prepare()
        download.assert_called_once_with(tfds_flowers17.URL)
        self.assertEqual(builder.info.splits["train"].num_examples, 1)
        self.assertEqual(builder.info.splits["test"].num_examples, 1)

    def test_corrupt_file_raises_or_is_skipped(self):
        manual_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
        for number in (1, 65):
            write_jpeg(os.path.join(manual_dir, "jpg", f"image_{number:04d}.jpg"), number)
        broken = os.path.join(manual_dir, "jpg", "image_0003.jpg")
        with open(broken, "wb") as f:
            f.write(b"not a jpeg")
        with self.assertRaisesRegex(ValueError, f"Corrupt image file '{broken}'"):
            self.build(manual_dir)
        with self.assertLogs(level="WARNING") as logs:
            self.build(manual_dir, skip_corrupt=True)
        self.assertRegex("\n".join(logs.output),
                         r"Skipped 1 corrupt image file\(s\) of 2 in the train split")


class MockedTfdsLoadTest(tf.test.TestCase, parameterized.TestCase):

    CONFIG = DataConfig("tfds:cats_vs_dogs", image_size=SIZE, batch_size=4,
                        tfds_train_split="train[:80%]", tfds_test_split="train[80%:]")

    @parameterized.parameters(("train", True, [4, 4]), ("test", False, [4, 4, 2]))
    def test_load_path(self, split, training, batch_sizes):
        with tfds.testing.mock_data(num_examples=10):
            validate_data_config(self.CONFIG)
            batches = list(make_dataset(self.CONFIG, split, training))
        self.assertEqual([int(x.shape[0]) for x, _ in batches], batch_sizes)
        for images, labels in batches:
            self.assertEqual(images.shape[1:], (SIZE, SIZE, 3))
            self.assertEqual((images.dtype, labels.dtype), (tf.float32, tf.int32))
            self.assertAllInRange(images, 0.0, 1.0)
            self.assertAllInRange(labels, 0, 1)

    @staticmethod
    def fake_records(label, failing_index=-1):
        """A mock `as_dataset`: 4 records with `label`; reading record `failing_index` fails."""
        def record(index):
            readable = tf.debugging.assert_none_equal(index, tf.constant(failing_index, tf.int64),
                                                      message="undecodable record")
            with tf.control_dependencies([readable]):
                image = tf.fill([8, 8, 3], tf.cast(index, tf.uint8))
            return {"image": image, "label": tf.constant(label, tf.int64),
                    "image/filename": tf.constant("x.jpg")}

        def as_dataset(builder, *args, **kwargs):
            del builder, args, kwargs
            return tf.data.Dataset.range(4).map(record)

        return as_dataset

    def test_labels_out_of_range_stop_the_pipeline(self):
        with tfds.testing.mock_data(as_dataset_fn=self.fake_records(label=5)):
            dataset = make_dataset(self.CONFIG, "test", training=False)
            with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                        r"Labels of tfds:cats_vs_dogs must be in \[0, 2\)"):
                list(dataset)

    @parameterized.parameters(True, False)
    def test_undecodable_records_fail_or_are_skipped(self, skip_corrupt):
        config = dataclasses.replace(self.CONFIG, skip_corrupt=skip_corrupt)
        with tfds.testing.mock_data(as_dataset_fn=self.fake_records(label=1, failing_index=2)):
            dataset = make_dataset(config, "test", training=False)
            if skip_corrupt:
                self.assertEqual(sum(int(x.shape[0]) for x, _ in dataset), 3)
            else:
                with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "undecodable record"):
                    list(dataset)

    def test_unknown_tfds_dataset_is_an_error(self):
        with self.assertRaisesRegex(ValueError, "Received: dataset='tfds:no_such_dataset'"):
            validate_data_config(DataConfig("tfds:no_such_dataset"))


if __name__ == "__main__":
    tf.test.main()
