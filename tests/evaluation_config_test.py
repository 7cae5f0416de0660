"""Tests of tf_atalp.evaluation.config and .flags: every check runs before any model load."""

import os
import shutil
from unittest import mock

import tensorflow as tf
from absl import flags
from absl.testing import parameterized

from tests.evaluation_fixtures import TEST_SIZE, make_model_dir, temporary_folder
from tf_atalp.evaluation import EvalConfig
from tf_atalp.evaluation import flags as eval_flags


def parse_flags(*args) -> flags.FlagValues:
    values = flags.FlagValues()
    eval_flags.define_eval_flags(values)
    values(["eval_main.py", *args])
    return values


class EvalConfigTest(tf.test.TestCase, parameterized.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.model_dir = os.path.join(temporary_folder(cls), "run")
        make_model_dir(cls.model_dir)
        cls.saved_model = shutil.copytree(os.path.join(cls.model_dir, "saved_model"),
                                          os.path.join(temporary_folder(cls), "exported"))

    def test_without_a_run_config_the_default_epsilons_are_the_papers(self):
        config = EvalConfig(model_dir=self.saved_model, dataset="synthetic",
                            results_file=os.path.join(temporary_folder(self), "r.json"))
        self.assertEqual(config.epsilons, (0.25, 0.5))

    def test_defaults_are_the_papers_white_box_setting(self):
        # The paper's radii 0.25 and 0.5, plus the model's training radius (8/255 here).
        config = EvalConfig(model_dir=self.model_dir)
        self.assertEqual(config.epsilons, (8 / 255, 0.25, 0.5))
        self.assertEqual(config.iterations, (10, 20, 50, 100, 200))
        self.assertEqual(config.step_size, 0.00390625)
        attacks = config.attacks()
        self.assertEqual([a.epsilon for a in attacks], [8 / 255, 0.25, 0.5])
        for attack in attacks:
            self.assertEqual((attack.iterations, attack.step_size, attack.restarts),
                             (200, 1 / 256, 1))
            self.assertTrue(attack.random_start)
        self.assertEqual(config.results_path, os.path.join(self.model_dir, "eval_results.json"))

    def test_iterations_are_sorted_and_deduplicated(self):
        config = EvalConfig(model_dir=self.model_dir, iterations=(20, 5, 20))
        self.assertEqual(config.iterations, (5, 20))
        self.assertEqual(config.attacks()[0].iterations, 20)

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
        ("dataset", {"dataset": "mnist"}, "`dataset` must be one of"),
        ("missing_data_dir", {"dataset": "flowers17", "data_dir": "/no/such/folder"},
         "/no/such/folder"))
    def test_bad_values_raise_before_any_model_is_loaded(self, kwargs, message):
        with mock.patch("keras.models.load_model") as load_keras, \
                mock.patch("tensorflow.saved_model.load") as load_saved_model:
            with self.assertRaisesRegex(ValueError, message):
                EvalConfig(model_dir=self.model_dir, **kwargs)
        load_keras.assert_not_called()
        load_saved_model.assert_not_called()

    def test_results_file_must_not_be_a_folder(self):
        with self.assertRaisesRegex(ValueError, "`results_file` must be a file path"):
            EvalConfig(model_dir=self.model_dir, results_file=temporary_folder(self))

    def test_model_dir_must_hold_a_model(self):
        with self.assertRaisesRegex(ValueError, "`model_dir` holds no model to evaluate"):
            EvalConfig(model_dir=temporary_folder(self))
        with self.assertRaisesRegex(ValueError, "`model_dir` must be set"):
            EvalConfig(model_dir="")

    def test_saved_model_without_run_config_needs_dataset_and_results_file(self):
        with self.assertRaisesRegex(ValueError, "`results_file` must be set"):
            EvalConfig(model_dir=self.saved_model, dataset="synthetic")
        with self.assertRaisesRegex(ValueError, "`dataset` must be set.*no run_config.json"):
            EvalConfig(model_dir=self.saved_model, results_file="/tmp/r.json")
        config = EvalConfig(model_dir=self.saved_model, dataset="synthetic",
                            results_file="/tmp/r.json")
        self.assertIsNone(config.run_config)
        self.assertEqual(config.data_config(48, 4).image_size, 48)
        self.assertEqual(config.data_config(48, 4).synthetic_test_size, 512)

    def test_data_defaults_to_the_training_data_without_augmentation(self):
        config = EvalConfig(model_dir=self.model_dir, batch_size=8)
        data = config.data_config(32, 4)
        self.assertEqual(data.dataset, "synthetic")
        self.assertEqual(data.synthetic_test_size, TEST_SIZE)  # from run_config.json
        self.assertEqual(data.seed, config.run_config.data.seed)
        self.assertEqual((data.batch_size, data.augment, data.expected_num_classes),
                         (8, False, 4))

    def test_a_given_dataset_takes_nothing_from_run_config(self):
        config = EvalConfig(model_dir=self.model_dir, dataset="synthetic")
        self.assertEqual(config.data_config(32, 4).synthetic_test_size, 512)


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
        with self.assertRaisesRegex(flags.IllegalFlagValueError, "--model_dir"):
            parse_flags()


if __name__ == "__main__":
    tf.test.main()
