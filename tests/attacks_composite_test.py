"""Tests of tf_atalp.attacks.composite: restarts and the worst case over attacks."""

import keras
import numpy as np
import tensorflow as tf

from tests.attack_fixtures import batch, conv_model, linear_model
from tf_atalp import attacks
from tf_atalp.attacks.pgd import seed_tensor


class PatternAttack:
    """Moves every image by epsilon along one sign pattern drawn from the seed alone.

    So what it does to an example does not depend on which others share the
    batch: attacking only some examples must give those examples what
    attacking all of them gives. It records the batch size of every call.
    """

    def __init__(self, epsilon):
        self.epsilon = epsilon
        self.batch_sizes = []

    def attack(self, model_fn, images, labels, *, seed=None, record_at=None):
        images = tf.convert_to_tensor(images)
        self.batch_sizes.append(int(images.shape[0]))
        pattern = tf.sign(tf.random.stateless_uniform([1, *images.shape[1:]],
                                                      seed_tensor(seed), -1.0, 1.0))
        found = tf.clip_by_value(images + self.epsilon * pattern, 0.0, 1.0)
        if record_at is None:
            return attacks.AttackResult(found)
        correct = np.argmax(model_fn(found), 1) == labels
        return attacks.AttackResult(found, tf.constant(list(record_at)),
                                    tf.constant([correct] * len(record_at)))

    def describe(self):
        return {"attack": "pattern", "epsilon": self.epsilon, "random_start": True}


class RestartsTest(tf.test.TestCase):

    def test_without_record_at_later_restarts_attack_only_the_survivors(self):
        model_fn = attacks.inference_logits(linear_model()[0])
        images, labels = batch(n=64)
        pattern = PatternAttack(0.08)
        every = attacks.Restarts(pattern, 4).attack(model_fn, images, labels, seed=3,
                                                    record_at=[0])
        self.assertEqual(pattern.batch_sizes, [64] * 4)
        survivors = attacks.Restarts(pattern, 4).attack(model_fn, images, labels, seed=3)
        # The same robust examples and the same images as attacking all of them each time.
        robust = np.argmax(model_fn(survivors.adversarial_images), 1) == labels
        self.assertAllEqual(robust, every.correct_at.numpy()[0])
        self.assertAllClose(survivors.adversarial_images, every.adversarial_images)
        # Each restart got exactly the examples no earlier one fooled.
        runs = [pattern.attack(model_fn, images, labels, seed=attacks.restart_seed(3, r))
                for r in range(4)]
        fooled = np.array([np.argmax(model_fn(run.adversarial_images), 1) != labels
                           for run in runs])
        alive = [64 - int(np.sum(np.any(fooled[:r], axis=0))) for r in range(4)]
        self.assertAllEqual(pattern.batch_sizes[4:8], alive)
        self.assertBetween(alive[-1], 1, 63)  # some fooled, some left: the test bites


    def test_one_restart_is_the_attack_itself(self):
        model_fn = attacks.inference_logits(conv_model())
        images, labels = batch()
        pgd = attacks.PGD(0.1, 0.01, 3)
        self.assertAllClose(
            attacks.Restarts(pgd, 1).attack(model_fn, images, labels, seed=4).adversarial_images,
            pgd.attack(model_fn, images, labels, seed=4).adversarial_images)

    def test_an_example_survives_only_if_it_survives_every_restart(self):
        model_fn = attacks.inference_logits(linear_model()[0])
        images, labels = batch(n=64)
        pgd = attacks.PGD(0.05, 0.01, 4)
        record = range(5)
        combined = attacks.Restarts(pgd, 3).attack(model_fn, images, labels, seed=2,
                                                   record_at=record)
        runs = [pgd.attack(model_fn, images, labels, seed=attacks.restart_seed(2, r),
                           record_at=record) for r in range(3)]
        expected = np.logical_and.reduce([run.correct_at.numpy() for run in runs])
        self.assertAllEqual(combined.correct_at, expected)
        # Each example keeps the images of the first restart that fooled the model.
        fooled = [np.argmax(model_fn(run.adversarial_images), 1) != labels for run in runs]
        chosen = combined.adversarial_images.numpy()
        for index in range(64):
            first = next((r for r in range(3) if fooled[r][index]), 2)
            self.assertAllClose(chosen[index], runs[first].adversarial_images[index])

    def test_restart_seeds_differ_and_repeat(self):
        self.assertEqual(attacks.restart_seed(7, 0), 7)
        self.assertNotEqual(attacks.restart_seed(7, 1), attacks.restart_seed(7, 2))
        self.assertEqual(attacks.restart_seed(7, 1), attacks.restart_seed(7, 1))
        self.assertIsNone(attacks.restart_seed(None, 3))
        tensor_seed = attacks.restart_seed(tf.constant([1, 2], tf.int64), 1)
        self.assertEqual(tensor_seed.shape, (2,))

    def test_describe_and_errors(self):
        self.assertEqual(attacks.Restarts(attacks.PGD(0.1, 0.01, 3), 4).describe()["restarts"], 4)
        with self.assertRaisesRegex(ValueError, "needs `random_start=True`"):
            attacks.Restarts(attacks.PGD(0.1, 0.01, 2, random_start=False), 2)
        with self.assertRaisesRegex(ValueError, "`restarts` must be an int >= 1"):
            attacks.Restarts(attacks.PGD(0.1, 0.01, 2), 0)


class WorstCaseTest(tf.test.TestCase):

    def test_worst_case_is_the_and_of_its_members(self):
        model_fn = attacks.inference_logits(conv_model())
        images, labels = batch(n=48)
        members = [attacks.PGD(0.1, 0.02, 4), attacks.PGD(0.1, 0.02, 4, objective="margin")]
        record = [0, 2, 4]
        combined = attacks.WorstCase(members).attack(model_fn, images, labels, seed=1,
                                                     record_at=record)
        single = [m.attack(model_fn, images, labels, seed=1, record_at=record) for m in members]
        self.assertAllEqual(combined.correct_at,
                            np.logical_and(single[0].correct_at, single[1].correct_at))
        for result in single:  # never more robust than any member
            self.assertLessEqual(int(np.sum(combined.correct_at[-1])),
                                 int(np.sum(result.correct_at[-1])))
        described = attacks.WorstCase(members).describe()
        self.assertEqual((described["attack"], described["epsilon"]), ("worst_case", 0.1))
        self.assertNotIn("objective", described)  # the members differ there
        self.assertLen(described["attacks"], 2)

    def test_serialization_round_trip(self):
        attack = attacks.WorstCase([attacks.Restarts(attacks.PGD(0.1, 0.01, 3), 2),
                                    attacks.FGSM(0.1)])
        copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(attack))
        self.assertEqual(copy.describe(), attack.describe())

    def test_needs_attacks(self):
        with self.assertRaisesRegex(ValueError, "non-empty list"):
            attacks.WorstCase([])


if __name__ == "__main__":
    tf.test.main()
