"""Tests of tf_atalp.data.subset: the class-balanced subset of a split (`--max_examples`)."""

import numpy as np
import tensorflow as tf

from tf_atalp.data.subset import (
    balanced_examples, balanced_subset, describe_subset, select_examples, split_labels,
    subset_text)

# Class-sorted, as an image folder lists them: 5 of class 0, 3 of class 1, 4 of class 2.
LABELS = np.array([0] * 5 + [1] * 3 + [2] * 4)


class BalancedSubsetTest(tf.test.TestCase):

    def test_classes_take_turns_in_split_order(self):
        # Turn 1: the first of each class (0, 5, 8); turn 2: the second (1, 6, 9); ...
        self.assertAllEqual(balanced_subset(LABELS, 3), [0, 5, 8])
        self.assertAllEqual(balanced_subset(LABELS, 5), [0, 1, 5, 6, 8])

    def test_a_class_that_runs_out_leaves_the_rotation(self):
        chosen = balanced_subset(LABELS, 11)
        self.assertAllEqual(np.bincount(LABELS[chosen]), [4, 3, 4])

    def test_all_examples_when_asked_for_as_many_or_more(self):
        self.assertAllEqual(balanced_subset(LABELS, 12), np.arange(12))
        self.assertAllEqual(balanced_subset(LABELS, 100), np.arange(12))

    def test_is_deterministic_and_refuses_zero(self):
        self.assertAllEqual(balanced_subset(LABELS, 7), balanced_subset(LABELS, 7))
        with self.assertRaisesRegex(ValueError, "`max_examples` must be >= 1"):
            balanced_subset(LABELS, 0)


class SelectExamplesTest(tf.test.TestCase):

    def test_selects_the_indices_in_order_and_rebatches(self):
        images = np.arange(12, dtype=np.float32).reshape(12, 1, 1, 1)
        dataset = tf.data.Dataset.from_tensor_slices((images, LABELS)).batch(5)
        self.assertAllEqual(split_labels(dataset), LABELS)
        indices = balanced_subset(LABELS, 6)
        batches = list(select_examples(dataset, indices, batch_size=4).as_numpy_iterator())
        self.assertEqual([len(b[1]) for b in batches], [4, 2])
        chosen = np.concatenate([b[0].reshape(-1) for b in batches])
        self.assertAllEqual(chosen, indices.astype(np.float32))
        self.assertAllEqual(np.concatenate([b[1] for b in batches]), LABELS[indices])

    def test_description_counts_each_class(self):
        record = describe_subset(LABELS, balanced_subset(LABELS, 7), ("a", "b", "c"))
        self.assertEqual(record["per_class"], {"a": 3, "b": 2, "c": 2})
        self.assertEqual((record["num_examples"], record["split_size"]), (7, 12))


def numbered_images(count):
    """float32 [count, 1, 1, 1] images whose one pixel is their index in the split."""
    return np.arange(count, dtype=np.float32).reshape(count, 1, 1, 1)


class BalancedExamplesTest(tf.test.TestCase):

    def test_a_class_sorted_dataset_gives_every_class_its_turn(self):
        dataset = tf.data.Dataset.from_tensor_slices((numbered_images(12), LABELS)).batch(5)
        images, labels, record = balanced_examples(dataset, 6)
        # Turns: the first of each class (0, 5, 8), then the second (1, 6, 9).
        self.assertAllEqual(images.reshape(-1), [0, 1, 5, 6, 8, 9])
        self.assertAllEqual(labels, [0, 0, 1, 1, 2, 2])
        self.assertEqual(images.dtype, np.float32)
        self.assertEqual(record["per_class"], {"0": 2, "1": 2, "2": 2})
        self.assertEqual((record["num_examples"], record["split_size"]), (6, 12))

    def test_arrays_and_a_dataset_of_them_agree(self):
        arrays = (numbered_images(12), LABELS)
        dataset = tf.data.Dataset.from_tensor_slices(arrays).batch(4)
        for max_examples in (1, 7, None):
            from_arrays = balanced_examples(arrays, max_examples, class_names=("a", "b", "c"))
            from_dataset = balanced_examples(dataset, max_examples, class_names=("a", "b", "c"))
            self.assertAllEqual(from_arrays[0], from_dataset[0])
            self.assertAllEqual(from_arrays[1], from_dataset[1])
            self.assertEqual(from_arrays[2], from_dataset[2])
        self.assertAllEqual(from_arrays[1], LABELS)  # None: every example, in split order

    def test_a_dataset_that_reshuffles_or_is_empty_is_refused(self):
        reshuffled = tf.data.Dataset.from_tensor_slices((numbered_images(12), LABELS)).shuffle(
            12, seed=1, reshuffle_each_iteration=True).batch(4)
        with self.assertRaisesRegex(ValueError, "same order on every pass"):
            balanced_examples(reshuffled, 6)
        empty = tf.data.Dataset.from_tensor_slices((numbered_images(12), LABELS)).take(0)
        with self.assertRaisesRegex(ValueError, "yielded no examples"):
            balanced_examples(empty.batch(4), 6)

    def test_text_counts_images_and_classes(self):
        record = describe_subset(LABELS, balanced_subset(LABELS, 7), ("a", "b", "c"))
        self.assertEqual(subset_text(record),
                         "7 of 12 images, class-balanced: 3 classes, 2-3 each")
        record = describe_subset(LABELS, balanced_subset(LABELS, 2), ("a", "b", "c"))
        self.assertEqual(subset_text(record),
                         "2 of 12 images, class-balanced: 2 of 3 classes, 1 each")


if __name__ == "__main__":
    tf.test.main()
