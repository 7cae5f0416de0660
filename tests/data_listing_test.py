"""Tests of tf_atalp.data.listing (split rules, errors) and the real-data counts."""

import collections
import os
import tempfile

import tensorflow as tf
from absl.testing import parameterized

from tests.real_data import shared_data_dir
from tf_atalp.data import DataConfig, get_dataset_info, validate_data_config
from tf_atalp.data.listing import list_image_folder


def touch_files(root, relative_paths):
    """Creates empty files (listing never decodes, so content does not matter)."""
    for relative in relative_paths:
        path = os.path.join(root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "wb").close()


def names(paths):
    return [os.path.relpath(p).split(os.sep)[-2:] for p in paths]


class ListImageFolderTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.parameters("test", "val", "validation")
    def test_split_layout(self, test_folder):
        root = tempfile.mkdtemp(dir=self.get_temp_dir())
        touch_files(root, ["train/b/2.jpg", "train/b/1.png", "train/a/x.JPEG",
                           f"{test_folder}/a/y.jpg", f"{test_folder}/b/z.jpg"])
        listing = list_image_folder(root)
        self.assertEqual(listing.class_names, ("a", "b"))
        self.assertEqual(names(listing.train.paths),
                         [["a", "x.JPEG"], ["b", "1.png"], ["b", "2.jpg"]])
        self.assertEqual(listing.train.labels, (0, 1, 1))
        self.assertEqual(listing.test.labels, (0, 1))
        # The run's dataset summary says which folder became the test split.
        self.assertIn(f"({test_folder}/ is the test split)", listing.split_rule)

    def test_test_is_preferred_and_the_unused_folder_is_named(self):
        root = tempfile.mkdtemp(dir=self.get_temp_dir())
        touch_files(root, ["train/a/1.jpg", "test/a/2.jpg", "validation/a/3.jpg"])
        listing = list_image_folder(root)
        self.assertEqual(names(listing.test.paths), [["a", "2.jpg"]])
        self.assertIn("validation/ not used", listing.split_rule)

    def test_unsplit_folder_puts_last_fifth_of_each_class_in_test(self):
        root = tempfile.mkdtemp(dir=self.get_temp_dir())
        touch_files(root, [f"cat/{i:02d}.jpg" for i in range(10)]
                    + ["dog/1.jpg", "dog/2.jpg", "dog/3.jpg"])
        listing = list_image_folder(root, "folder", test_fraction=0.2)
        self.assertEqual(names(listing.test.paths),
                         [["cat", "08.jpg"], ["cat", "09.jpg"], ["dog", "3.jpg"]])
        self.assertEqual(listing.test.labels, (0, 0, 1))
        self.assertLen(listing.train.paths, 10)

    def test_flowers17_rule_uses_file_numbers_and_strips_prefix(self):
        root = tempfile.mkdtemp(dir=self.get_temp_dir())
        touch_files(root, [f"00_daffodil/image_{n:04d}.jpg" for n in range(1, 81)]
                    + [f"01_snowdrop/image_{n:04d}.jpg" for n in (81, 144, 145, 160)])
        listing = list_image_folder(root, "flowers17")
        self.assertEqual(listing.class_names, ("daffodil", "snowdrop"))
        self.assertEqual(collections.Counter(listing.train.labels), {0: 64, 1: 2})
        self.assertEqual(names(listing.test.paths)[-2:], [["01_snowdrop", "image_0145.jpg"],
                                                          ["01_snowdrop", "image_0160.jpg"]])

    def test_ignores_hidden_and_non_image_files(self):
        root = tempfile.mkdtemp(dir=self.get_temp_dir())
        touch_files(root, ["a/1.jpg", "a/notes.txt", "a/.hidden.jpg", ".cache/x.jpg", "b/2.png"])
        listing = list_image_folder(root, "folder", test_fraction=0.2)
        self.assertEqual(listing.class_names, ("a", "b"))
        self.assertLen(listing.train.paths + listing.test.paths, 2)

    @parameterized.named_parameters(
            ("empty_class", ["a/1.jpg", "b/readme.txt"], "folder",
             r"Class folder .*b' holds no images"),
            ("no_classes", ["1.jpg"], "folder", "holds no class folders"),
            ("unsplit_dogs", ["cats/1.jpg"], "dogs_vs_cats",
             "must come split into train/ and test/"),
            ("extra_test_class", ["train/a/1.jpg", "test/a/2.jpg", "test/z/3.jpg"], "folder",
             r"class folders that train/ lacks: \['z'\]"),
            ("bad_flowers_name", ["00_daffodil/flower.jpg"], "flowers17", "filename='flower.jpg'"),
            ("train_without_held_out", ["train/a/1.jpg", "dev/a/2.jpg"], "folder",
             r"has a train/ folder but no held-out folder .*found dev/, train/.*Rename"),
    )
    def test_bad_layouts_raise(self, files, dataset, message):
        root = tempfile.mkdtemp(dir=self.get_temp_dir())
        touch_files(root, files)
        with self.assertRaisesRegex(ValueError, message):
            list_image_folder(root, dataset)

    def test_missing_data_dir_raises(self):
        missing = os.path.join(self.get_temp_dir(), "nowhere")
        with self.assertRaisesRegex(ValueError, "`data_dir` must be an existing directory"):
            validate_data_config(DataConfig("folder", data_dir=missing))

    def test_expected_num_classes_must_match(self):
        root = tempfile.mkdtemp(dir=self.get_temp_dir())
        touch_files(root, ["a/1.jpg", "b/1.jpg", "c/1.jpg"])
        validate_data_config(DataConfig("folder", data_dir=root, expected_num_classes=3))
        with self.assertRaisesRegex(ValueError, "Received: expected_num_classes=2"):
            validate_data_config(DataConfig("folder", data_dir=root, expected_num_classes=2))


class RealDataInfoTest(tf.test.TestCase, parameterized.TestCase):

    def test_flowers17_split(self):
        data_dir = shared_data_dir("flowers17")
        info = get_dataset_info(DataConfig("flowers17", data_dir=data_dir))
        self.assertEqual((info.num_classes, info.num_train, info.num_test), (17, 1088, 272))
        self.assertEqual(info.class_names[:2], ("daffodil", "snowdrop"))
        listing = list_image_folder(data_dir, "flowers17")
        self.assertEqual(set(collections.Counter(listing.train.labels).values()), {64})
        self.assertEqual(set(collections.Counter(listing.test.labels).values()), {16})

    @parameterized.parameters(
            ("dogs_vs_cats", 8000, 2000, ("cats", "dogs")),
            ("imagenet4", 160, 40, ("n01440764", "n01443537", "n01484850", "n02102040")),
    )
    def test_presplit_counts(self, name, num_train, num_test, class_names):
        info = get_dataset_info(DataConfig(name, data_dir=shared_data_dir(name)))
        self.assertEqual((info.num_train, info.num_test), (num_train, num_test))
        self.assertEqual(info.class_names, class_names)


if __name__ == "__main__":
    tf.test.main()
