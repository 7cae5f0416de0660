"""Random resizing and padding at inference (Xie et al. 2017), around any functional model.

"Mitigating Adversarial Effects Through Randomization" (ICLR 2018): before
the network, resize the image to r x r with r drawn uniformly from [S, P),
then zero-pad it to P x P at a random offset. Their ImageNet setting is S =
299, P = 331, nearest-neighbour resizing, one draw per batch
(cihangxie/NIPS2017_adv_challenge_defense, `defense.py`).

    randomized = randomized_model(network)   # network: [N, S, S, 3] -> logits
    randomized(images)                       # a new draw on every call

The network sees P x P images, so it must not depend on the spatial size (a
convolutional body with global pooling, as our ResNets): `with_input_size`
rebuilds it on a P x P input, sharing its layers and weights.
"""

import keras
import tensorflow as tf

from tf_atalp.models._validation import check_choice

DEFAULT_SIZE_RATIO = 331 / 299  # P / S of Xie et al.'s Inception setting
INTERPOLATIONS = ("nearest", "bilinear")


def padded_size(image_size: int, size_ratio: float = DEFAULT_SIZE_RATIO) -> int:
    """P = round(S * size_ratio), at least S + 1 (so [S, P) holds a size)."""
    if not size_ratio > 1.0:
        raise ValueError(f"`size_ratio` must be > 1. Received: size_ratio={size_ratio}")
    return max(int(round(image_size * size_ratio)), image_size + 1)


@keras.saving.register_keras_serializable(package="tf_atalp")
class RandomResizePad(keras.layers.Layer):
    """Resizes [N, S, S, C] images to r x r (r uniform in [S, P)) and zero-pads to P x P.

    One draw of r and of the offsets per call (per batch), at training and
    inference alike. Output [N, P, P, C], same dtype; values stay in the
    input's range (padding is 0). Gradients flow to the input.

    Args:
      output_size: P > S.
      interpolation: "nearest" (Xie et al.) or "bilinear".
      seed: int seed of the layer's `keras.random.SeedGenerator`, or None.
    """

    def __init__(self, output_size: int, interpolation: str = "nearest", seed=None, **kwargs):
        super().__init__(**kwargs)
        check_choice("interpolation", interpolation, INTERPOLATIONS)
        self.output_size = int(output_size)
        self.interpolation = interpolation
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        size = input_shape[1]
        if size is None or size != input_shape[2] or not self.output_size > size:
            raise ValueError(
                f"RandomResizePad takes square images smaller than output_size="
                f"{self.output_size}. Received input shape: {input_shape}")
        self.input_size = int(size)

    def _draw(self, low, high):
        """An int32 scalar uniform in [low, high)."""
        return tf.random.stateless_uniform(
            [], tf.cast(self.seed_generator.next(), tf.int32), low, high, dtype=tf.int32)

    def call(self, inputs):
        size = self._draw(self.input_size, self.output_size)
        resized = tf.image.resize(inputs, tf.stack([size, size]), method=self.interpolation)
        resized = tf.cast(resized, inputs.dtype)
        remaining = self.output_size - size
        top, left = self._draw(0, remaining), self._draw(0, remaining)
        padded = tf.pad(resized, [[0, 0], [top, remaining - top], [left, remaining - left],
                                  [0, 0]])
        return tf.ensure_shape(padded, [None, self.output_size, self.output_size,
                                        inputs.shape[-1]])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_size, self.output_size, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(output_size=self.output_size, interpolation=self.interpolation,
                      seed=self.seed)
        return config


def with_input_size(model: keras.Model, size: int) -> keras.Model:
    """`model` rebuilt on [N, size, size, C] inputs, sharing its layers and weights.

    Nested functional models (ensemble members) are rebuilt on inputs of any
    spatial size. Raises ValueError if a layer depends on the input size.
    """
    def rebuild(inner: keras.Model, shape) -> keras.Model:
        def share(layer):
            if isinstance(layer, keras.Model):
                return rebuild(layer, (None, None, layer.inputs[0].shape[-1]))
            return layer
        return keras.models.clone_model(inner, input_tensors=keras.Input(shape),
                                        clone_function=share)

    channels = model.inputs[0].shape[-1]
    try:
        return rebuild(model, (size, size, channels))
    except ValueError as error:
        raise ValueError(f"The model cannot take {size}x{size} inputs (does a layer depend "
                         f"on the image size?): {error}") from error


def randomized_model(network: keras.Model, size_ratio: float = DEFAULT_SIZE_RATIO,
                     interpolation: str = "nearest", seed=None) -> keras.Model:
    """`network` behind a `RandomResizePad` layer: images [N, S, S, 3] -> its outputs.

    P = `padded_size(S, size_ratio)`. The result shares the network's weights
    and draws anew on every call (training and inference).
    """
    image_size = int(network.inputs[0].shape[1])
    output_size = padded_size(image_size, size_ratio)
    inputs = keras.Input(tuple(network.inputs[0].shape[1:]), name="images")
    randomized = RandomResizePad(output_size, interpolation, seed=seed, dtype="float32",
                                 name="random_resize_pad")(inputs)
    outputs = with_input_size(network, output_size)(randomized)
    return keras.Model(inputs, outputs, name=f"{network.name}_randomized")
