"""Checks of the evaluation test fixtures themselves."""

import os

import keras
import tensorflow as tf

from tests.evaluation_fixtures import IMAGE_SIZE, NUM_CLASSES, make_model_dir, temporary_folder
from tf_atalp.training.config import load_run_config


class FixturesTest(tf.test.TestCase):

    def test_model_dir_has_the_training_layout(self):
        model_dir = temporary_folder(self)
        network = make_model_dir(model_dir)
        for name in ("run_config.json", "model.keras", "saved_model/saved_model.pb",
                     "checkpoints/epoch_001.weights.h5"):
            self.assertTrue(os.path.exists(os.path.join(model_dir, name)), name)
        self.assertEqual(load_run_config(model_dir).model.num_classes, NUM_CLASSES)
        reloaded = keras.models.load_model(os.path.join(model_dir, "model.keras"))
        images = tf.random.stateless_uniform([2, IMAGE_SIZE, IMAGE_SIZE, 3], [1, 2])
        self.assertAllClose(reloaded(images)["logits"], network(images)["logits"], atol=1e-5)

    def test_interrupted_model_dir_has_no_final_model(self):
        model_dir = temporary_folder(self)
        make_model_dir(model_dir, finished=False)
        self.assertFalse(os.path.exists(os.path.join(model_dir, "model.keras")))


if __name__ == "__main__":
    tf.test.main()
