"""Tests of the mart defense: boosted CE and the misclassification weights by hand."""

import keras
import numpy as np
import tensorflow as tf

from tests.attack_fixtures import batch, linear_model
from tf_atalp.attacks import PGD, inference_logits
from tf_atalp.defenses import MART, defense_config, defense_from_config, get_defense
from tf_atalp.defenses.mart import (
    DEFAULT_MART_LAMBDA, BoostedCrossEntropyTerm, MisclassificationWeightedKLTerm,
    boosted_cross_entropy, misclassification_weight)
from tf_atalp.defenses.terms import LossInputs
from tf_atalp.training import AdversarialTrainer

ATTACK = PGD(epsilon=0.05, step_size=0.02, iterations=3)
# Logits whose softmax is exactly the probabilities written next to them.
ADVERSARIAL_PROBABILITIES = np.array([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]])
CLEAN_PROBABILITIES = np.array([[0.25, 0.25, 0.5], [0.2, 0.2, 0.6]])
LABELS = np.array([0, 2], np.int32)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def kl(p, q):
    return np.sum(p * np.log(p / q), axis=1)


class MartTermsTest(tf.test.TestCase):

    def inputs(self):
        return LossInputs(labels=tf.constant(LABELS),
                          clean={"logits": tf.constant(np.log(CLEAN_PROBABILITIES), tf.float32)},
                          adversarial={"logits": tf.constant(np.log(ADVERSARIAL_PROBABILITIES),
                                                             tf.float32)})

    def test_boosted_cross_entropy_by_hand(self):
        # Example 0: label 0 (p 0.5), most likely wrong class p 0.3.
        # Example 1: label 2 (p 0.3), most likely wrong class p 0.6.
        expected = [-np.log(0.5) - np.log(1.0001 - 0.3 + 1e-12),
                    -np.log(0.3) - np.log(1.0001 - 0.6 + 1e-12)]
        logits = tf.constant(np.log(ADVERSARIAL_PROBABILITIES), tf.float32)
        self.assertAllClose(boosted_cross_entropy(tf.constant(LABELS), logits), expected,
                            rtol=1e-6)
        self.assertAllClose(BoostedCrossEntropyTerm()(self.inputs()), np.mean(expected),
                            rtol=1e-6)

    def test_weights_are_one_minus_the_clean_true_probability(self):
        logits = tf.constant(np.log(CLEAN_PROBABILITIES), tf.float32)
        self.assertAllClose(misclassification_weight(tf.constant(LABELS), logits),
                            [1.0000001 - 0.25, 1.0000001 - 0.6], rtol=1e-6)

    def test_weighted_kl_by_hand(self):
        divergences = kl(CLEAN_PROBABILITIES, ADVERSARIAL_PROBABILITIES)
        expected = np.mean(divergences * np.array([0.75, 0.4]))
        self.assertAllClose(MisclassificationWeightedKLTerm()(self.inputs()), expected,
                            rtol=1e-5)


class MartDefenseTest(tf.test.TestCase):

    def test_defaults_and_config(self):
        defense = get_defense("mart")
        self.assertEqual((defense.mart_lambda, DEFAULT_MART_LAMBDA), (5.0, 5.0))
        self.assertEqual(defense.term_names, ("boosted_ce", "weighted_kl"))
        self.assertEqual(defense.loss_terms()[1].weight, 5.0)
        self.assertEqual(defense_from_config(defense_config(MART(mart_lambda=2.0))),
                         MART(mart_lambda=2.0))
        attack = defense.training_attack(ATTACK)
        self.assertEqual((attack.objective, attack.start_noise), ("cross_entropy", "gaussian"))
        with self.assertRaisesRegex(ValueError, "`mart_lambda` must be >= 0"):
            MART(mart_lambda=-0.5)

    def test_step_loss_by_hand(self):
        model, _, _ = linear_model()
        images, labels = batch()
        lam = 3.0
        trainer = AdversarialTrainer(model, MART(mart_lambda=lam), attack=ATTACK, seed=2)
        trainer.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0))
        adversarial = trainer._training_attack.attack(
            inference_logits(model), images, labels,
            seed=tf.constant([2 * 1024, 0], tf.int64)).adversarial_images
        logs = trainer.train_on_batch(images, labels, return_dict=True)
        p_clean = softmax(model(images).numpy().astype(np.float64))
        p_adv = softmax(model(adversarial).numpy().astype(np.float64))
        rows = np.arange(len(labels))
        wrong = p_adv.copy()
        wrong[rows, labels] = -1.0
        boosted = np.mean(-np.log(p_adv[rows, labels])
                          - np.log(1.0001 - wrong.max(axis=1) + 1e-12))
        weighted = np.mean(kl(p_clean, p_adv) * (1.0000001 - p_clean[rows, labels]))
        self.assertAllClose(logs["boosted_ce"], boosted, rtol=1e-4)
        self.assertAllClose(logs["weighted_kl"], weighted, rtol=1e-3)
        self.assertAllClose(logs["loss"], boosted + lam * weighted, rtol=1e-4)


if __name__ == "__main__":
    tf.test.main()
