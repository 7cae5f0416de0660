"""Input layers that sit in front of a backbone: pixel noise (RAT) and normalisation.

Both take float images in [0, 1] (pixel units), shape [N, H, W, C], so attacks
and their epsilons stay in pixel units while the backbone sees what it expects.
"""

import keras
from keras import ops

from tf_atalp.models._validation import check_choice

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB, pixel units in [0, 1]
IMAGENET_STD = (0.229, 0.224, 0.225)  # RGB, pixel units in [0, 1]


@keras.saving.register_keras_serializable(package="tf_atalp")
class ImageNormalization(keras.layers.Layer):
    """Per-channel `(x[..., order] - mean) / std`, mean and std in pixel units.

    Args:
        mean: one value per channel, in the channel order of the output.
        std: one positive value per channel, in the channel order of the output.
        reverse_channels: if True, reverse the channel axis first (RGB -> BGR),
            as caffe-style backbones expect.

    Input [N, H, W, C] float in [0, 1]; output [N, H, W, C] of the same dtype.
    """

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD, reverse_channels=False, **kwargs):
        super().__init__(**kwargs)
        if len(mean) != len(std):
            raise ValueError(
                    "`mean` and `std` must have one value per channel each. "
                    f"Received: mean={mean}, std={std}")
        if any(s <= 0 for s in std):
            raise ValueError(f"`std` values must all be > 0. Received: std={std}")
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.reverse_channels = bool(reverse_channels)

    def build(self, input_shape):
        if input_shape[-1] != len(self.mean):
            raise ValueError(
                    f"Expected inputs with {len(self.mean)} channels, one per `mean` value. "
                    f"Received: input_shape={input_shape}")

    def call(self, inputs):
        if self.reverse_channels:
            inputs = ops.flip(inputs, axis=-1)
        mean = ops.convert_to_tensor(self.mean, dtype=inputs.dtype)
        std = ops.convert_to_tensor(self.std, dtype=inputs.dtype)
        return (inputs - mean) / std

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(mean=self.mean, std=self.std, reverse_channels=self.reverse_channels)
        return config


NOISE_DISTRIBUTIONS = ("gaussian", "laplace", "uniform")


@keras.saving.register_keras_serializable(package="tf_atalp")
class PersistentNoise(keras.layers.Layer):
    """Adds random pixel noise at train AND inference time, then clips to [0, 1].

    The random-noise input layer of RAT (Araujo et al. 2019). Unlike
    `keras.layers.GaussianNoise` it ignores `training`: the noise is part of
    the defended model, so each call draws anew. `scale=0` makes the layer
    the identity.

    Args:
        scale: pixel units (>= 0): the standard deviation of "gaussian", the
            scale b of "laplace" (density exp(-|x|/b) / 2b), the half-width
            of "uniform" (noise in [-scale, scale]).
        distribution: one of NOISE_DISTRIBUTIONS.
        seed: int seed of the layer's `keras.random.SeedGenerator`, or None.

    Input [N, H, W, C] float in [0, 1]; output the same shape and dtype, in [0, 1].
    """

    def __init__(self, scale, distribution="gaussian", seed=None, **kwargs):
        super().__init__(**kwargs)
        if not scale >= 0:
            raise ValueError(f"`scale` must be >= 0. Received: scale={scale}")
        check_choice("distribution", distribution, NOISE_DISTRIBUTIONS)
        self.scale = float(scale)
        self.distribution = distribution
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _noise(self, shape, dtype):
        seed = self.seed_generator
        if self.distribution == "gaussian":
            return keras.random.normal(shape, stddev=self.scale, dtype=dtype, seed=seed)
        uniform = keras.random.uniform(shape, -1.0, 1.0, dtype=dtype, seed=seed)
        if self.distribution == "uniform":
            return self.scale * uniform
        # Laplace by inversion: -b sign(u) log(1 - |u|) for u uniform in (-1, 1).
        magnitude = ops.minimum(ops.abs(uniform), 1.0 - 1e-7)
        return -self.scale * ops.sign(uniform) * ops.log1p(-magnitude)

    def call(self, inputs, training=None):
        del training  # The noise is on in both modes.
        if self.scale == 0:
            return inputs
        return ops.clip(inputs + self._noise(ops.shape(inputs), inputs.dtype), 0.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(scale=self.scale, distribution=self.distribution, seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="tf_atalp")
class PersistentGaussianNoise(PersistentNoise):
    """`PersistentNoise` with Gaussian noise of standard deviation `stddev` (pixel units)."""

    def __init__(self, stddev, seed=None, **kwargs):
        kwargs.pop("scale", None)
        kwargs.pop("distribution", None)
        super().__init__(stddev, "gaussian", seed=seed, **kwargs)

    @property
    def stddev(self):
        return self.scale

    def get_config(self):
        config = super().get_config()
        del config["scale"], config["distribution"]
        config.update(stddev=self.scale)
        return config
