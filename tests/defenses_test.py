"""Tests of the defense registry."""

import tensorflow as tf
from absl.testing import parameterized

from tf_atalp import defenses
from tf_atalp.loss_terms import (
    ADVERSARIAL,
    CLEAN,
    AttentionPairingTerm,
    CrossEntropyTerm,
    LogitPairingTerm,
)


class DefenseRegistryTest(tf.test.TestCase, parameterized.TestCase):

    def test_paper_defenses_are_registered(self):
        self.assertContainsSubset({"none", "pat", "alp", "at", "at_alp"},
                                  set(defenses.defense_names()))

    @parameterized.parameters(
        ("none", ("ce",), False, True, False),
        ("pat", ("ce",), True, False, True),
        ("alp", ("ce", "alp"), True, True, True),
        ("at", ("ce", "at"), True, True, True),
        ("at_alp", ("ce", "alp", "at"), True, True, True),
    )
    def test_terms_and_passes(self, name, terms, adversarial, uses_clean, uses_adversarial):
        defense = defenses.get_defense(name)
        self.assertEqual(defense.term_names, terms)
        self.assertEqual(defense.adversarial_training, adversarial)
        self.assertEqual(defense.uses(CLEAN), uses_clean)
        self.assertEqual(defense.uses(ADVERSARIAL), uses_adversarial)

    def test_weights_and_options_reach_the_terms(self):
        defense = defenses.get_defense("at_alp", alpha=0.25, beta=3.0,
                                       attention_groups=("conv5_x",), p=1.0)
        ce, alp, at = defense.loss_terms
        self.assertEqual(ce, CrossEntropyTerm(weight=1.0, on=ADVERSARIAL))
        self.assertEqual(alp, LogitPairingTerm(weight=0.25))
        self.assertEqual(at, AttentionPairingTerm(weight=3.0, groups=("conv5_x",), p=1.0))

    def test_defaults_are_documented_values(self):
        _, alp, at = defenses.get_defense("at_alp").loss_terms
        self.assertEqual(alp.weight, defenses.DEFAULT_ALPHA)
        self.assertEqual(at.weight, defenses.DEFAULT_BETA)
        self.assertEqual(at.groups, ("conv2_x", "conv3_x", "conv4_x", "conv5_x"))

    def test_pat_ignores_pairing_weights(self):
        self.assertEqual(defenses.get_defense("pat", alpha=9.0, beta=9.0).term_names, ("ce",))

    def test_mixed_cross_entropy_needs_both_passes(self):
        defense = defenses.get_defense("pat", ce_on="mixed")
        self.assertTrue(defense.uses(CLEAN) and defense.uses(ADVERSARIAL))

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "`defense` must be one of"):
            defenses.get_defense("magic")
        with self.assertRaisesRegex(ValueError, "`alpha` must be >= 0"):
            defenses.get_defense("alp", alpha=-1.0)
        with self.assertRaisesRegex(ValueError, "`on` must be one of"):
            defenses.get_defense("pat", ce_on="both")
        with self.assertRaisesRegex(ValueError, "already registered"):
            defenses.register_defense("pat", lambda **_: None)
        with self.assertRaisesRegex(ValueError, "adversarial_training=False"):
            defenses.Defense("bad", (CrossEntropyTerm(),), adversarial_training=False)

    def test_register_a_new_defense(self):
        def make(**_):
            return defenses.Defense("clean_alp_test", (CrossEntropyTerm(on="mixed"),
                                                       LogitPairingTerm(weight=1.0)),
                                    adversarial_training=True)
        defenses.register_defense("clean_alp_test", make)
        self.assertEqual(defenses.get_defense("clean_alp_test").term_names, ("ce", "alp"))


if __name__ == "__main__":
    tf.test.main()
