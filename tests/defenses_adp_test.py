"""Tests of the adp defense: the ensemble, its entropy and log-det terms against numpy."""

import keras
import numpy as np
import tensorflow as tf

from tf_atalp.defenses import AdaptiveDiversityPromoting, get_defense
from tf_atalp.defenses.ensemble_diversity import (
    DET_OFFSET, EnsembleCrossEntropyTerm, NegativeEnsembleEntropyTerm, NegativeLogDetTerm,
    ensemble_entropy, member_probabilities, non_true_log_det)
from tf_atalp.defenses.terms import LossInputs
from tf_atalp.models import build_resnet
from tf_atalp.models.ensemble import build_ensemble, mean_probability_logits


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class AdpTermsTest(tf.test.TestCase):

    def setUp(self):
        rng = np.random.default_rng(1)
        self.logits = rng.normal(size=(3, 4, 5)).astype("float32")  # [M, N, K]
        self.labels = np.array([0, 4, 2, 1], "int32")
        self.outputs = {"logits": tf.zeros([4, 5]),
                        "members": {f"m{i}": tf.constant(self.logits[i]) for i in range(3)}}

    def test_entropy_of_the_mean_prediction(self):
        mean = softmax(self.logits).mean(axis=0)
        expected = -(mean * np.log(mean)).sum(axis=-1)
        self.assertAllClose(ensemble_entropy(member_probabilities(self.outputs)), expected,
                            rtol=1e-5)

    def test_log_det_against_numpy(self):
        probabilities = softmax(self.logits)
        expected = []
        for n, label in enumerate(self.labels):
            others = np.delete(probabilities[:, n, :], label, axis=1)  # [M, K-1]
            others /= np.linalg.norm(others, axis=1, keepdims=True)
            gram = others @ others.T + DET_OFFSET * np.eye(3)
            expected.append(np.linalg.slogdet(gram)[1])
        self.assertAllClose(non_true_log_det(tf.constant(probabilities), self.labels), expected,
                            rtol=1e-4, atol=1e-4)

    def test_log_det_of_orthogonal_and_identical_members(self):
        # Two members whose non-true predictions are orthogonal: G = I, log det = 2 log(1 + eps).
        orthogonal = np.array([[[0.5, 0.5, 0.0]], [[0.5, 0.0, 0.5]]], "float32")
        self.assertAllClose(non_true_log_det(tf.constant(orthogonal), np.array([0])),
                            [2 * np.log1p(DET_OFFSET)], atol=1e-5)
        # Identical members: G is singular, log det = log(eps) + log(2 + eps) (float32 rounding
        # of the eps-sized eigenvalue costs about 1% of it, 0.01 in the log).
        same = np.array([[[0.5, 0.25, 0.25]], [[0.5, 0.25, 0.25]]], "float32")
        self.assertAllClose(non_true_log_det(tf.constant(same), np.array([0])),
                            [np.log(DET_OFFSET) + np.log(2 + DET_OFFSET)], atol=0.05)

    def test_terms(self):
        inputs = LossInputs(labels=tf.constant(self.labels), clean=self.outputs, adversarial=None)
        probabilities = softmax(self.logits)
        ce = -np.log(probabilities[:, np.arange(4), self.labels]).sum(axis=0).mean()
        self.assertAllClose(EnsembleCrossEntropyTerm()(inputs), ce, rtol=1e-5)
        self.assertAllClose(NegativeEnsembleEntropyTerm()(inputs),
                            -np.mean(ensemble_entropy(tf.constant(probabilities))), rtol=1e-5)
        self.assertAllClose(NegativeLogDetTerm()(inputs),
                            -np.mean(non_true_log_det(tf.constant(probabilities), self.labels)),
                            rtol=1e-5)

    def test_a_model_without_members_is_refused(self):
        inputs = LossInputs(labels=tf.constant(self.labels), clean={"logits": tf.zeros([4, 5])},
                            adversarial=None)
        with self.assertRaisesRegex(ValueError, "ADP needs an ensemble"):
            EnsembleCrossEntropyTerm()(inputs)

    def test_defense(self):
        defense = get_defense("adp", members=4, entropy_weight=1.0, log_det_weight=0.25)
        self.assertIsInstance(defense, AdaptiveDiversityPromoting)
        self.assertFalse(defense.adversarial_training)
        self.assertEqual(defense.model_options(), {"members": 4})
        self.assertEqual([t.weight for t in defense.loss_terms()], [1.0, 1.0, 0.25])
        default = get_defense("adp")
        self.assertEqual((default.members, default.entropy_weight, default.log_det_weight),
                         (3, 2.0, 0.5))
        with self.assertRaisesRegex(ValueError, "`members` must be an int >= 2"):
            get_defense("adp", members=1)


class EnsembleModelTest(tf.test.TestCase):

    def test_logits_are_the_log_of_the_mean_member_probabilities(self):
        logits = np.random.default_rng(2).normal(size=(3, 4, 5)).astype("float32")
        combined = mean_probability_logits([tf.constant(z) for z in logits])
        self.assertAllClose(tf.nn.softmax(combined), softmax(logits).mean(axis=0), atol=1e-6)

    def test_build_resnet_ensemble(self):
        keras.utils.set_random_seed(0)
        model = build_resnet(10, 5, 32, width=4, members=3)
        images = np.random.default_rng(3).uniform(size=(2, 32, 32, 3)).astype("float32")
        outputs = model(images)
        self.assertEqual(sorted(outputs["members"]), ["member_0", "member_1", "member_2"])
        members = np.stack([outputs["members"][f"member_{i}"] for i in range(3)])
        self.assertAllClose(tf.nn.softmax(outputs["logits"]), softmax(members).mean(axis=0),
                            atol=1e-5)
        self.assertIn("member_2_conv5_x", outputs["features"])
        self.assertLen(outputs["features"], 12)
        # Members are independent networks, not one network three times.
        self.assertNotAllClose(members[0], members[1])

    def test_build_ensemble_checks_its_members(self):
        single = build_resnet(10, 5, 32, width=4)
        with self.assertRaisesRegex(ValueError, ">= 2 members"):
            build_ensemble([single])
        with self.assertRaisesRegex(ValueError, "distinct names"):
            build_ensemble([single, single])


if __name__ == "__main__":
    tf.test.main()
