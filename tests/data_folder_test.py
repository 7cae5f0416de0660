"""Tests of the image-folder pipeline: decoding, corrupt files, batching, real data."""

import os
import tempfile

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tests.real_data import shared_data_dir
from tf_atalp.data import DataConfig, make_dataset

SIZE = 32


def write_image(path, pixels):
    """Writes uint8 [H, W, C] pixels as PNG or JPEG (by extension)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    encode = tf.io.encode_png if path.endswith(".png") else tf.io.encode_jpeg
    tf.io.write_file(path, encode(tf.constant(pixels, tf.uint8)))


def constant(height, width, values):
    return np.broadcast_to(np.array(values, np.uint8), (height, width, len(values)))


def write_jpeg_bytes(path, data):
    with open(path, "wb") as f:
        f.write(data)


class FolderPipelineTest(tf.test.TestCase, parameterized.TestCase):

    def make_folder(self):
        """train/a/{red.jpg, gray.jpg, blue.png}, train/b/{green.png, rgba.png}; test: 3 images."""
        root = tempfile.mkdtemp(dir=self.get_temp_dir())
        write_image(f"{root}/train/a/red.jpg", constant(40, 56, [250, 10, 10]))
        write_image(f"{root}/train/a/gray.jpg", constant(64, 64, [100]))
        write_image(f"{root}/train/a/blue.png", constant(33, 80, [0, 0, 255]))
        write_image(f"{root}/train/b/green.png", constant(50, 50, [0, 255, 0]))
        write_image(f"{root}/train/b/rgba.png", constant(50, 50, [10, 20, 30, 40]))
        write_image(f"{root}/test/a/x.jpg", constant(32, 32, [60, 60, 60]))
        write_image(f"{root}/test/b/y.png", constant(32, 48, [200, 0, 0]))
        write_image(f"{root}/test/b/z.png", constant(99, 32, [0, 0, 200]))
        return root

    def config(self, root, **changes):
        fields = dict(dataset="folder", data_dir=root, image_size=SIZE, batch_size=2)
        fields.update(changes)
        return DataConfig(**fields)

    def test_decodes_jpeg_png_gray_and_rgba_to_unit_rgb(self):
        root = self.make_folder()
        dataset = make_dataset(self.config(root, batch_size=8), "train", training=False)
        batches = list(dataset)
        self.assertLen(batches, 1)
        images, labels = batches[0]
        self.assertEqual(images.shape, (5, SIZE, SIZE, 3))
        self.assertEqual((images.dtype, labels.dtype), (tf.float32, tf.int32))
        self.assertAllEqual(labels, [0, 0, 0, 1, 1])  # a/{blue, gray, red}, b/{green, rgba}
        expected = np.array([[0, 0, 255], [100, 100, 100], [250, 10, 10], [0, 255, 0],
                             [10, 20, 30]]) / 255.0
        self.assertAllClose(images.numpy().mean(axis=(1, 2)), expected, atol=3 / 255)

    def test_keep_aspect_batches_square_crops(self):
        root = self.make_folder()
        config = self.config(root, resize="keep_aspect", augment=False, batch_size=5)
        epochs = [next(iter(make_dataset(config, "train", training=True)))[0] for _ in range(2)]
        for batch in epochs:
            self.assertEqual(batch.shape, (5, SIZE, SIZE, 3))
        test_images, _ = next(iter(make_dataset(config, "test", training=False)))
        self.assertEqual(test_images.shape, (3, SIZE, SIZE, 3))

    def test_training_drops_remainder_and_test_keeps_it(self):
        root = self.make_folder()
        config = self.config(root, augment=False)
        train_sizes = [int(x.shape[0]) for x, _ in make_dataset(config, "train", training=True)]
        test_sizes = [int(x.shape[0]) for x, _ in make_dataset(config, "test", training=False)]
        self.assertEqual(train_sizes, [2, 2])
        self.assertEqual(test_sizes, [2, 1])

    def test_training_order_follows_the_seed_and_epochs_reshuffle(self):
        root = self.make_folder()

        def two_epochs(seed):
            config = self.config(root, batch_size=1, seed=seed, augment=False)
            dataset = make_dataset(config, "train", training=True)
            return [[round(float(x.numpy().mean()), 4) for x, _ in dataset] for _ in range(2)]

        runs = {seed: two_epochs(seed) for seed in range(4)}
        self.assertEqual(two_epochs(0), runs[0])
        self.assertNotEqual(runs[0][0], runs[0][1])
        self.assertGreater(len({tuple(epochs[0]) for epochs in runs.values()}), 1)

    @parameterized.parameters(True, False)
    def test_cached_and_uncached_epochs_agree(self, cache):
        root = self.make_folder()
        dataset = make_dataset(self.config(root, cache=cache), "test", training=False)
        first, second = [np.concatenate([x.numpy() for x, _ in dataset]) for _ in range(2)]
        self.assertAllEqual(first, second)

    @parameterized.named_parameters(
            ("garbage", b"this is not an image"),
            ("truncated_jpeg", None),
    )
    def test_corrupt_file_error_names_it_before_any_batch(self, data):
        root = self.make_folder()
        if data is None:
            data = tf.io.encode_jpeg(np.random.default_rng(0).integers(
                    0, 256, (64, 64, 3), dtype=np.uint8)).numpy()[:300]
        broken = f"{root}/train/b/broken.jpg"
        write_jpeg_bytes(broken, data)
        with self.assertRaisesRegex(ValueError, f"Corrupt image file '{broken}'.*skip_corrupt"):
            make_dataset(self.config(root), "train", training=True)

    def test_skip_corrupt_skips_and_counts(self):
        root = self.make_folder()
        write_jpeg_bytes(f"{root}/train/b/broken1.jpg", b"\xff\xd8 broken")
        write_jpeg_bytes(f"{root}/train/a/broken2.png", b"\x89PNG broken")
        config = self.config(root, batch_size=8, skip_corrupt=True)
        with self.assertLogs(level="WARNING") as logs:
            dataset = make_dataset(config, "train", training=False)
        self.assertRegex("\n".join(logs.output), r"Skipped 2 corrupt image file\(s\) of 7")
        self.assertEqual(sum(int(x.shape[0]) for x, _ in dataset), 5)

    def test_batch_larger_than_split_raises(self):
        root = self.make_folder()
        with self.assertRaisesRegex(ValueError, "has 5 examples, fewer than one batch"):
            make_dataset(self.config(root, batch_size=6), "train", training=True)


class RealFolderPipelineTest(tf.test.TestCase, parameterized.TestCase):

    def check_batch(self, images, labels, batch_size, num_classes):
        self.assertEqual(images.shape, (batch_size, SIZE, SIZE, 3))
        self.assertEqual((images.dtype, labels.dtype), (tf.float32, tf.int32))
        self.assertAllInRange(images, 0.0, 1.0)
        self.assertGreater(float(tf.math.reduce_std(images)), 0.05)
        self.assertAllInRange(labels, 0, num_classes - 1)

    def test_flowers17_train_batch(self):
        config = DataConfig("flowers17", data_dir=shared_data_dir("flowers17"), image_size=SIZE,
                            batch_size=16, shuffle_buffer=64)
        images, labels = next(iter(make_dataset(config, "train", training=True)))
        self.check_batch(images, labels, 16, 17)
        self.assertGreater(len(set(labels.numpy())), 3)  # the file order is permuted

    @parameterized.parameters(("dogs_vs_cats", 2), ("imagenet4", 4))
    def test_presplit_test_batch(self, name, num_classes):
        config = DataConfig(name, data_dir=shared_data_dir(name), image_size=SIZE, batch_size=8)
        images, labels = next(iter(make_dataset(config, "test", training=False)))
        self.check_batch(images, labels, 8, num_classes)


if __name__ == "__main__":
    tf.test.main()
