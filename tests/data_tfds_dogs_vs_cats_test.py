"""Tests of the `dogs_vs_cats` TFDS builder: made-up folders, bad manual dirs, the real data."""

import collections
import os
import tempfile

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl.testing import parameterized

from tests.real_data import shared_data_dir
from tests.tfds_fixtures import load_labels_and_names
from tf_atalp.data import DataConfig, get_dataset_info, make_dataset, validate_data_config
from tf_atalp.data.listing import list_image_folder
from tf_atalp.data.tfds_dogs_vs_cats import CLASS_NAMES

SIZE = 32
# A made-up manual dir: JPEG and PNG files, one of them grayscale.
TINY_FILES = {"train/cats/cat.1.jpg": 3, "train/cats/cat.2.png": 1, "train/dogs/dog.1.jpg": 3,
              "train/dogs/dog.2.jpg": 3, "test/cats/cat.3.png": 3, "test/dogs/dog.3.jpg": 1}
GRAY_FILE = "train/cats/cat.2.png"


def write_images(root, channels_by_file):
    """Writes a random 20 x 24 image per relative path (JPEG or PNG by extension)."""
    for index, (name, channels) in enumerate(sorted(channels_by_file.items())):
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        pixels = np.random.default_rng(index).integers(0, 256, (20, 24, channels), np.uint8)
        encode = tf.io.encode_png if name.endswith(".png") else tf.io.encode_jpeg
        tf.io.write_file(path, encode(pixels))


def tfds_config(data_dir, manual_dir, **kwargs):
    return DataConfig("dogs_vs_cats", source="tfds", data_dir=data_dir, manual_dir=manual_dir,
                      image_size=SIZE, **kwargs)


