"""Tests of the trades defense: its KL term by hand, its loss in a step, and its attack."""

import keras
import numpy as np
import tensorflow as tf

from tests.attack_fixtures import batch, linear_model
from tf_atalp.attacks import PGD, inference_logits
from tf_atalp.defenses import TRADES, defense_config, defense_from_config, get_defense
from tf_atalp.defenses.terms import ADVERSARIAL, CLEAN, LossInputs
from tf_atalp.defenses.trades import DEFAULT_TRADES_BETA, KLToCleanTerm
from tf_atalp.training import AdversarialTrainer

ATTACK = PGD(epsilon=0.05, step_size=0.02, iterations=3)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def numpy_kl(clean_logits, adversarial_logits):
    p, q = softmax(clean_logits), softmax(adversarial_logits)
    return np.sum(p * (np.log(p) - np.log(q)), axis=1)


class KLToCleanTermTest(tf.test.TestCase):

    def test_two_class_value_by_hand(self):
        # p = (1/2, 1/2), q = (3/4, 1/4): KL = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3).
        clean = tf.constant([[0.0, 0.0], [1.0, 1.0]])
        adversarial = tf.constant([[np.log(3.0), 0.0], [5.0, 5.0]])
        inputs = LossInputs(labels=tf.constant([0, 1]), clean={"logits": clean},
                            adversarial={"logits": adversarial})
        # The second pair agrees: its KL is 0, so the batch mean is half the first.
        self.assertAllClose(KLToCleanTerm()(inputs), 0.25 * np.log(4.0 / 3.0), rtol=1e-6)

    def test_needs_both_passes(self):
        self.assertEqual(KLToCleanTerm().needs, frozenset({CLEAN, ADVERSARIAL}))


class TradesDefenseTest(tf.test.TestCase):

    def test_defaults_terms_and_config(self):
        defense = get_defense("trades")
        self.assertEqual(defense.trades_beta, DEFAULT_TRADES_BETA)
        self.assertEqual(DEFAULT_TRADES_BETA, 6.0)
        self.assertEqual(defense.term_names, ("ce", "kl"))
        ce, kl = defense.loss_terms()
        self.assertEqual((ce.on, kl.weight), (CLEAN, 6.0))
        # The attention-pairing `beta` flag does not reach TRADES' beta.
        self.assertEqual(get_defense("trades", beta=0.1, trades_beta=2.0).trades_beta, 2.0)
        self.assertEqual(defense_from_config(defense_config(TRADES(trades_beta=1.5))),
                         TRADES(trades_beta=1.5))
        with self.assertRaisesRegex(ValueError, "`trades_beta` must be >= 0"):
            TRADES(trades_beta=-1.0)

    def test_training_attack_maximises_the_kl_from_a_gaussian_start(self):
        attack = TRADES().training_attack(ATTACK)
        self.assertEqual((attack.objective, attack.random_start, attack.start_noise),
                         ("kl_to_clean", True, "gaussian"))
        self.assertEqual((attack.epsilon, attack.step_size, attack.iterations), (0.05, 0.02, 3))

    def test_the_attack_raises_the_kl(self):
        model, _, _ = linear_model()
        images, labels = batch()
        attack = TRADES().training_attack(ATTACK)
        adversarial = attack.attack(inference_logits(model), images, labels,
                                    seed=0).adversarial_images
        clean_logits = model(images).numpy()
        start = images + 0.001 * np.random.default_rng(0).normal(size=images.shape)
        kl_start = numpy_kl(clean_logits, model(np.clip(start, 0, 1).astype("float32")).numpy())
        kl_after = numpy_kl(clean_logits, model(adversarial).numpy())
        self.assertLessEqual(np.abs(adversarial.numpy() - images).max(), 0.05 + 1e-6)
        self.assertTrue(np.all(kl_after > kl_start))
        self.assertGreater(kl_after.mean(), 100 * kl_start.mean())
        # More than a cross-entropy attack of the same budget moves the prediction.
        ce_adversarial = ATTACK.attack(inference_logits(model), images, labels,
                                       seed=0).adversarial_images
        self.assertGreater(kl_after.mean(),
                           numpy_kl(clean_logits, model(ce_adversarial).numpy()).mean())

    def test_step_loss_is_clean_ce_plus_beta_kl_by_hand(self):
        model, _, _ = linear_model()
        images, labels = batch()
        beta = 2.5
        trainer = AdversarialTrainer(model, TRADES(trades_beta=beta), attack=ATTACK, seed=4)
        trainer.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0))
        # The step's attack: its seed is (seed * 1024 + replica 0, optimizer step 0).
        adversarial = trainer._training_attack.attack(
            inference_logits(model), images, labels,
            seed=tf.constant([4 * 1024, 0], tf.int64)).adversarial_images
        logs = trainer.train_on_batch(images, labels, return_dict=True)
        clean_logits, adversarial_logits = model(images).numpy(), model(adversarial).numpy()
        ce = -np.mean(np.log(softmax(clean_logits)[np.arange(len(labels)), labels]))
        kl = numpy_kl(clean_logits, adversarial_logits).mean()
        self.assertAllClose(logs["ce"], ce, rtol=1e-5)
        self.assertAllClose(logs["kl"], kl, rtol=1e-4)
        self.assertAllClose(logs["loss"], ce + beta * kl, rtol=1e-5)
        self.assertGreater(kl, 0.0)


if __name__ == "__main__":
    tf.test.main()
