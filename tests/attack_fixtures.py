"""Tiny models and batches shared by the attack tests."""

import keras
import numpy as np
import tensorflow as tf

NUM_CLASSES = 3
IMAGE_SHAPE = (6, 6, 3)


def linear_model(seed=0):
    """logits = flatten(x) @ W + b, with fixed random W and b."""
    rng = np.random.default_rng(seed)
    inputs = keras.Input(IMAGE_SHAPE)
    dense = keras.layers.Dense(NUM_CLASSES)
    logits = dense(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, logits)
    weights = rng.normal(size=(int(np.prod(IMAGE_SHAPE)), NUM_CLASSES)).astype(np.float32)
    bias = rng.normal(size=NUM_CLASSES).astype(np.float32)
    dense.set_weights([weights, bias])
    return model, weights, bias


def conv_model(seed=0):
    """A small conv net with BatchNorm and a dict output."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(IMAGE_SHAPE)
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    features = keras.layers.ReLU()(x)
    logits = keras.layers.Dense(NUM_CLASSES)(keras.layers.GlobalAveragePooling2D()(features))
    return keras.Model(inputs, {"logits": logits, "conv2_x": features})


def batch(seed=0, n=16):
    rng = np.random.default_rng(seed)
    images = rng.uniform(size=(n, *IMAGE_SHAPE)).astype(np.float32)
    labels = rng.integers(0, NUM_CLASSES, size=n).astype(np.int32)
    return images, labels


def rounding_model(honest: keras.Model) -> keras.Model:
    """`honest` on its input rounded to 8 levels: the same predictions, zero input gradient."""
    inputs = keras.Input(IMAGE_SHAPE)
    rounded = keras.layers.Lambda(
        lambda x: x * 0.0 + tf.stop_gradient(tf.round(x * 7.0) / 7.0))(inputs)
    return keras.Model(inputs, honest(rounded))


class CountingModelFn:
    """A model function that counts its calls and the images it was given (in graphs too)."""

    def __init__(self, model_fn):
        self.model_fn = model_fn
        self.calls = tf.Variable(0, dtype=tf.int64)
        self.images = tf.Variable(0, dtype=tf.int64)

    def __call__(self, images):
        self.calls.assign_add(1)
        self.images.assign_add(tf.cast(tf.shape(images)[0], tf.int64))
        return self.model_fn(images)
