"""Tests of tf_atalp.evaluation.preparation: every check against the disk runs before any model load."""

import dataclasses
import os
import shutil
from unittest import mock

import tensorflow as tf
from absl.testing import parameterized

from tests.evaluation_fixtures import TEST_SIZE, make_model_dir, temporary_folder
from tf_atalp.evaluation import EvalConfig, prepare_evaluation
from tf_atalp.training.config import load_run_config, save_run_config


def prepare(**kwargs):
    return prepare_evaluation(EvalConfig(**kwargs))


class PrepareEvaluationTest(tf.test.TestCase, parameterized.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.model_dir = os.path.join(temporary_folder(cls), "run")
        make_model_dir(cls.model_dir)
        cls.saved_model = shutil.copytree(os.path.join(cls.model_dir, "saved_model"),
                                          os.path.join(temporary_folder(cls), "exported"))

    def test_without_a_run_config_the_default_epsilons_are_the_papers(self):
        config = prepare(model_dir=self.saved_model, dataset="synthetic",
                            results_file=os.path.join(temporary_folder(self), "r.json"))
        self.assertEqual(config.epsilons, (0.25, 0.5))

    def test_defaults_are_the_papers_white_box_setting(self):
        # The paper's radii 0.25 and 0.5, plus the model's training radius (8/255 here).
        config = prepare(model_dir=self.model_dir)
        self.assertEqual(config.epsilons, (8 / 255, 0.25, 0.5))
        self.assertEqual(config.config.iterations, (10, 20, 50, 100, 200))
        self.assertEqual(config.config.step_size, 0.00390625)
        attacks = [attack.describe() for attack in config.attacks()]
        self.assertEqual([a["epsilon"] for a in attacks], [8 / 255, 0.25, 0.5])
        for attack in attacks:
            self.assertEqual((attack["attack"], attack["iterations"], attack["step_size"],
                              attack["restarts"]), ("pgd", 200, 1 / 256, 1))
            self.assertTrue(attack["random_start"])
        self.assertEqual(config.results_path, os.path.join(self.model_dir, "eval_results.json"))

    def test_iterations_are_sorted_and_deduplicated(self):
        config = prepare(model_dir=self.model_dir, iterations=(20, 5, 20))
        self.assertEqual(config.config.iterations, (5, 20))
        self.assertEqual(config.attacks()[0].describe()["iterations"], 20)

    def test_bad_data_raises_before_any_model_is_loaded(self):
        with mock.patch("keras.models.load_model") as load_keras, \
                mock.patch("tensorflow.saved_model.load") as load_saved_model:
            with self.assertRaisesRegex(ValueError, "/no/such/folder"):
                prepare(model_dir=self.model_dir, dataset="flowers17", data_dir="/no/such/folder")
        load_keras.assert_not_called()
        load_saved_model.assert_not_called()

    def test_autoattack_components_the_class_count_cannot_take_are_refused_before_loading(self):
        two_classes = shutil.copytree(self.model_dir, os.path.join(temporary_folder(self), "2"))
        run_config = load_run_config(two_classes)
        save_run_config(dataclasses.replace(
            run_config, data=dataclasses.replace(run_config.data, synthetic_num_classes=2),
            model=dataclasses.replace(run_config.model, num_classes=2)), two_classes)
        with mock.patch("keras.models.load_model") as load_keras:
            for version, attacks, refused in (("standard", (), "apgd-t needs at least 4"),
                                              ("rand", (), "apgd-dlr needs at least 3")):
                with self.assertRaisesRegex(ValueError, f"^AutoAttack's {refused} classes; "
                                            "the model has 2: "):
                    prepare(model_dir=two_classes, attack="autoattack",
                            autoattack_version=version, autoattack_attacks=attacks)
        load_keras.assert_not_called()
        for version, attacks in (("custom", ("apgd-ce", "fab", "square")),
                                 ("rand", ("apgd-ce",))):
            prepared = prepare(model_dir=two_classes, attack="autoattack",
                               autoattack_version=version, autoattack_attacks=attacks)
            self.assertEqual(prepared.run_config.model.num_classes, 2)

    def test_results_file_must_not_be_a_folder(self):
        with self.assertRaisesRegex(ValueError, "`results_file` must be a file path"):
            prepare(model_dir=self.model_dir, results_file=temporary_folder(self))

    def test_outputs_that_cannot_be_written_are_refused_before_any_model_is_loaded(self):
        a_file = os.path.join(temporary_folder(self), "a_file")
        open(a_file, "w").close()
        with mock.patch("keras.models.load_model") as load_keras:
            with self.assertRaisesRegex(ValueError, "^`results_file` cannot be written: '/proc' "
                                        r"does not take new files \(.+\)\. Received: "
                                        "results_file='/proc/nowhere/r.json'$"):
                prepare(model_dir=self.model_dir, results_file="/proc/nowhere/r.json")
            with self.assertRaisesRegex(ValueError, f"^`results_file` must be a folder, but "
                                        f"{a_file!r} .*is a file"):
                prepare(model_dir=self.model_dir, results_file=os.path.join(a_file, "r.json"))
        load_keras.assert_not_called()
        # The protocol writes none of them, so it skips these checks.
        prepared = prepare_evaluation(EvalConfig(model_dir=self.model_dir,
                                                 results_file="/proc/nowhere/r.json"),
                                      check_outputs=False)
        self.assertEqual(prepared.results_path, "/proc/nowhere/r.json")

    def test_model_dir_must_hold_a_model(self):
        with self.assertRaisesRegex(ValueError, "`model_dir` holds no model to evaluate"):
            prepare(model_dir=temporary_folder(self))
        with self.assertRaisesRegex(ValueError, "`model_dir` must be set"):
            prepare(model_dir="")

    def test_saved_model_without_run_config_needs_dataset_and_results_file(self):
        with self.assertRaisesRegex(ValueError, "`results_file` must be set"):
            prepare(model_dir=self.saved_model, dataset="synthetic")
        with self.assertRaisesRegex(ValueError, "`dataset` must be set.*no run_config.json"):
            prepare(model_dir=self.saved_model, results_file="/tmp/r.json")
        config = prepare(model_dir=self.saved_model, dataset="synthetic",
                            results_file="/tmp/r.json")
        self.assertIsNone(config.run_config)
        self.assertEqual(config.data_config(48, 4).image_size, 48)
        self.assertEqual(config.data_config(48, 4).synthetic_test_size, 512)

    def test_data_defaults_to_the_training_data_without_augmentation(self):
        config = prepare(model_dir=self.model_dir, batch_size=8)
        data = config.data_config(32, 4)
        self.assertEqual(data.dataset, "synthetic")
        self.assertEqual(data.synthetic_test_size, TEST_SIZE)  # from run_config.json
        self.assertEqual(data.seed, config.run_config.data.seed)
        self.assertEqual((data.batch_size, data.augment, data.expected_num_classes),
                         (8, False, 4))

    def test_a_given_dataset_takes_nothing_from_run_config(self):
        config = prepare(model_dir=self.model_dir, dataset="synthetic")
        self.assertEqual(config.data_config(32, 4).synthetic_test_size, 512)



if __name__ == "__main__":
    tf.test.main()
