"""Tests of tf_atalp.evaluation.loading: model_dirs, SavedModels and .keras files."""

import dataclasses
import os
from unittest import mock
import shutil

import keras
import tensorflow as tf

from tests.evaluation_fixtures import (
    IMAGE_SIZE, NUM_CLASSES, make_model_dir, temporary_folder, tiny_resnet)
from tf_atalp.defenses import AttentionAndLogitPairing
from tf_atalp.evaluation import find_model, load_model_for_eval
from tf_atalp.export import ServingModel
from tf_atalp.models import build_resnet
from tf_atalp.training.config import load_run_config, save_run_config


def images_batch(n=3):
    return tf.random.stateless_uniform([n, IMAGE_SIZE, IMAGE_SIZE, 3], [5, 1])


class LoadingTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.model_dir = os.path.join(temporary_folder(cls), "run")
        cls.network = make_model_dir(cls.model_dir)

    def assert_predicts_like_the_network(self, model):
        images = images_batch()
        logits = model(images)
        logits = logits["logits"] if isinstance(logits, dict) else logits
        self.assertAllClose(logits, self.network(images)["logits"], atol=1e-5)

    def test_training_model_dir_loads_model_keras_with_its_run_config(self):
        model, description, run_config = load_model_for_eval(self.model_dir)
        self.assert_predicts_like_the_network(model)
        self.assertEqual(run_config, load_run_config(self.model_dir))
        self.assertEqual(description["format"], "keras")
        self.assertEqual(description["path"], self.model_dir)
        self.assertEqual(description["loaded_from"], os.path.join(self.model_dir, "model.keras"))
        expected = {"architecture": "resnet", "depth": 10, "width": 8, "defense": "at_alp",
                    "image_size": IMAGE_SIZE, "num_classes": NUM_CLASSES,
                    "trained_on": "synthetic", "training_attack_batchnorm_training": False}
        self.assertEqual({k: description[k] for k in expected}, expected)
        self.assertEqual(description["training_attack"]["epsilon"], 8 / 255)
        self.assertEqual(description["training_attack"]["norm"], "linf")
        self.assertEqual(description["defense_config"],
                         {"name": "at_alp", **run_config.defense.get_config()})

    def test_saved_model_in_a_model_dir_takes_the_run_config_beside_it(self):
        path = os.path.join(self.model_dir, "saved_model")
        model, description, run_config = load_model_for_eval(path)
        self.assertIsInstance(model, ServingModel)
        self.assert_predicts_like_the_network(model)
        self.assertEqual(description["format"], "saved_model")
        self.assertEqual(description["defense"], "at_alp")
        self.assertIsNotNone(run_config)
        self.assertFalse(find_model(path).is_model_dir)

    def test_standalone_saved_model_and_keras_file_have_no_run_config(self):
        folder = temporary_folder(self)
        saved_model = shutil.copytree(os.path.join(self.model_dir, "saved_model"),
                                      os.path.join(folder, "exported"))
        keras_file = shutil.copy(os.path.join(self.model_dir, "model.keras"),
                                 os.path.join(folder, "net.keras"))
        for path, model_format in ((saved_model, "saved_model"), (keras_file, "keras")):
            model, description, run_config = load_model_for_eval(path)
            self.assert_predicts_like_the_network(model)
            self.assertIsNone(run_config)
            self.assertEqual(description["format"], model_format)
            self.assertEqual((description["image_size"], description["num_classes"]),
                             (IMAGE_SIZE, NUM_CLASSES))
            self.assertNotIn("defense", description)

    def test_unfinished_training_names_what_is_missing(self):
        model_dir = temporary_folder(self)
        make_model_dir(model_dir, network=self.network, finished=False)
        with self.assertRaisesRegex(
                FileNotFoundError,
                "Training has not finished.*model.keras is missing.*epoch_001.weights.h5"):
            load_model_for_eval(model_dir)

    def test_a_folder_without_a_model_is_an_error(self):
        with self.assertRaisesRegex(FileNotFoundError, "No model at .*a SavedModel folder"):
            find_model(temporary_folder(self))
        with self.assertRaisesRegex(FileNotFoundError, "No model at"):
            find_model(os.path.join(temporary_folder(self), "missing.keras"))

    def test_run_config_with_another_image_size_is_an_error(self):
        model_dir = temporary_folder(self)
        make_model_dir(model_dir, network=self.network)
        bigger = build_resnet(10, num_classes=NUM_CLASSES, image_size=48, width=8)
        bigger.save(os.path.join(model_dir, "model.keras"))
        with self.assertRaisesRegex(ValueError, "takes 48-pixel images.*image_size=32"):
            load_model_for_eval(model_dir)

    def test_model_returning_plain_logits_loads_too(self):
        folder = temporary_folder(self)
        network = tiny_resnet()
        logits_only = keras.Model(network.inputs, network.output["logits"])
        path = os.path.join(folder, "logits.keras")
        logits_only.save(path)
        model, description, _ = load_model_for_eval(path)
        self.assertEqual(description["num_classes"], NUM_CLASSES)
        images = images_batch()
        self.assertAllClose(model(images), logits_only(images), atol=1e-5)

    def test_the_defense_says_which_model_predicts(self):
        # A defense that changes prediction (random resizing, test-time noise) wraps the
        # trained network; evaluation attacks what the defense predicts with.
        wrapped = object()
        with mock.patch.object(AttentionAndLogitPairing, "inference_model",
                               return_value=wrapped) as inference_model:
            model, _, _ = load_model_for_eval(self.model_dir)
        self.assertIs(model, wrapped)
        inference_model.assert_called_once()

    def test_run_config_round_trip_is_what_loading_reads(self):
        model_dir = temporary_folder(self)
        make_model_dir(model_dir, network=self.network)
        config = load_run_config(model_dir)
        wider = dataclasses.replace(config, defense=dataclasses.replace(config.defense, beta=0.7))
        save_run_config(wider, model_dir)
        _, description, _ = load_model_for_eval(model_dir)
        self.assertEqual(description["defense_config"]["beta"], 0.7)


if __name__ == "__main__":
    tf.test.main()
