"""Tests of tf_atalp.evaluation.sanity: each check fires on a violating document, not on an honest one."""

import tensorflow as tf

from tf_atalp.evaluation import format_table
from tf_atalp.evaluation.sanity import WARNING, sanity_checks


def document(robust: dict, class_counts=(10, 10, 20)):
    return {"robust_accuracy": [{"epsilon": e, "robust_accuracy": a} for e, a in robust.items()],
            "per_class": {"num_examples": list(class_counts)}}


class SanityChecksTest(tf.test.TestCase):

    def test_an_honest_document_passes(self):
        self.assertEqual(sanity_checks(document({0.03: 0.4, 0.25: 0.1, 0.5: 0.0})), [])
        self.assertEqual(sanity_checks(document({0.03: 0.4, 0.25: 0.4})), [])  # equal is fine

    def test_accuracy_rising_with_epsilon_is_flagged(self):
        messages = sanity_checks(document({0.25: 0.1, 0.03: 0.4, 0.5: 0.2}))
        self.assertLen(messages, 1)
        self.assertIn(WARNING, messages[0])
        self.assertIn("0.1000 at 0.25 but 0.2000 at 0.5", messages[0])

    def test_accuracy_above_the_largest_class_share_at_grey_radius_is_flagged(self):
        # The largest class holds 20 of 40 examples: at epsilon 0.5 accuracy must be <= 0.5.
        self.assertEqual(sanity_checks(document({0.5: 0.5})), [])
        messages = sanity_checks(document({0.25: 0.6, 0.5: 0.6}))
        self.assertLen(messages, 1)
        self.assertIn("above the largest class share 0.5000", messages[0])

    def test_the_table_ends_with_the_warnings(self):
        doc = {"dataset": {"name": "d", "split": "test", "num_examples": 40},
               "model": {"path": "/m", "format": "keras"}, "clean_accuracy": 1.0,
               "clean_correct": 40, "results": [], "robust_accuracy": [],
               "sanity_checks": ["gradient masking suspected: something"]}
        self.assertTrue(format_table(doc).endswith("WARNING: gradient masking suspected: something"))


if __name__ == "__main__":
    tf.test.main()
