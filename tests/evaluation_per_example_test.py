"""Tests of tf_atalp.evaluation.per_example: per-image outcome strings."""

import numpy as np
import tensorflow as tf

from tf_atalp.evaluation.per_example import decode_outcomes, encode_outcomes


class PerExampleTest(tf.test.TestCase):

    def test_round_trip(self):
        outcomes = np.array([True, False, False, True, True])
        self.assertEqual(encode_outcomes(outcomes), "10011")
        self.assertAllEqual(decode_outcomes("10011"), outcomes)
        self.assertEqual(encode_outcomes(np.zeros(0, bool)), "")

    def test_other_characters_are_refused(self):
        with self.assertRaisesRegex(ValueError, "string of '0' and '1'"):
            decode_outcomes("1021")
        with self.assertRaises(ValueError):
            decode_outcomes(None)


if __name__ == "__main__":
    tf.test.main()
