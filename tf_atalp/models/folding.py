"""BatchNorm folded into the convolution before it: the same inference function, fewer passes.

    fast = fold_batchnorm(model)      # a new functional model; `model` is untouched

In inference mode a BatchNormalization after a convolution is a per-channel
affine map, y = s * (conv(x) - mean) + beta with s = gamma / sqrt(var + eps),
so it can be folded into the convolution: kernel * s and bias
beta - s * mean (+ s * the convolution's own bias). Under `mixed_bfloat16`
Keras runs BatchNorm in float32, casting in and out around every one, which
made it 40% of a ResNet-10 forward pass on the 2-core CPU of this project
(`bench/autoattack_precision.py` measures what folding gives an attack).

The copy shares every other layer (and its weights) with `model`, and holds
the folded convolutions' weights as they were when it was made: it is for
attacking a trained model, never for training. Folded only where exact:
a channels-last `Conv2D` without activation, called once, whose output goes
to that BatchNormalization alone (and is no model output), normalising the
last axis. Nested functional models are folded too.
"""

import keras
import numpy as np


def _producer(tensor):
    history = getattr(tensor, "_keras_history", None)
    return None if history is None else history.operation


def _foldable_pairs(model: keras.Model) -> dict[int, tuple]:
    """{id(conv) and id(bn): (conv, bn)} of every pair that folds exactly, in nested models too."""
    pairs = {}
    outputs = {id(t) for t in keras.tree.flatten(model.outputs)}
    for layer in model.layers:
        if isinstance(layer, keras.Model) and hasattr(layer, "outputs"):
            pairs.update(_foldable_pairs(layer))
        if not isinstance(layer, keras.layers.BatchNormalization) or len(
                layer._inbound_nodes) != 1:
            continue
        conv = _producer(layer.input)
        rank = len(layer.input.shape)
        if (type(conv) is not keras.layers.Conv2D or len(conv._inbound_nodes) != 1
                or len(conv._outbound_nodes) != 1 or id(conv.output) in outputs
                or conv.data_format != "channels_last" or conv.groups != 1
                or conv.activation is not keras.activations.linear
                or layer.axis not in (-1, rank - 1)):
            continue
        pairs[id(conv)] = pairs[id(layer)] = (conv, layer)
    return pairs


def _folded_conv(conv: keras.layers.Conv2D, bn: keras.layers.BatchNormalization):
    """A Conv2D with a bias computing bn(conv(x)) in inference mode."""
    kernel = conv.kernel.numpy().astype(np.float64)
    bias = conv.bias.numpy().astype(np.float64) if conv.use_bias else 0.0
    mean = bn.moving_mean.numpy().astype(np.float64)
    variance = bn.moving_variance.numpy().astype(np.float64)
    gamma = bn.gamma.numpy().astype(np.float64) if bn.scale else 1.0
    beta = bn.beta.numpy().astype(np.float64) if bn.center else 0.0
    scale = gamma / np.sqrt(variance + bn.epsilon)
    folded = keras.layers.Conv2D.from_config({**conv.get_config(), "use_bias": True})
    folded.build(conv.input.shape)
    folded.set_weights([(kernel * scale).astype(np.float32),
                        ((bias - mean) * scale + beta).astype(np.float32)])
    return folded


def fold_batchnorm(model):
    """`model` with each exactly foldable Conv2D + BatchNormalization pair made one Conv2D.

    Returns `model` itself when it is not a functional Keras model or has
    nothing to fold. See the module docstring for when a pair folds.
    """
    if not isinstance(model, keras.Model) or not hasattr(model, "outputs"):
        return model
    pairs = _foldable_pairs(model)
    if not pairs:
        return model

    identities = set()

    def clone(layer):
        pair = pairs.get(id(layer))
        if pair is None:
            return layer  # shared, weights and all
        conv, bn = pair
        if layer is conv:
            return _folded_conv(conv, bn)
        identity = keras.layers.Identity(name=bn.name, dtype=bn.dtype_policy)
        identities.add(id(identity))
        return identity

    def call(layer, *args, **kwargs):
        if id(layer) in identities:  # what stands for a BatchNorm takes no mask or mode
            return layer(args[0])
        return layer(*args, **kwargs)

    return keras.models.clone_model(model, clone_function=clone, call_function=call,
                                    recursive=True)
