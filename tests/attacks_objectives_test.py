"""Tests of tf_atalp.attacks.objectives: values by hand, binding to the clean logits."""

import numpy as np
import tensorflow as tf

from tf_atalp.attacks import OBJECTIVES, Objective, get_objective
from tf_atalp.attacks.objectives import objective_name


class ObjectivesTest(tf.test.TestCase):

    def test_registered_names(self):
        self.assertEqual(OBJECTIVES, ("cross_entropy", "margin", "kl_to_clean", "dlr"))
        self.assertTrue(get_objective("kl_to_clean").needs_clean_logits)
        self.assertFalse(get_objective("margin").needs_clean_logits)

    def test_plain_objectives_bind_to_themselves(self):
        objective = get_objective("cross_entropy")
        self.assertIs(objective.bind(lambda images: images, tf.zeros([1, 2])), objective)
        logits = tf.constant([[0.0, 0.0]])
        self.assertAllClose(objective(logits, tf.constant([1])), [np.log(2.0)])

    def test_kl_to_clean_is_bound_to_the_clean_prediction_once(self):
        calls = []

        def model_fn(images):
            calls.append(1)
            return tf.reshape(images, [-1, 2])

        clean = tf.constant([[[[0.0, 0.0]]]])  # logits (0, 0): p = (1/2, 1/2)
        bound = get_objective("kl_to_clean").bind(model_fn, clean)
        self.assertLen(calls, 1)
        # q = (3/4, 1/4): KL(p || q) = 1/2 ln(4/3); the labels play no part.
        for label in (0, 1):
            self.assertAllClose(bound(tf.constant([[np.log(3.0), 0.0]]), tf.constant([label])),
                                [0.5 * np.log(4.0 / 3.0)])
        self.assertLen(calls, 1)

    def test_the_clean_logits_are_held_fixed(self):
        clean = tf.constant([[0.3, -0.2]])
        with tf.GradientTape() as tape:
            tape.watch(clean)
            bound = get_objective("kl_to_clean").bind(lambda images: images, clean)
            value = bound(tf.constant([[1.0, 0.0]]), tf.constant([0]))
        self.assertIsNone(tape.gradient(value, clean))

    def test_objects_and_errors(self):
        custom = Objective("negated_margin", lambda logits, labels: -logits[:, 0])
        self.assertIs(get_objective(custom), custom)
        self.assertEqual(objective_name(get_objective("margin")), "margin")
        with self.assertRaisesRegex(ValueError, "cannot be saved by name"):
            objective_name(custom)
        with self.assertRaisesRegex(ValueError, "`objective` must be one of"):
            get_objective("hinge")
        with self.assertRaisesRegex(ValueError, "needs the clean logits"):
            get_objective("kl_to_clean")(tf.zeros([1, 2]), tf.constant([0]))


if __name__ == "__main__":
    tf.test.main()
