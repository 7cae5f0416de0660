"""Functional ResNet v1 building blocks (He et al. 2015): stems, basic and bottleneck blocks.

Each function takes a [N, H, W, C] tensor and returns the block's output
tensor; layer names follow keras.applications ("conv3_block2_1_conv", ...).
"""

import keras

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5
BOTTLENECK_EXPANSION = 4


def conv_bn(x, filters, kernel_size, stride, name, relu=True):
    """Conv (no bias, "same" padding) + BN (+ ReLU); layers named `{name}_conv|_bn|_relu`."""
    x = keras.layers.Conv2D(
            filters, kernel_size, strides=stride, padding="same", use_bias=False,
            kernel_initializer="he_normal", name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(
            momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    if relu:
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return x


def imagenet_stem(x, filters):
    """7x7/2 conv + BN + ReLU + 3x3/2 max pool: [N, S, S, 3] -> [N, S/4, S/4, filters]."""
    x = conv_bn(x, filters, 7, 2, name="stem")
    return keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)


def cifar_stem(x, filters):
    """3x3/1 conv + BN + ReLU, no pooling: [N, S, S, 3] -> [N, S, S, filters]."""
    return conv_bn(x, filters, 3, 1, name="stem")


def basic_block(x, filters, stride, name):
    """Two 3x3 convs: [N, H, W, C] -> [N, H/stride, W/stride, filters]."""
    shortcut = _shortcut(x, filters, stride, name)
    x = conv_bn(x, filters, 3, stride, name=f"{name}_1")
    x = conv_bn(x, filters, 3, 1, name=f"{name}_2", relu=False)
    return _merge(shortcut, x, name)


def bottleneck_block(x, filters, stride, name):
    """1x1 (strided, as in v1), 3x3, 1x1 convs: [N, H, W, C] -> [N, H/s, W/s, 4 * filters]."""
    shortcut = _shortcut(x, BOTTLENECK_EXPANSION * filters, stride, name)
    x = conv_bn(x, filters, 1, stride, name=f"{name}_1")
    x = conv_bn(x, filters, 3, 1, name=f"{name}_2")
    x = conv_bn(x, BOTTLENECK_EXPANSION * filters, 1, 1, name=f"{name}_3", relu=False)
    return _merge(shortcut, x, name)


def _shortcut(x, filters, stride, name):
    """The identity, or a 1x1 conv + BN projection (`{name}_0_*`) when the shape changes."""
    if stride == 1 and x.shape[-1] == filters:
        return x
    return conv_bn(x, filters, 1, stride, name=f"{name}_0", relu=False)


def _merge(shortcut, residual, name):
    x = keras.layers.Add(name=f"{name}_add")([shortcut, residual])
    return keras.layers.ReLU(name=f"{name}_out")(x)
