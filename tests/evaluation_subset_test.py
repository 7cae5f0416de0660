"""Tests of tf_atalp.evaluation.subset: the class-balanced `--max_examples` subset."""

import numpy as np
import tensorflow as tf

from tf_atalp.evaluation.subset import (
    balanced_subset, describe_subset, select_examples, split_labels)

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


if __name__ == "__main__":
    tf.test.main()
