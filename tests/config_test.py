"""Tests of the run configuration: cross-field rules and the JSON round trip."""

import dataclasses
import os
import tempfile

import tensorflow as tf
from absl.testing import parameterized

from tf_atalp import config as config_lib
from tf_atalp.attacks import PGDConfig
from tf_atalp.data import DataConfig


def make_config(**overrides):
    sections = {
        "data": DataConfig(dataset="synthetic", image_size=32),
        "model": config_lib.ModelConfig(depth=10, width=8, image_size=32),
        "defense": config_lib.DefenseConfig(),
        "attack": PGDConfig(epsilon=0.03, step_size=0.01, iterations=3),
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

    def test_eval_attack_follows_the_training_attack(self):
        config = make_config(train=config_lib.TrainConfig(model_dir="/x", eval_pgd_iterations=9))
        self.assertEqual(config.eval_attack, dataclasses.replace(config.attack, iterations=9))
        self.assertIsNone(make_config().eval_attack)

    @parameterized.named_parameters(
        ("image_sizes_differ", {"model": config_lib.ModelConfig(image_size=64)}, "image sizes"),
        ("step_above_epsilon", {"attack": PGDConfig(0.01, 0.02, 3)}, "`step_size` must be <="),
        ("no_attack_steps", {"attack": PGDConfig(0.03, 0.01, 0)}, "pgd_iterations"),
        ("restarts_in_training", {"attack": PGDConfig(0.03, 0.01, 3, restarts=2)}, "restarts"),
    )
    def test_cross_field_rules(self, overrides, message):
        with self.assertRaisesRegex(ValueError, message):
            make_config(**overrides)

    def test_undefended_run_needs_no_attack(self):
        make_config(defense=config_lib.DefenseConfig(name="none"),
                    attack=PGDConfig(0.0, 0.01, 0))

    @parameterized.named_parameters(
        ("depth", lambda: config_lib.ModelConfig(depth=11), "`depth` must be one of"),
        ("applications_depth", lambda: config_lib.ModelConfig(architecture="applications",
                                                              depth=18), "`depth`"),
        ("weights_for_resnet", lambda: config_lib.ModelConfig(weights_path="w.h5"),
         "weights_path"),
        ("defense", lambda: config_lib.DefenseConfig(name="x"), "`defense` must be one of"),
        ("groups", lambda: config_lib.DefenseConfig(attention_groups=("conv1",)),
         "attention_groups"),
        ("epochs", lambda: config_lib.TrainConfig(model_dir="/x", epochs=0), "`epochs`"),
        ("warmup", lambda: config_lib.TrainConfig(model_dir="/x", epochs=2, warmup_epochs=2),
         "warmup_epochs"),
        ("precision", lambda: config_lib.TrainConfig(model_dir="/x", mixed_precision="fp8"),
         "mixed_precision"),
        ("strategy", lambda: config_lib.TrainConfig(model_dir="/x", strategy="gpu"),
         "strategy"),
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
