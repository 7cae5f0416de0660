"""Tests of tf_atalp.evaluation.config and .flags: field checks, which read no file."""

import os
from unittest import mock

import tensorflow as tf
from absl import flags
from absl.testing import parameterized

from tests.evaluation_fixtures import make_model_dir, temporary_folder
from tf_atalp.evaluation import EvalConfig
from tf_atalp.evaluation import flags as eval_flags


def parse_flags(*args) -> flags.FlagValues:
    values = flags.FlagValues()
    eval_flags.define_eval_flags(values)
    values(["eval_main.py", *args])
    return values


class EvalConfigTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.named_parameters(
        ("epsilon_above_one", {"epsilons": (0.25, 1.5)},
         r"`epsilons` must be in \[0, 1\]. Received: epsilons=\[0.25, 1.5\]"),
        ("negative_epsilon", {"epsilons": (-0.1,)}, r"`epsilons` must be in \[0, 1\]"),
        ("no_epsilons", {"epsilons": ()}, r"`epsilons` must be in \[0, 1\]"),
        ("zero_iterations", {"iterations": (0, 5)},
         r"`iterations` must be counts >= 1. Received: iterations=\[0, 5\]"),
        ("step_size", {"step_size": 0.0}, r"`step_size` must be in \(0, 1\]"),
        ("restarts", {"restarts": 0}, "`restarts` must be >= 1"),
        ("restarts_without_random_start", {"restarts": 2, "random_start": False},
         "needs `random_start=True`"),
        ("objective", {"objective": "hinge"}, "`objective` must be one of"),
        ("split", {"split": "validation"}, r"`split` must be one of \('train', 'test'\)"),
        ("data_source", {"data_source": "web"}, "`data_source` must be one of"),
        ("batch_size", {"batch_size": 0}, "`batch_size` must be >= 1"),
        ("max_examples", {"max_examples": 0}, "`max_examples` must be >= 1"),
        ("seed", {"seed": -1}, "`seed` must be >= 0"),
        ("attack", {"attack": "cw"}, "`attack` must be one of"),
        ("apgd_at_zero_epsilon", {"attack": "apgd-ce", "epsilons": (0.0, 0.1)},
         "must be > 0 for apgd-ce"),
        ("apgd_transfer", {"attack": "apgd-t", "transfer_from": "/src"},
         "`transfer_from` crafts with PGD"),
        ("autoattack_attacks", {"attack": "autoattack", "autoattack_version": "custom",
                                "autoattack_attacks": ("apgd-ce", "cw")},
         r"`autoattack_attacks` must be from \(.*'fab'.*\). Received: "
         r"autoattack_attacks=\['apgd-ce', 'cw'\]"),
        ("autoattack_attacks_of_standard", {"attack": "autoattack",
                                            "autoattack_attacks": ("apgd-ce",)},
         r"^`autoattack_attacks` names the attacks of version custom or rand; 'standard' "
         r"runs its own. Received: autoattack_attacks=\['apgd-ce'\]$"),
        ("autoattack_version", {"attack": "autoattack", "autoattack_version": "plus-plus"},
         "`autoattack_version` must be one of .*'plus'"),
        ("model_dir", {"model_dir": ""}, "`model_dir` must be set"))
    def test_bad_values_raise(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            EvalConfig(**{"model_dir": "/any/run", **kwargs})

    def test_the_config_is_plain_data_and_reads_no_file(self):
        with mock.patch("os.path.isdir") as isdir, mock.patch("os.path.isfile") as isfile, \
                mock.patch("builtins.open") as opened:
            config = EvalConfig(model_dir="/no/such/run", dataset="flowers17",
                                data_dir="/no/such/folder", epsilons=[0.5, 0.25])
        for function in (isdir, isfile, opened):
            function.assert_not_called()
        self.assertEqual(config.epsilons, (0.5, 0.25))

class EvalFlagsTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.model_dir = os.path.join(temporary_folder(cls), "run")
        make_model_dir(cls.model_dir)

    def test_flags_become_the_config(self):
        values = parse_flags(f"--model_dir={self.model_dir}", "--epsilons=0.03,0.1",
                             "--iterations=5,2", "--step_size=0.01", "--restarts=3",
                             "--objective=margin", "--max_examples=64", "--seed=7",
                             "--results_file=/tmp/x.json", "--split=train")
        config = eval_flags.eval_config_from_flags(values)
        self.assertEqual(config, EvalConfig(
            model_dir=self.model_dir, epsilons=(0.03, 0.1), iterations=(2, 5), step_size=0.01,
            restarts=3, objective="margin", max_examples=64, seed=7,
            results_file="/tmp/x.json", split="train"))

    def test_fab_attacks_and_the_plus_version_are_flags(self):
        for attack in ("fab", "fab-t"):
            config = eval_flags.eval_config_from_flags(parse_flags(
                f"--model_dir={self.model_dir}", f"--attack={attack}", "--restarts=5"))
            self.assertEqual((config.attack, config.restarts), (attack, 5))
        config = eval_flags.eval_config_from_flags(parse_flags(
            f"--model_dir={self.model_dir}", "--attack=autoattack", "--version=plus"))
        self.assertEqual((config.attack, config.autoattack_version), ("autoattack", "plus"))
        config = eval_flags.eval_config_from_flags(parse_flags(
            f"--model_dir={self.model_dir}", "--attack=autoattack", "--version=custom",
            "--autoattack_attacks=fab,square"))
        self.assertEqual(config.autoattack_attacks, ("fab", "square"))
        config = eval_flags.eval_config_from_flags(parse_flags(
            f"--model_dir={self.model_dir}", "--attack=autoattack", "--version=rand",
            "--autoattack_attacks=apgd-ce"))
        self.assertEqual((config.autoattack_version, config.autoattack_attacks),
                         ("rand", ("apgd-ce",)))

    def test_flag_defaults_equal_the_config_defaults(self):
        config = eval_flags.eval_config_from_flags(parse_flags(f"--model_dir={self.model_dir}"))
        self.assertEqual(config, EvalConfig(model_dir=self.model_dir))

    def test_lists_that_are_not_numbers_name_the_flag(self):
        values = parse_flags(f"--model_dir={self.model_dir}", "--iterations=ten")
        with self.assertRaisesRegex(ValueError, "`iterations` must be a comma-separated list"):
            eval_flags.eval_config_from_flags(values)

    def test_enum_flags_name_their_allowed_values(self):
        for flag, allowed in (("objective", "cross_entropy|margin"), ("split", "train|test"),
                              ("data_source", "auto|folder|tfds")):
            with self.assertRaisesRegex(flags.IllegalFlagValueError, allowed):
                parse_flags(f"--model_dir={self.model_dir}", f"--{flag}=bad")

    def test_model_dir_is_required(self):
        # Not at parse time (--protocol=paper names its models with --targets).
        with self.assertRaisesRegex(ValueError, "`model_dir` must be set"):
            eval_flags.eval_config_from_flags(parse_flags())


if __name__ == "__main__":
    tf.test.main()
