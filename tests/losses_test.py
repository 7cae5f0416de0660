"""Tests of tf_atalp.losses against numpy versions of the paper's equations."""

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tf_atalp import losses


def numpy_attention_pairing(clean_list, adv_list, p=2.0, power=2.0):
    """Eq. 4, written out in numpy: per-example sum over groups, batch mean."""
    total = np.zeros(clean_list[0].shape[0])
    for clean, adv in zip(clean_list, adv_list):
        q_clean = (np.abs(clean) ** power).mean(axis=-1).reshape(len(clean), -1)
        q_adv = (np.abs(adv) ** power).mean(axis=-1).reshape(len(adv), -1)
        q_clean /= np.linalg.norm(q_clean, axis=1, keepdims=True)
        q_adv /= np.linalg.norm(q_adv, axis=1, keepdims=True)
        total += (np.abs(q_adv - q_clean) ** p).sum(axis=1) ** (1.0 / p)
    return total.mean()


def random_groups(seed, shapes):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=s).astype(np.float32) for s in shapes]


GROUP_SHAPES = [(3, 8, 8, 4), (3, 4, 4, 8), (3, 2, 2, 16)]


class CrossEntropyTest(tf.test.TestCase):

    def test_matches_numpy(self):
        logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]], np.float32)
        labels = np.array([0, 1])
        log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        expected = -log_softmax[np.arange(2), labels]
        self.assertAllClose(losses.cross_entropy(labels, logits, reduction="none"), expected)
        self.assertAllClose(losses.cross_entropy(labels, logits), expected.mean())
        self.assertAllClose(losses.cross_entropy(labels, logits, reduction="sum"), expected.sum())

    def test_bad_reduction(self):
        with self.assertRaisesRegex(ValueError, "`reduction` must be one of"):
            losses.cross_entropy([0], [[1.0, 2.0]], reduction="avg")


class KLDivergenceTest(tf.test.TestCase):

    def test_two_class_value_by_hand(self):
        # p = (1/2, 1/2), q = (3/4, 1/4): KL(p || q) = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3);
        # KL(q || p) = 3/4 ln(3/2) + 1/4 ln(1/2).
        half, skewed = np.array([[0.0, 0.0]]), np.array([[np.log(3.0), 0.0]])
        self.assertAllClose(losses.kl_divergence(half, skewed), 0.5 * np.log(4 / 3))
        self.assertAllClose(losses.kl_divergence(skewed, half),
                            0.75 * np.log(1.5) + 0.25 * np.log(0.5))

    def test_zero_for_equal_predictions_and_finite_for_extreme_ones(self):
        logits = np.array([[1.0, -2.0, 0.5], [80.0, -80.0, 0.0]], np.float32)
        self.assertAllClose(losses.kl_divergence(logits, logits + 3.0, reduction="none"),
                            [0.0, 0.0], atol=1e-6)
        far = losses.kl_divergence(logits, logits[:, ::-1].copy(), reduction="sum")
        self.assertTrue(np.isfinite(far.numpy()))
        self.assertGreater(float(far), 79.0)  # about 80: p is (1, 0, 0), q puts e^-80 on class 0


class LogitPairingTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.parameters("mean_squared", "squared_l2", "l2")
    def test_matches_numpy(self, per_example):
        rng = np.random.default_rng(0)
        clean = rng.normal(size=(5, 7)).astype(np.float32)
        adv = rng.normal(size=(5, 7)).astype(np.float32)
        squared = (clean - adv) ** 2
        expected = {"mean_squared": squared.mean(axis=1), "squared_l2": squared.sum(axis=1),
                    "l2": np.sqrt(squared.sum(axis=1))}[per_example]
        self.assertAllClose(
            losses.logit_pairing_loss(clean, adv, per_example=per_example), expected.mean(),
            rtol=1e-5)
        self.assertAllClose(
            losses.logit_pairing_loss(clean, adv, reduction="none", per_example=per_example),
            expected, rtol=1e-5)

    def test_zero_for_identical_logits_with_finite_gradient(self):
        logits = tf.constant(np.ones((2, 3), np.float32))
        with tf.GradientTape() as tape:
            tape.watch(logits)
            value = losses.logit_pairing_loss(logits, tf.identity(logits), per_example="l2")
        self.assertEqual(float(value), 0.0)
        self.assertTrue(np.all(np.isfinite(tape.gradient(value, logits))))

    def test_bfloat16_inputs_give_float32(self):
        clean = tf.cast(tf.ones((2, 3)), tf.bfloat16)
        self.assertEqual(losses.logit_pairing_loss(clean, clean * 2).dtype, tf.float32)


