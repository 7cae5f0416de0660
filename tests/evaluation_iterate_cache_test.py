"""Tests of tf_atalp.evaluation.iterate_cache: iterates kept in memory and, given a folder,
read back by a new cache instead of crafted again."""

import os
import shutil

import numpy as np
import tensorflow as tf

from tests.evaluation_fixtures import (
    CountingModel, conv_data, conv_model, dataset_of, temporary_folder)
from tf_atalp.attacks import PGD, Restarts
from tf_atalp.evaluation import evaluate_transfer
from tf_atalp.evaluation.iterate_cache import ITERATES, IterateCache

KEY = ("weights abc", '{"epsilon": 0.1}', (2, 5), 0, 17)


class Crafter:
    """craft() for the cache: counts its calls and returns fixed iterates and scores."""

    def __init__(self, value=0.25):
        self.calls = 0
        self.value = value

    def __call__(self):
        self.calls += 1
        images = np.full([3, 4, 4, 3], self.value, np.float32)
        return {ITERATES: {2: tf.constant(images), 5: tf.constant(images + 0.5)},
                "source": np.array([[True, False, True], [False, False, True]])}


class IterateCacheTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.folder = os.path.join(temporary_folder(self), "iterates")

    def test_memory_only_crafts_once_per_key_and_writes_nothing(self):
        cache, craft = IterateCache(), Crafter()
        first = cache.iterates(KEY, craft)
        self.assertIs(cache.iterates(KEY, craft), first)
        cache.iterates(KEY[:-1] + (18,), craft)
        self.assertEqual((craft.calls, cache.crafted, cache.loaded), (2, 2, 0))
        self.assertEqual(cache.stored_files(), 0)

    def test_a_new_cache_on_the_same_folder_reads_what_the_first_crafted(self):
        craft = Crafter()
        written = IterateCache(self.folder).iterates(KEY, craft)
        self.assertEqual(os.listdir(self.folder), [name for name in os.listdir(self.folder)
                                                   if name.endswith(".npz")])
        later = IterateCache(self.folder)
        self.assertEqual(later.stored_files(), 1)
        read = later.iterates(KEY, Crafter(value=0.75))  # would give other images if called
        self.assertEqual((craft.calls, later.crafted, later.loaded), (1, 0, 1))
        self.assertEqual(sorted(read[ITERATES]), [2, 5])
        for k in (2, 5):
            self.assertAllEqual(read[ITERATES][k], written[ITERATES][k])
            self.assertEqual(read[ITERATES][k].dtype, tf.float32)
        self.assertEqual(read["source"].dtype, np.bool_)
        self.assertAllEqual(read["source"], written["source"])
        # Another key (here another seed) is crafted and stored beside it.
        other = Crafter(value=0.5)
        later.iterates(KEY[:-1] + (18,), other)
        self.assertEqual((other.calls, later.stored_files()), (1, 2))

    def test_a_torn_file_is_crafted_again_and_replaced(self):
        IterateCache(self.folder).iterates(KEY, Crafter())
        (name,) = os.listdir(self.folder)
        path = os.path.join(self.folder, name)
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
        craft = Crafter(value=0.5)
        with self.assertLogs(level="WARNING") as logs:
            again = IterateCache(self.folder).iterates(KEY, craft)
        self.assertIn("cannot be read", "\n".join(logs.output))
        self.assertEqual(craft.calls, 1)
        self.assertAllEqual(again[ITERATES][2], np.full([3, 4, 4, 3], 0.5, np.float32))
        fixed = IterateCache(self.folder)
        fixed.iterates(KEY, Crafter())
        self.assertEqual((fixed.crafted, fixed.loaded), (0, 1))

    def test_a_file_holding_another_key_is_not_used(self):
        other_key = KEY[:-1] + (18,)
        first = IterateCache(self.folder)
        first.iterates(other_key, Crafter())
        (name,) = os.listdir(self.folder)
        # Put the other key's file where KEY's would be (as a hash collision would).
        os.rename(os.path.join(self.folder, name), first._path(KEY))
        craft = Crafter(value=0.5)
        with self.assertLogs(level="WARNING") as logs:
            IterateCache(self.folder).iterates(KEY, craft)
        self.assertIn("holds another key", "\n".join(logs.output))
        self.assertEqual(craft.calls, 1)


class TransferFromStoredIteratesTest(tf.test.TestCase):

    def test_a_new_process_scores_the_stored_iterates_with_the_same_results(self):
        source = conv_model(seed=0)
        images, labels = conv_data(source, n=32)
        dataset = dataset_of(images, labels)
        attacks = [Restarts(PGD(0.1, 0.01, 10), 1), PGD(0.05, 0.01, 10)]
        target = conv_model(seed=1)
        folder = os.path.join(temporary_folder(self), "iterates")
        first = evaluate_transfer(source, {"t": target}, dataset, attacks, record_at=[5, 10],
                                  cache=IterateCache(folder), cache_key="source weights")
        counting = CountingModel(source)
        resumed_cache = IterateCache(folder)  # what a new study process makes
        resumed = evaluate_transfer(counting, {"t": target}, dataset, attacks,
                                    record_at=[5, 10], cache=resumed_cache,
                                    cache_key="source weights")
        self.assertEqual((resumed_cache.crafted, resumed_cache.loaded), (0, 2 * 2))
        self.assertEqual(int(counting.examples.numpy()), 32)  # the clean images only
        self.assertEqual(resumed["models"], first["models"])
        # Without the folder, the source is attacked again: same results, more source calls.
        shutil.rmtree(folder)
        crafting = CountingModel(source)
        again = evaluate_transfer(crafting, {"t": target}, dataset, attacks, record_at=[5, 10],
                                  cache=IterateCache(folder), cache_key="source weights")
        self.assertGreater(int(crafting.examples.numpy()), 32)
        self.assertEqual(again["models"], first["models"])


if __name__ == "__main__":
    tf.test.main()
