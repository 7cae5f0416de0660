"""Builders of tiny models and model_dirs for the evaluation tests, and their own checks.

`make_model_dir` writes the layout a finished train_main run leaves
(run_config.json, model.keras, saved_model/) for a tiny ResNet-10 on the
synthetic dataset. `conv_model`, `conv_data` and `dataset_of` make a tiny
conv net and batches for attack evaluations; `CountingModel` counts the
examples a model runs forward.
"""

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from tf_atalp.attacks import PGD
from tf_atalp.data import DataConfig
from tf_atalp.defenses import get_defense
from tf_atalp.export import export_saved_model
from tf_atalp.model_dir import CHECKPOINTS_DIR, MODEL_FILE, SAVED_MODEL_DIR
from tf_atalp.models import build_resnet
from tf_atalp.training.config import ModelConfig, RunConfig, TrainConfig, save_run_config

CONV_SHAPE = (8, 8, 3)
NUM_CLASSES = 4
IMAGE_SIZE = 32
TEST_SIZE = 64


def temporary_folder(test_case) -> str:
    """A new folder, removed when the test ends (given a class, when the class ends)."""
    folder = tempfile.TemporaryDirectory()
    if isinstance(test_case, type):
        return test_case.enterClassContext(folder)
    return test_case.enterContext(folder)


def tiny_resnet(seed=0, width=8, **options) -> keras.Model:
    """ResNet-10, width 8, 4 classes, 32-pixel images (dict outputs); `options` of build_resnet."""
    keras.utils.set_random_seed(seed)
    return build_resnet(10, num_classes=NUM_CLASSES, image_size=IMAGE_SIZE, width=width,
                        **options)


def tiny_run_config(model_dir: str, defense: str = "at_alp", width: int = 8) -> RunConfig:
    """A run of `defense` (default AT+ALP) on the synthetic dataset with the tiny ResNet."""
    return RunConfig(
        data=DataConfig(dataset="synthetic", image_size=IMAGE_SIZE, batch_size=32,
                        synthetic_train_size=128, synthetic_test_size=TEST_SIZE,
                        synthetic_num_classes=NUM_CLASSES),
        model=ModelConfig(architecture="resnet", depth=10, width=width, num_classes=NUM_CLASSES,
                          image_size=IMAGE_SIZE),
        defense=get_defense(defense),
        attack=PGD(epsilon=8 / 255, step_size=2 / 255, iterations=2),
        train=TrainConfig(model_dir=model_dir, epochs=1))


def make_model_dir(model_dir: str, network: keras.Model | None = None,
                   finished: bool = True, defense: str = "at_alp", width: int = 8,
                   seed: int = 0) -> keras.Model:
    """Writes a finished (or, with finished=False, an interrupted) training model_dir.

    `defense` names the trained defense: the network is built with its model
    options and exported through its inference model, as train_main does.
    """
    run_config = tiny_run_config(model_dir, defense, width)
    network = network or tiny_resnet(seed, width, **run_config.defense.model_options())
    os.makedirs(os.path.join(model_dir, CHECKPOINTS_DIR), exist_ok=True)
    save_run_config(run_config, model_dir)
    network.save_weights(os.path.join(model_dir, CHECKPOINTS_DIR, "epoch_001.weights.h5"))
    if finished:
        network.save(os.path.join(model_dir, MODEL_FILE))
        export_saved_model(run_config.defense.inference_model(network),
                           os.path.join(model_dir, SAVED_MODEL_DIR),
                           randomization=run_config.defense.randomization())
    return network


def dataset_of(images, labels, batch_size=16):
    return tf.data.Dataset.from_tensor_slices(
        (images.astype(np.float32), labels.astype(np.int32))).batch(batch_size)


def conv_model(seed=0, num_classes=3):
    """Conv + BatchNorm + ReLU + Dense, dict output, on 8x8 images."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(CONV_SHAPE)
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    logits = keras.layers.Dense(num_classes)(keras.layers.Flatten()(x))
    return keras.Model(inputs, {"logits": logits, "conv2_x": x})


def conv_data(model, n=48, seed=0):
    """Random images; labels are the model's predictions for 3/4 of them."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(size=(n, *CONV_SHAPE)).astype(np.float32)
    predicted = np.argmax(model(images)["logits"].numpy(), axis=1)
    wrong = (predicted + 1) % 3
    return images, np.where(np.arange(n) % 4 == 3, wrong, predicted)


class CountingModel:
    """A model that counts the examples it has run forward (a tf.Variable, so traced code counts)."""

    def __init__(self, model):
        self.model = model
        self.examples = tf.Variable(0, dtype=tf.int64)

    def __call__(self, images, training=False):
        self.examples.assign_add(tf.cast(tf.shape(images)[0], tf.int64))
        return self.model(images, training=training)
