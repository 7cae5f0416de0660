"""One small network in Keras and in PyTorch with identical weights (for the AutoAttack cross-check).

    conv 3x3 (32, valid) - ReLU - max-pool 2 - conv 3x3 (64, valid) - ReLU -
    max-pool 2 - conv 3x3 (64, valid) - ReLU - flatten - dense 128 - ReLU -
    dense K

on 32 x 32 x 3 images in [0, 1]. Valid padding and a flatten in NHWC order
on both sides make the two forward passes the same function: Keras kernels
[kh, kw, in, out] become PyTorch's [out, in, kh, kw], dense [in, out]
becomes [out, in], and the PyTorch twin takes NCHW images and flattens its
last feature map after moving the channels last.
"""

import keras
import numpy as np

IMAGE_SIZE = 32
CONV_FILTERS = (32, 64, 64)
HIDDEN_UNITS = 128


def keras_network(num_classes: int, seed: int = 0) -> keras.Model:
    """The Keras network: images [N, 32, 32, 3] -> logits [N, num_classes]."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = inputs
    for index, filters in enumerate(CONV_FILTERS):
        x = keras.layers.Conv2D(filters, 3, activation="relu", name=f"conv{index}")(x)
        if index < len(CONV_FILTERS) - 1:
            x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(HIDDEN_UNITS, activation="relu", name="hidden")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name="crosscheck_net")


def torch_twin(network: keras.Model):
    """A `torch.nn.Module` computing `network` on NCHW images, with its weights copied."""
    import torch
    from torch import nn

    class Twin(nn.Module):
        def __init__(self):
            super().__init__()
            channels = [3, *CONV_FILTERS]
            self.convs = nn.ModuleList(nn.Conv2d(channels[i], channels[i + 1], 3)
                                       for i in range(len(CONV_FILTERS)))
            flat = network.get_layer("hidden").kernel.shape[0]
            self.hidden = nn.Linear(flat, HIDDEN_UNITS)
            self.logits = nn.Linear(HIDDEN_UNITS, network.get_layer("logits").units)

        def forward(self, images):
            x = images
            for index, conv in enumerate(self.convs):
                x = torch.relu(conv(x))
                if index < len(self.convs) - 1:
                    x = torch.max_pool2d(x, 2)
            x = x.permute(0, 2, 3, 1).flatten(1)  # NHWC order, as keras Flatten
            return self.logits(torch.relu(self.hidden(x)))

    twin = Twin()
    with torch.no_grad():
        for index, conv in enumerate(twin.convs):
            kernel, bias = network.get_layer(f"conv{index}").get_weights()
            conv.weight.copy_(torch.from_numpy(np.transpose(kernel, (3, 2, 0, 1)).copy()))
            conv.bias.copy_(torch.from_numpy(bias))
        for name in ("hidden", "logits"):
            kernel, bias = network.get_layer(name).get_weights()
            layer = getattr(twin, name)
            layer.weight.copy_(torch.from_numpy(kernel.T.copy()))
            layer.bias.copy_(torch.from_numpy(bias))
    return twin.eval()


def to_nchw(images: np.ndarray) -> np.ndarray:
    """float32 [N, H, W, C] -> [N, C, H, W]."""
    return np.ascontiguousarray(np.transpose(images, (0, 3, 1, 2)))


def to_nhwc(images: np.ndarray) -> np.ndarray:
    """float32 [N, C, H, W] -> [N, H, W, C]."""
    return np.ascontiguousarray(np.transpose(images, (0, 2, 3, 1)))
