"""Tests of tf_atalp.attacks.apgd: the DLR losses, the checkpoint schedule, APGD and APGD-T."""

import keras
import numpy as np
import tensorflow as tf

from tests.evaluation_fixtures import conv_data, conv_model
from tf_atalp.attacks import PGD, inference_logits
from tf_atalp.attacks.apgd import APGD, checkpoints
from tf_atalp.attacks.objectives import dlr_loss, get_objective, targeted_dlr_loss
from tf_atalp.evaluation import evaluate_robustness


class DLRTest(tf.test.TestCase):

    def test_dlr_matches_the_hand_derived_value(self):
        logits = tf.constant([[4.0, 1.0, 3.0, 0.0], [0.0, 2.0, 6.0, 1.0]])
        labels = tf.constant([0, 1])
        # Example 0: -(4 - 3) / (4 - 1) = -1/3.  Example 1: -(2 - 6) / (6 - 1) = 0.8.
        self.assertAllClose(dlr_loss(logits, labels), [-1 / 3, 0.8], atol=1e-6)
        # Targeted, towards class 3 and class 0:
        # -(4 - 0) / (4 - (1 + 0) / 2) = -8/7;  -(2 - 0) / (6 - (1 + 0) / 2) = -4/11.
        self.assertAllClose(targeted_dlr_loss(logits, labels, tf.constant([3, 0])),
                            [-8 / 7, -4 / 11], atol=1e-6)

    def test_dlr_is_invariant_to_shifting_and_scaling_the_logits(self):
        logits = tf.random.stateless_normal([5, 6], [1, 2])
        labels = tf.constant([0, 1, 2, 3, 4])
        self.assertAllClose(dlr_loss(logits, labels), dlr_loss(3.0 * logits + 7.0, labels),
                            atol=1e-5)

    def test_dlr_is_the_objective_called_dlr(self):
        logits = tf.random.stateless_normal([5, 6], [3, 4])
        labels = tf.constant([0, 1, 2, 3, 4])
        self.assertAllClose(get_objective("dlr")(logits, labels), dlr_loss(logits, labels))

    def test_too_few_classes_are_refused(self):
        with self.assertRaisesRegex(ValueError, "at least 3 classes"):
            dlr_loss(tf.zeros([1, 2]), tf.constant([0]))
        with self.assertRaisesRegex(ValueError, "at least 4 classes"):
            targeted_dlr_loss(tf.zeros([1, 3]), tf.constant([0]), tf.constant([1]))


class ScheduleTest(tf.test.TestCase):

    def test_checkpoints_follow_the_reference_schedule(self):
        # p = 0, 0.22, then windows shrinking by 0.03 down to 0.06 of 100 steps.
        self.assertEqual(checkpoints(100), [22, 41, 57, 70, 80, 87, 93, 99])
        self.assertEqual(checkpoints(1), [1])

    def test_a_constant_model_leaves_apgd_at_its_start_inside_the_ball(self):
        inputs = keras.Input((4, 4, 3))
        logits = keras.layers.Lambda(
            lambda x: 0.0 * x[:, 0, 0, :] + tf.constant([1.0, 0.0, 0.0]))(inputs)
        model = keras.Model(inputs, logits)
        images = tf.fill([2, 4, 4, 3], 0.5)
        result = APGD(0.1, iterations=100).attack(inference_logits(model), images,
                                                   tf.constant([0, 0]), seed=0,
                                                   record_at=[0, 100])
        self.assertAllEqual(result.correct_at, np.ones([2, 2], bool))
        self.assertLessEqual(float(tf.reduce_max(tf.abs(result.adversarial_images - images))),
                             0.1 + 1e-6)


class APGDTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.model = conv_model(seed=0, num_classes=3)
        cls.images, cls.labels = conv_data(cls.model, n=48)
        cls.model_fn = inference_logits(cls.model)

    def test_stays_in_the_ball_and_the_unit_range(self):
        for attack in (APGD(0.05, 20), APGD(0.05, 20, loss="dlr")):
            adversarial = attack.attack(self.model_fn, self.images, self.labels,
                                        seed=1).adversarial_images.numpy()
            self.assertLessEqual(np.abs(adversarial - self.images).max(), 0.05 + 1e-6)
            self.assertBetween(adversarial.min(), 0.0, 1.0)
            self.assertBetween(adversarial.max(), 0.0, 1.0)

    def test_at_least_as_strong_as_pgd_of_the_same_budget(self):
        dataset = [(self.images[i:i + 16], self.labels[i:i + 16]) for i in range(0, 48, 16)]
        pgd = evaluate_robustness(self.model, dataset, [PGD(0.02, 0.005, 20)], seed=0)
        apgd = evaluate_robustness(self.model, dataset, [APGD(0.02, 20)], seed=0)
        self.assertLessEqual(apgd["worst_case"][0]["robust_correct"],
                             pgd["worst_case"][0]["robust_correct"])
        self.assertLess(apgd["worst_case"][0]["robust_correct"], apgd["clean_correct"])

    def test_apgd_t_runs_each_target_and_counts_an_example_only_if_it_survives_all(self):
        model = conv_model(seed=1, num_classes=4)
        images, labels = conv_data(model, n=32)
        labels = np.minimum(labels, 3)
        model_fn = inference_logits(model)
        both = APGD(0.03, 10, target_classes=2).attack(model_fn, images, labels, seed=0,
                                                      record_at=[10])
        first = APGD(0.03, 10, target_classes=1).attack(model_fn, images, labels, seed=0,
                                                       record_at=[10])
        # The 2-target run is the 1-target run AND a second run: never more correct.
        self.assertTrue(np.all(both.correct_at.numpy() <= first.correct_at.numpy()))
        self.assertLessEqual(np.abs(both.adversarial_images.numpy() - images).max(),
                             0.03 + 1e-6)
        self.assertEqual(APGD(0.03, target_classes=9).describe()["attack"], "apgd-t")
        self.assertFalse(APGD(0.03, target_classes=9).describe()["targeted"])

    def test_later_targets_attack_only_the_examples_not_yet_fooled(self):
        model = conv_model(seed=1, num_classes=4)
        images, labels = conv_data(model, n=32)
        labels = np.minimum(labels, 3)
        model_fn = inference_logits(model)
        every = list(range(11))
        first = APGD(0.03, 10, target_classes=1).attack(model_fn, images, labels, seed=0,
                                                       record_at=every)
        fooled = ~np.all(first.correct_at.numpy(), axis=0)  # at some iterate
        self.assertTrue(fooled.any() and not fooled.all())  # both kinds present
        counted = tf.Variable(0)

        def counting(batch):  # counts the examples the model is run on
            counted.assign_add(tf.shape(batch)[0])
            return model_fn(batch)

        APGD(0.03, 10, target_classes=1).attack(counting, images, labels, seed=0)
        one_target = int(counted.numpy())
        counted.assign(0)
        both = APGD(0.03, 10, target_classes=2).attack(counting, images, labels, seed=0,
                                                      record_at=every)
        passes = (one_target - 32) // 32  # per example and run; 32 for the ranking pass
        self.assertEqual((int(counted.numpy()) - one_target) // passes, int((~fooled).sum()))
        # A fooled example keeps the first run's image and stays fooled.
        self.assertAllEqual(both.adversarial_images.numpy()[fooled],
                            first.adversarial_images.numpy()[fooled])
        self.assertAllEqual(both.correct_at.numpy()[:, fooled],
                            first.correct_at.numpy()[:, fooled])

    def test_bad_settings_are_refused(self):
        with self.assertRaisesRegex(ValueError, "loss"):
            APGD(0.1, loss="margin")
        with self.assertRaisesRegex(ValueError, r'\("ce" is now "cross_entropy"\)'):
            APGD(0.1, loss="ce")
        with self.assertRaisesRegex(ValueError, "epsilon"):
            APGD(0.0)
        with self.assertRaisesRegex(ValueError, "record_at"):
            APGD(0.1, 5).attack(self.model_fn, self.images, self.labels, record_at=[6])
