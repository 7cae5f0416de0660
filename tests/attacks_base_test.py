"""Tests of tf_atalp.attacks.base: what every single attack shares (`AttackBase`)."""

import dataclasses

import keras
import tensorflow as tf
from absl.testing import parameterized

from tf_atalp import attacks

SINGLE_ATTACKS = {
    "pgd": lambda epsilon: attacks.PGD(epsilon, 0.01, 3, objective="margin"),
    "fgsm": lambda epsilon: attacks.FGSM(epsilon),
    "apgd": lambda epsilon: attacks.APGD(epsilon, 20, loss="dlr"),
    "apgd_t": lambda epsilon: attacks.APGD(epsilon, 20, target_classes=3),
    "fab": lambda epsilon: attacks.FAB(epsilon, 10, restarts=2),
    "fab_t": lambda epsilon: attacks.FABTargeted(epsilon, 10, target_classes=3),
    "square": lambda epsilon: attacks.Square(epsilon, queries=50, rescale_schedule=False),
}


class AttackBaseTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.named_parameters(*SINGLE_ATTACKS.items())
    def test_config_round_trips_through_keras_serialization(self, make):
        attack = make(0.1)
        self.assertIsInstance(attack, attacks.AttackBase)
        self.assertIsInstance(attack, attacks.Attack)
        config = attack.get_config()
        self.assertEqual(set(config), {field.name for field in dataclasses.fields(attack)})
        self.assertEqual(type(attack).from_config(config), attack)
        copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(attack))
        self.assertEqual(copy, attack)

    @parameterized.named_parameters(*SINGLE_ATTACKS.items())
    def test_epsilon_outside_the_unit_interval_is_refused(self, make):
        for epsilon in (-0.1, 1.5):
            with self.assertRaisesRegex(ValueError, r"^`epsilon` must be in [\[(]0, 1\]. "
                                        rf"Received: epsilon={epsilon}$"):
                make(epsilon)

    def test_only_pgd_takes_epsilon_zero(self):
        self.assertEqual(attacks.PGD(0.0, 0.01, 2).epsilon, 0.0)
        for name, make in SINGLE_ATTACKS.items():
            if name != "pgd":
                with self.assertRaisesRegex(ValueError, r"`epsilon` must be in \(0, 1\]"):
                    make(0.0)
        with self.assertRaisesRegex(ValueError, r"`epsilon` must be in \(0, 1\]"):
            attacks.AutoAttack(lambda images: images, 0.0)

    def test_for_xla_sets_jit_compile_only_where_there_is_one(self):
        for make in SINGLE_ATTACKS.values():
            attack = make(0.1)
            xla = attacks.for_xla(attack)
            if hasattr(attack, "jit_compile"):
                self.assertTrue(xla.jit_compile)
                self.assertEqual(dataclasses.replace(xla, jit_compile=False), attack)
            else:
                self.assertIs(xla, attack)
        already = attacks.PGD(0.1, 0.01, 3, jit_compile=True)
        self.assertIs(attacks.for_xla(already), already)
        restarted = attacks.Restarts(attacks.PGD(0.1, 0.01, 3), 2)
        self.assertIs(attacks.for_xla(restarted), restarted)


if __name__ == "__main__":
    tf.test.main()