class TinyFolderTest(tf.test.TestCase):
    """Builds dogs_vs_cats once from TINY_FILES."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        tfds.disable_progress_bar()
        cls.manual_dir = tempfile.mkdtemp()
        write_images(cls.manual_dir, TINY_FILES)
        cls.data_dir = tempfile.mkdtemp()
        cls.config = tfds_config(cls.data_dir, cls.manual_dir, batch_size=2)
        validate_data_config(cls.config)
        cls.info = get_dataset_info(cls.config)

    def test_classes_and_sizes_agree_with_the_folder_source(self):
        folder_info = get_dataset_info(DataConfig("dogs_vs_cats", data_dir=self.manual_dir))
        self.assertEqual(self.info.class_names, ("cats", "dogs"))
        self.assertEqual((self.info.num_train, self.info.num_test), (4, 2))
        self.assertEqual((folder_info.class_names, folder_info.num_train, folder_info.num_test),
                         (self.info.class_names, self.info.num_train, self.info.num_test))

    def test_labels_agree_with_the_folder_listing(self):
        listing = list_image_folder(self.manual_dir, "dogs_vs_cats")
        for split in ("train", "test"):
            files = listing.split(split)
            expected = [(label, os.path.relpath(path, self.manual_dir))
                        for path, label in zip(files.paths, files.labels)]
            built = load_labels_and_names("dogs_vs_cats", self.data_dir, split)
            self.assertCountEqual(built, expected)
            for label, name in built:  # cats 0, dogs 1, by folder
                self.assertEqual(label, CLASS_NAMES.index(name.split("/")[1]))

    def test_grayscale_becomes_rgb(self):
        dataset = tfds.load("dogs_vs_cats", split="train", data_dir=self.data_dir)
        images = {ex["file_name"].decode(): ex["image"] for ex in dataset.as_numpy_iterator()}
        gray = images[GRAY_FILE]
        self.assertEqual(gray.shape, (20, 24, 3))
        self.assertAllEqual(gray[..., 0], gray[..., 1])
        self.assertAllEqual(gray[..., 0], gray[..., 2])
        self.assertEqual({image.shape[-1] for image in images.values()}, {3})

    def test_pipeline_reads_the_built_dataset(self):
        batches = list(make_dataset(self.config, "test", training=False))
        self.assertEqual([tuple(images.shape) for images, _ in batches], [(2, SIZE, SIZE, 3)])
        self.assertCountEqual(batches[0][1].numpy().tolist(), [0, 1])


class BadManualDirTest(tf.test.TestCase, parameterized.TestCase):
    """A missing or malformed manual dir: one line, before anything is written."""

    @parameterized.named_parameters(
            ("unsplit", ["cats/1.jpg", "dogs/1.jpg"],
             "must come split into train/ and test/ sub-folders. Received: manual_dir="),
            ("no_test_folder", ["train/cats/1.jpg", "train/dogs/1.jpg"],
             "has a train/ folder but no held-out folder"),
            ("other_class_names", ["train/cat/1.jpg", "train/dog/1.jpg", "test/cat/2.jpg",
                                   "test/dog/2.jpg"],
             r"class folders must be \('cats', 'dogs'\). Received: \('cat', 'dog'\)"),
            ("third_class", ["train/birds/1.jpg", "train/cats/1.jpg", "train/dogs/1.jpg",
                             "test/cats/2.jpg", "test/dogs/2.jpg"],
             r"Received: \('birds', 'cats', 'dogs'\)"),
            ("test_without_dogs", ["train/cats/1.jpg", "train/dogs/1.jpg", "test/cats/2.jpg"],
             r"test split must hold images of \('cats', 'dogs'\).* "
             r"Received: test classes \('cats',\)"),
            ("empty_class_folder", ["train/cats/1.jpg", "train/dogs/", "test/cats/2.jpg",
                                    "test/dogs/2.jpg"], "holds no images"),
    )
    def test_malformed_folder_is_refused(self, names, message):
        manual_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
        for name in names:
            os.makedirs(os.path.join(manual_dir, os.path.dirname(name)), exist_ok=True)
            if not name.endswith("/"):
                open(os.path.join(manual_dir, name), "wb").close()  # listing decodes nothing
        self.assert_refused(manual_dir, message)

    def test_missing_folder_is_refused(self):
        missing = os.path.join(self.get_temp_dir(), "no_such_dir")
        self.assert_refused(missing, f"`manual_dir` must be an existing directory. "
                                     f"Received: manual_dir='{missing}'")

    def test_no_manual_dir_is_refused(self):
        self.assert_refused(None, "`manual_dir` must be set to build dogs_vs_cats")

    def assert_refused(self, manual_dir, message):
        data_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
        with self.assertRaisesRegex(ValueError, message) as raised:
            validate_data_config(tfds_config(data_dir, manual_dir))
        self.assertNotIn("\n", str(raised.exception))
        self.assertEqual(os.listdir(data_dir), [])

    def test_builder_without_manual_dir_raises_one_line(self):
        builder = tfds.builder("dogs_vs_cats", data_dir=tempfile.mkdtemp(dir=self.get_temp_dir()))
        empty = tempfile.mkdtemp(dir=self.get_temp_dir())
        message = "must be an existing, non-empty directory"
        with self.assertRaisesRegex(ValueError, message) as raised:
            builder.download_and_prepare(
                    download_config=tfds.download.DownloadConfig(manual_dir=empty))
        self.assertNotIn("\n", str(raised.exception))


class RealDataTest(tf.test.TestCase):

    def test_builds_the_papers_split(self):
        """Builds all 10000 images of ../shared/data/dogs_vs_cats."""
        tfds.disable_progress_bar()
        manual_dir = shared_data_dir("dogs_vs_cats")
        data_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
        info = get_dataset_info(tfds_config(data_dir, manual_dir))
        self.assertEqual((info.num_classes, info.num_train, info.num_test), (2, 8000, 2000))
        self.assertEqual(info.class_names, ("cats", "dogs"))
        folder_info = get_dataset_info(DataConfig("dogs_vs_cats", data_dir=manual_dir))
        self.assertEqual((folder_info.class_names, folder_info.num_train, folder_info.num_test),
                         (info.class_names, info.num_train, info.num_test))
        for split, per_class in (("train", 4000), ("test", 1000)):
            built = load_labels_and_names("dogs_vs_cats", data_dir, split)
            self.assertEqual(collections.Counter(label for label, _ in built),
                             {0: per_class, 1: per_class})
            self.assertTrue(all(name.startswith(f"{split}/{CLASS_NAMES[label]}/")
                                for label, name in built))


if __name__ == "__main__":
    tf.test.main()