class AttentionPairingTest(tf.test.TestCase, parameterized.TestCase):

    def test_attention_map_is_channel_mean_of_power(self):
        features = np.arange(2 * 2 * 2 * 3, dtype=np.float32).reshape(2, 2, 2, 3) - 5
        self.assertAllClose(losses.attention_map(features, 2.0), (features ** 2).mean(axis=-1))
        self.assertAllClose(losses.attention_map(features, 1.0), np.abs(features).mean(axis=-1))

    def test_zero_for_identical_inputs(self):
        groups = random_groups(0, GROUP_SHAPES)
        value = losses.attention_pairing_loss(groups, [g.copy() for g in groups])
        self.assertAllClose(value, 0.0, atol=1e-6)

    def test_zero_gradient_is_finite_when_maps_agree(self):
        features = tf.constant(random_groups(1, GROUP_SHAPES[:1])[0])
        with tf.GradientTape() as tape:
            tape.watch(features)
            value = losses.attention_pairing_loss([features], [tf.identity(features)])
        gradient = tape.gradient(value, features)
        self.assertTrue(np.all(np.isfinite(gradient)))

    @parameterized.parameters(0.01, 3.0, 1000.0)
    def test_unchanged_when_activations_scaled(self, scale):
        clean = random_groups(2, GROUP_SHAPES)
        adv = random_groups(3, GROUP_SHAPES)
        reference = losses.attention_pairing_loss(clean, adv)
        scaled = losses.attention_pairing_loss([scale * c for c in clean], [scale * a for a in adv])
        self.assertAllClose(scaled, reference, rtol=1e-4)
        self.assertGreater(float(reference), 0.1)

    @parameterized.parameters((2.0, 2.0), (1.0, 2.0), (2.0, 1.0), (3.0, 4.0))
    def test_matches_numpy_eq4(self, p, power):
        clean = random_groups(4, GROUP_SHAPES)
        adv = random_groups(5, GROUP_SHAPES)
        self.assertAllClose(
            losses.attention_pairing_loss(clean, adv, p=p, attention_power=power),
            numpy_attention_pairing(clean, adv, p=p, power=power), rtol=1e-4)

    def test_dicts_pair_by_key(self):
        clean = random_groups(6, GROUP_SHAPES)
        adv = random_groups(7, GROUP_SHAPES)
        names = ["conv2_x", "conv3_x", "conv4_x"]
        # The adversarial dict lists its keys in another order: pairing is by name.
        value = losses.attention_pairing_loss(
            dict(zip(names, clean)), dict(reversed(list(zip(names, adv)))))
        self.assertAllClose(value, numpy_attention_pairing(clean, adv), rtol=1e-4)

    def test_per_example_values_lie_in_range(self):
        clean = random_groups(8, GROUP_SHAPES)
        adv = random_groups(9, GROUP_SHAPES)
        per_example = losses.attention_pairing_loss(clean, adv, reduction="none")
        self.assertEqual(per_example.shape, (3,))
        self.assertAllInRange(per_example, 0.0, 2.0 * len(GROUP_SHAPES))

    def test_mismatched_inputs_raise(self):
        groups = random_groups(0, GROUP_SHAPES)
        with self.assertRaisesRegex(ValueError, "same keys"):
            losses.attention_pairing_loss({"a": groups[0]}, {"b": groups[0]})
        with self.assertRaisesRegex(ValueError, "same length"):
            losses.attention_pairing_loss(groups, groups[:1])
        with self.assertRaisesRegex(ValueError, r"\[N, H, W, C\]"):
            losses.attention_pairing_loss([np.ones((2, 3))], [np.ones((2, 3))])
        with self.assertRaisesRegex(ValueError, "`p` must be > 0"):
            losses.attention_pairing_loss(groups, groups, p=0)


if __name__ == "__main__":
    tf.test.main()
