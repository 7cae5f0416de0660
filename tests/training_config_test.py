"""Tests of the training run configuration: cross-field rules and the JSON round trip."""

import dataclasses
import json
import os
import tempfile

import tensorflow as tf
from absl.testing import parameterized

from tf_atalp.attacks import PGD
from tf_atalp.data import DataConfig
from tf_atalp.defenses import get_defense
from tf_atalp.training import config as config_lib


def make_config(**overrides):
    sections = {
        "data": DataConfig(dataset="synthetic", image_size=32),
        "model": config_lib.ModelConfig(depth=10, width=8, image_size=32),
        "defense": get_defense("at_alp"),
        "attack": PGD(epsilon=0.03, step_size=0.01, iterations=3),
        "train": config_lib.TrainConfig(model_dir="/tmp/x"),
    }
    sections.update(overrides)
    return config_lib.RunConfig(**sections)


class RunConfigTest(tf.test.TestCase, parameterized.TestCase):

    def test_json_round_trip(self):
        config = make_config()
        folder = tempfile.mkdtemp()
        config_lib.save_run_config(config, folder)
        self.assertEqual(config_lib.load_run_config(folder), config)

    def test_every_defense_round_trips(self):
        folder = tempfile.mkdtemp()
        for name, options in [("none", {}), ("pat", {"ce_on": "mixed"}), ("alp", {"alpha": 2.0}),
                              ("at", {"beta": 0.3, "attention_groups": ("conv4_x",)}),
                              ("at_alp", {"alpha": 0.1, "p": 1.0}),
                              ("fd", {"denoise_mode": "dot_product",
                                      "denoise_groups": ("conv4_x", "conv5_x")})]:
            config = make_config(defense=get_defense(name, **options))
            config_lib.save_run_config(config, folder)
            self.assertEqual(config_lib.load_run_config(folder), config, name)

    def test_reads_the_run_config_of_the_previous_version(self):
        # run_config.json as the version before defenses owned their parts wrote it.
        values = json.loads(make_config().to_json())
        values["attack"].pop("jit_compile")
        values["attack"].update(training=True, restarts=1)
        values["train"].pop("attack_batchnorm_training")
        values["train"]["attack_jit_compile"] = True
        values["defense"] = {"name": "alp", "alpha": 0.7, "beta": 0.1, "attention_p": 2.0,
                             "attention_groups": ["conv2_x"], "ce_on": "adversarial"}
        config = config_lib.RunConfig.from_dict(values)
        self.assertEqual(config.defense, get_defense("alp", alpha=0.7))
        self.assertTrue(config.train.attack_batchnorm_training)
        self.assertTrue(config.attack.jit_compile)

    def test_the_overfitting_check_follows_the_defense_unless_asked(self):
        self.assertTrue(make_config(defense=get_defense("fast_at")).checks_overfitting)
        self.assertTrue(make_config(defense=get_defense("free_at")).checks_overfitting)
        self.assertFalse(make_config().checks_overfitting)
        forced = make_config(train=config_lib.TrainConfig(model_dir="/x", overfitting_check=True))
        self.assertTrue(forced.checks_overfitting)
        off = make_config(defense=get_defense("fast_at"),
                          train=config_lib.TrainConfig(model_dir="/x", overfitting_check=False))
        self.assertFalse(off.checks_overfitting)
        self.assertFalse(make_config(defense=get_defense("none"),
                                     attack=PGD(0.0, 0.01, 0)).checks_overfitting)

    def test_new_defenses_and_awp_round_trip(self):
        folder = tempfile.mkdtemp()
        for defense in (get_defense("trades", trades_beta=2.0), get_defense("mart"),
                        get_defense("fast_at", grad_align_lambda=0.2),
                        get_defense("free_at", replays=4),
                        get_defense("at_alp", awp_gamma=0.005)):
            config = make_config(defense=defense, attack=PGD(0.03, 0.01, 3,
                                                                    start_noise="gaussian"),
                                 train=config_lib.TrainConfig(model_dir="/x",
                                                              lr_schedule="cyclic"))
            config_lib.save_run_config(config, folder)
            self.assertEqual(config_lib.load_run_config(folder), config, defense.name)

    def test_eval_attack_follows_the_training_attack(self):
        config = make_config(train=config_lib.TrainConfig(model_dir="/x", eval_pgd_iterations=9))
        self.assertEqual(config.eval_attack, dataclasses.replace(config.attack, iterations=9))
        self.assertIsNone(make_config().eval_attack)

    @parameterized.named_parameters(
        ("image_sizes_differ", {"model": config_lib.ModelConfig(image_size=64)}, "image sizes"),
        ("step_above_epsilon", {"attack": PGD(0.01, 0.02, 3)}, "`step_size` must be <="),
        ("no_attack_steps", {"attack": PGD(0.03, 0.01, 0)}, "pgd_iterations"),
        ("groups", {"defense": get_defense("at", attention_groups=("conv1",))},
         "attention_groups"),
    )
    def test_cross_field_rules(self, overrides, message):
        with self.assertRaisesRegex(ValueError, message):
            make_config(**overrides)

    def test_robust_accuracy_attack_follows_the_training_attack(self):
        config = make_config()
        self.assertEqual(config.robust_accuracy_attack,
                         dataclasses.replace(config.attack, iterations=10))
        off = make_config(train=config_lib.TrainConfig(model_dir="/x", robust_accuracy_every=0))
        self.assertIsNone(off.robust_accuracy_attack)

    def test_undefended_run_needs_no_attack(self):
        make_config(defense=get_defense("none"),
                    attack=PGD(0.0, 0.01, 0))

    @parameterized.named_parameters(
        ("depth", lambda: config_lib.ModelConfig(depth=11), "`depth` must be one of"),
        ("applications_depth", lambda: config_lib.ModelConfig(architecture="applications",
                                                              depth=18), "`depth`"),
        ("weights_for_resnet", lambda: config_lib.ModelConfig(weights_path="w.h5"),
         "weights_path"),
        ("defense", lambda: get_defense("x"), "`defense` must be one of"),
        ("epochs", lambda: config_lib.TrainConfig(model_dir="/x", epochs=0), "`epochs`"),
        ("warmup", lambda: config_lib.TrainConfig(model_dir="/x", epochs=2, warmup_epochs=2),
         "warmup_epochs"),
        ("precision", lambda: config_lib.TrainConfig(model_dir="/x", mixed_precision="fp8"),
         "mixed_precision"),
        ("strategy", lambda: config_lib.TrainConfig(model_dir="/x", strategy="gpu"),
         "strategy"),
        ("robust_every", lambda: config_lib.TrainConfig(model_dir="/x", robust_accuracy_every=-1),
         "`robust_accuracy_every` must be >= 0"),
        ("map_images", lambda: config_lib.TrainConfig(model_dir="/x", attention_map_images=0),
         "`attention_map_images` must be >= 1"),
    )
    def test_single_section_rules(self, make, message):
        with self.assertRaisesRegex(ValueError, message):
            make()

    def test_corrupt_run_config_is_reported(self):
        folder = tempfile.mkdtemp()
        with open(os.path.join(folder, config_lib.RUN_CONFIG_FILE), "w") as f:
            f.write("{not json")
        with self.assertRaisesRegex(ValueError, "corrupt"):
            config_lib.load_run_config(folder)
        with self.assertRaisesRegex(FileNotFoundError, "train_main"):
            config_lib.load_run_config(tempfile.mkdtemp())


if __name__ == "__main__":
    tf.test.main()
