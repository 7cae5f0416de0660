"""The feature-denoising block of Xie et al. 2018 (non-local means + 1x1 conv + BN + residual)."""

import math

import keras
from keras import ops

from tf_atalp.models.blocks import BN_EPSILON, BN_MOMENTUM

NONLOCAL_MODES = ("embedded_gaussian", "dot_product", "gaussian")


@keras.saving.register_keras_serializable(package="tf_atalp")
class NonLocalDenoising(keras.layers.Layer):
    """`x + BN(Conv1x1(nonlocal_means(x)))`, shape-preserving on [N, H, W, C].

    `nonlocal_means` replaces each position i by `sum_j w(i, j) x_j / C(i)`
    over all H*W positions j, with the weights of `mode`:

    - "embedded_gaussian": `softmax_j(theta(x_i) . phi(x_j) / sqrt(d))`.
    - "dot_product": `theta(x_i) . phi(x_j) / (H * W)`.
    - "gaussian": `softmax_j(x_i . x_j / sqrt(C))` (no embedding).

    theta and phi are 1x1 convs to `d` channels. The 1/sqrt(d) scaling follows
    the authors' released code. The BN scale starts at zero by default, so a
    new block is the identity and training grows the denoising branch.

    Args:
        mode: one of NONLOCAL_MODES.
        embed_channels: d, the theta/phi width; None means C // 2 (at least 1).
        zero_init: start the BN scale (gamma) at 0.
    """

    def __init__(self, mode="embedded_gaussian", embed_channels=None, zero_init=True, **kwargs):
        super().__init__(**kwargs)
        if mode not in NONLOCAL_MODES:
            raise ValueError(f"`mode` must be one of {NONLOCAL_MODES}. Received: mode={mode!r}")
        if embed_channels is not None and embed_channels < 1:
            raise ValueError(
                    "`embed_channels` must be None or >= 1. "
                    f"Received: embed_channels={embed_channels}")
        self.mode = mode
        self.embed_channels = embed_channels
        self.zero_init = bool(zero_init)
        self.theta = None  # The sublayers are made in build(), once C is known.
        self.phi = None
        self.projection = None
        self.norm = None

    def build(self, input_shape):
        channels = input_shape[-1]
        if self.mode != "gaussian":
            embed_channels = self.embed_channels or max(1, channels // 2)
            self.theta = self._embedding("theta", embed_channels)
            self.phi = self._embedding("phi", embed_channels)
            self.theta.build(input_shape)
            self.phi.build(input_shape)
        self.projection = keras.layers.Conv2D(
                channels, 1, use_bias=False, kernel_initializer="he_normal",
                dtype=self.dtype_policy, name="projection")
        self.norm = keras.layers.BatchNormalization(
                momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
                gamma_initializer="zeros" if self.zero_init else "ones",
                dtype=self.dtype_policy, name="norm")
        self.projection.build(input_shape)
        self.norm.build(input_shape)

    def _embedding(self, name, channels):
        return keras.layers.Conv2D(
                channels, 1, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                dtype=self.dtype_policy, name=name)

    def nonlocal_means(self, inputs):
        """Returns the denoised features [N, H, W, C], before the 1x1 conv and BN."""
        shape = ops.shape(inputs)
        positions = shape[1] * shape[2]
        values = ops.reshape(inputs, (-1, positions, shape[3]))  # [N, HW, C]
        if self.mode == "gaussian":
            theta = phi = values
        else:
            theta = ops.reshape(self.theta(inputs), (-1, positions, self.theta.filters))
            phi = ops.reshape(self.phi(inputs), (-1, positions, self.phi.filters))
        if self.mode == "dot_product":
            denoised = _dot_product_means(theta, phi, values)
        else:
            denoised = _softmax_means(theta, phi, values)
        return ops.reshape(denoised, shape)

    def call(self, inputs, training=None):
        branch = self.norm(self.projection(self.nonlocal_means(inputs)), training=training)
        return inputs + branch

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(mode=self.mode, embed_channels=self.embed_channels, zero_init=self.zero_init)
        return config


def _softmax_means(theta, phi, values):
    """softmax_j(theta_i . phi_j / sqrt(d)) @ values: [N, P, d] x2, [N, P, C] -> [N, P, C]."""
    if theta.shape[1] == 1:  # One position: its only weight is 1.
        return values
    scale = 1.0 / math.sqrt(theta.shape[-1])
    logits = ops.einsum("nid,njd->nij", theta, phi) * ops.cast(scale, theta.dtype)
    weights = ops.cast(ops.softmax(ops.cast(logits, "float32"), axis=-1), values.dtype)
    return ops.einsum("nij,njc->nic", weights, values)


def _dot_product_means(theta, phi, values):
    """(theta @ phi^T / P) @ values: [N, P, d] x2, [N, P, C] -> [N, P, C].

    Multiplies in whichever order is cheaper: the [N, P, P] affinity matrix when
    P is small, else `theta @ (phi^T @ values)`, which never forms it.
    """
    positions, embed_channels, channels = phi.shape[1], phi.shape[2], values.shape[2]
    associative_cost = 2 * embed_channels * channels  # per position, vs P * (d + C)
    if positions is not None and associative_cost < positions * (embed_channels + channels):
        denoised = ops.einsum("nid,ndc->nic", theta, ops.einsum("njd,njc->ndc", phi, values))
    else:
        denoised = ops.einsum("nij,njc->nic", ops.einsum("nid,njd->nij", theta, phi), values)
    return denoised / ops.cast(ops.shape(values)[1], values.dtype)
