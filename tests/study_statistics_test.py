"""Tests of tf_atalp.study.statistics against hand-computed values."""

import numpy as np
import tensorflow as tf

from tf_atalp.study import statistics


class McNemarTest(tf.test.TestCase):

    def test_hand_computed_values(self):
        # b=2, c=8: n=10, P[X <= 2] = (1 + 10 + 45) / 1024, two-sided: twice that.
        self.assertAlmostEqual(statistics.mcnemar_exact(2, 8), 112 / 1024)
        self.assertAlmostEqual(statistics.mcnemar_exact(8, 2), 112 / 1024)
        # b=0, c=5: 2 * (1/2)^5.
        self.assertAlmostEqual(statistics.mcnemar_exact(0, 5), 2 / 32)
        self.assertEqual(statistics.mcnemar_exact(0, 0), 1.0)
        self.assertEqual(statistics.mcnemar_exact(3, 3), 1.0)  # capped at 1

    def test_discordant_counts_sum_over_seed_pairs(self):
        a = np.array([[1, 1, 0, 0], [1, 0, 1, 0]], bool)
        b = np.array([[1, 0, 1, 0], [0, 0, 1, 1]], bool)
        # seed 0: a-only {1}, b-only {2}; seed 1: a-only {0}, b-only {3}.
        self.assertEqual(statistics.discordant_counts(a, b), (2, 2))

    def test_mismatched_shapes_are_refused(self):
        with self.assertRaisesRegex(ValueError, "same seeds and images"):
            statistics.discordant_counts(np.ones(3, bool), np.ones(4, bool))
        with self.assertRaises(ValueError):
            statistics.mcnemar_exact(-1, 2)


class BootstrapTest(tf.test.TestCase):

    def test_interval_covers_a_known_difference(self):
        # 1000 images; A right on 600, B on 500 of them (B's a subset of A's): +0.1 exactly.
        a = np.zeros(1000, bool)
        a[:600] = True
        b = np.zeros(1000, bool)
        b[:500] = True
        low, high = statistics.paired_bootstrap_interval(a, b, samples=500, seed=1)
        self.assertLess(low, 0.1)
        self.assertGreater(high, 0.1)
        self.assertGreater(low, 0.0)  # 100 images only A gets right: clearly above 0
        # The paired interval is narrow: var of the per-image difference is 0.1 * 0.9 / 1000.
        self.assertLess(high - low, 4 * 1.96 * np.sqrt(0.09 / 1000))

    def test_same_outcomes_give_a_zero_interval(self):
        a = np.array([1, 0, 1, 1, 0], bool)
        self.assertEqual(statistics.paired_bootstrap_interval(a, a, samples=50), (0.0, 0.0))

    def test_seed_spread_widens_the_interval(self):
        rng = np.random.default_rng(0)
        images = rng.random(400) < 0.5
        steady = np.stack([images] * 3)
        noisy = np.stack([rng.random(400) < p for p in (0.3, 0.5, 0.7)])
        reference = np.stack([images] * 3)
        narrow = statistics.paired_bootstrap_interval(reference, steady, samples=400)
        wide = statistics.paired_bootstrap_interval(reference, noisy, samples=400)
        self.assertGreater(wide[1] - wide[0], narrow[1] - narrow[0])


class VerdictTest(tf.test.TestCase):

    def test_needs_both_the_interval_and_the_test(self):
        self.assertEqual(statistics.verdict((0.01, 0.2), 0.01), statistics.HIGHER)
        self.assertEqual(statistics.verdict((-0.2, -0.01), 0.01), statistics.LOWER)
        self.assertEqual(statistics.verdict((0.01, 0.2), 0.2), statistics.NOT_DISTINGUISHABLE)
        self.assertEqual(statistics.verdict((-0.01, 0.2), 0.001),
                         statistics.NOT_DISTINGUISHABLE)

    def test_compare_on_a_clear_and_an_unclear_case(self):
        a = np.zeros(500, bool)
        a[:300] = True
        b = np.zeros(500, bool)
        b[:200] = True
        clear = statistics.compare(a, b, samples=300)
        self.assertEqual((clear.a_only, clear.b_only, clear.verdict), (100, 0, statistics.HIGHER))
        self.assertAlmostEqual(clear.difference, 0.2)
        c = a.copy()
        c[299], c[300] = False, True  # one image each way
        unclear = statistics.compare(a, c, samples=300)
        self.assertEqual((unclear.a_only, unclear.b_only), (1, 1))
        self.assertEqual(unclear.verdict, statistics.NOT_DISTINGUISHABLE)


class SpreadTest(tf.test.TestCase):

    def test_one_seed_has_no_spread(self):
        self.assertIsNone(statistics.spread([0.4]).std)
        result = statistics.spread([0.2, 0.4])
        self.assertAlmostEqual(result.mean, 0.3)
        self.assertAlmostEqual(result.std, np.sqrt(0.02))  # sample std (ddof=1)


if __name__ == "__main__":
    tf.test.main()
