"""Tests of tf_atalp.defenses: the registry, the defense classes and their configs."""

import dataclasses

import tensorflow as tf
from absl.testing import parameterized

from tf_atalp import defenses
from tf_atalp.defenses import (
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

    def test_leaderboard_defenses_are_registered_with_their_step_strategies(self):
        self.assertContainsSubset({"trades", "mart", "fast_at", "free_at"},
                                  set(defenses.defense_names()))
        plain = defenses.get_defense("pat")
        self.assertEqual((plain.free_replays(), plain.weight_perturbation(),
                          plain.updates_per_batch(), plain.epochs_to_run(10),
                          plain.watches_overfitting()), (0, 0.0, 1, 10, False))
        self.assertEqual(defenses.get_defense("free_at").updates_per_batch(), 8)
        self.assertTrue(defenses.get_defense("fast_at").watches_overfitting())
        self.assertEqual(defenses.get_defense("at_alp", awp_gamma=0.01).weight_perturbation(),
                         0.01)

    def test_one_set_of_options_configures_every_new_defense(self):
        # The options of train_main's flags, passed to every defense: each takes its own.
        options = {"alpha": 0.5, "beta": 0.1, "trades_beta": 3.0, "mart_lambda": 4.0,
                   "fgsm_step": 1.0, "grad_align_lambda": 0.2, "replays": 4}
        self.assertEqual(defenses.get_defense("trades", **options).trades_beta, 3.0)
        self.assertEqual(defenses.get_defense("mart", **options).mart_lambda, 4.0)
        fast = defenses.get_defense("fast_at", **options)
        self.assertEqual((fast.fgsm_step, fast.grad_align_lambda), (1.0, 0.2))
        self.assertEqual(defenses.get_defense("free_at", **options).replays, 4)

    @parameterized.parameters(
        ("none", ("ce",), False, True, False),
        ("pat", ("ce",), True, False, True),
        ("alp", ("ce", "alp"), True, True, True),
        ("at", ("ce", "at"), True, True, True),
        ("at_alp", ("ce", "alp", "at"), True, True, True),
        ("trades", ("ce", "kl"), True, True, True),
        ("mart", ("boosted_ce", "weighted_kl"), True, True, True),
        ("fast_at", ("ce",), True, False, True),
        ("free_at", ("ce",), True, False, True),
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
        ce, alp, at = defense.loss_terms()
        self.assertEqual(ce, CrossEntropyTerm(weight=1.0, on=ADVERSARIAL))
        self.assertEqual(alp, LogitPairingTerm(weight=0.25))
        self.assertEqual(at, AttentionPairingTerm(weight=3.0, groups=("conv5_x",), p=1.0))

    def test_defaults_are_documented_values(self):
        _, alp, at = defenses.get_defense("at_alp").loss_terms()
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
            defenses.register_defense(defenses.PGDTraining)
        with self.assertRaisesRegex(ValueError, "No defense has the option"):
            defenses.get_defense("at_alp", gamma=1.0)

        @dataclasses.dataclass(frozen=True)
        class Inconsistent(defenses.Defense):
            name = "inconsistent_test"
            adversarial_training = False

            def loss_terms(self):
                return (CrossEntropyTerm(on=ADVERSARIAL),)

        with self.assertRaisesRegex(ValueError, "adversarial_training=False"):
            Inconsistent()

    def test_register_a_new_defense(self):
        @defenses.register_defense
        @dataclasses.dataclass(frozen=True)
        class CleanLogitPairing(defenses.Defense):
            name = "clean_alp_test"
            alpha: float = 1.0

            def loss_terms(self):
                return (CrossEntropyTerm(on="mixed"), LogitPairingTerm(weight=self.alpha))

        defense = defenses.get_defense("clean_alp_test", alpha=2.0, beta=5.0)
        self.assertEqual(defense.term_names, ("ce", "alp"))
        self.assertEqual(defense.loss_terms()[1].weight, 2.0)
        self.assertEqual(defenses.defense_from_config(defenses.defense_config(defense)), defense)

    @parameterized.parameters("none", "pat", "alp", "at", "at_alp", "fd", "igr", "rat",
                              "randomization", "adp")
    def test_config_round_trips(self, name):
        defense = defenses.get_defense(name, alpha=0.3, beta=0.2, ce_on="mixed",
                                       attention_groups=("conv3_x", "conv4_x"), p=1.5,
                                       igr_lambda=3.0, noise_scale=0.1, size_ratio=1.2,
                                       members=4, entropy_weight=1.0)
        config = defenses.defense_config(defense)
        self.assertEqual(config["name"], name)
        self.assertEqual(defenses.defense_from_config(config), defense)
        self.assertEqual(defenses.defense_class(name).from_config(defense.get_config()),
                         defense)

    def test_hyperparameters_are_the_classes_fields(self):
        self.assertEqual(defenses.get_defense("none").get_config(), {})
        self.assertEqual(set(defenses.get_defense("alp").get_config()), {"alpha", "ce_on"})
        self.assertEqual(set(defenses.get_defense("at_alp").get_config()),
                         {"alpha", "beta", "attention_groups", "p", "attention_power", "ce_on"})

    def test_feature_denoising_owns_its_model_options(self):
        defense = defenses.get_defense("fd", denoise_groups=("conv3_x",),
                                       denoise_mode="dot_product", alpha=3.0)
        self.assertEqual(defense.term_names, ("ce",))
        self.assertTrue(defense.adversarial_training)
        self.assertEqual(defense.model_options(), {"denoise_groups": ("conv3_x",),
                                                   "denoise_kwargs": {"mode": "dot_product"}})
        self.assertEqual(defenses.get_defense("fd").model_options()["denoise_groups"],
                         ("conv2_x", "conv3_x", "conv4_x", "conv5_x"))
        with self.assertRaisesRegex(ValueError, "`denoise_mode` must be one of"):
            defenses.get_defense("fd", denoise_mode="median")
        with self.assertRaisesRegex(ValueError, "`denoise_groups` must be a non-empty subset"):
            defenses.get_defense("fd", denoise_groups=("conv9_x",))

    def test_default_model_parts(self):
        defense = defenses.get_defense("at_alp")
        self.assertEqual(defense.model_options(), {})
        network = object()
        self.assertIs(defense.inference_model(network), network)


if __name__ == "__main__":
    tf.test.main()
