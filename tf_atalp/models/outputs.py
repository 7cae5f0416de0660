"""The roles of a model's outputs, and how to give any functional Keras model them.

A model the trainer and the attacks use maps float images [N, H, W, C] in
[0, 1] either to logits [N, K] alone, or to a dict whose keys are roles:

    LOGITS   "logits":   [N, K], what the model predicts (required)
    FEATURES "features": {name: [N, h, w, c]}, feature maps that defenses
                         pair (attention pairing) or inspect
    MEMBERS  "members":  {name: [N, K]}, the logits of each member of an
                         ensemble, whose mean is LOGITS

`with_feature_outputs(model, {"block1": "conv2_block3_out", ...})` taps the
named layers of any functional model (keras.applications backbones, our
ResNets, a user's model) into such a dict, the way Keras' Distiller builds
its feature extractor.
"""

from collections.abc import Mapping

import keras
import tensorflow as tf

LOGITS = "logits"
FEATURES = "features"
MEMBERS = "members"
ROLES = (LOGITS, FEATURES, MEMBERS)


def as_roles(outputs) -> dict:
    """The model outputs as a dict of roles: logits alone become {LOGITS: logits}.

    Raises ValueError for a dict without LOGITS or with keys that are not roles
    (such as feature maps next to the logits: tap them with
    `with_feature_outputs`, which puts them under FEATURES).
    """
    if not isinstance(outputs, Mapping):
        return {LOGITS: outputs}
    unknown = sorted(set(outputs) - set(ROLES))
    if LOGITS not in outputs or unknown:
        raise ValueError(
            f"A model's output dict must hold {LOGITS!r} and only the roles {ROLES}. "
            f"Received keys: {sorted(outputs)}. Feature maps go under {FEATURES!r}: "
            "`with_feature_outputs(model, {name: layer_name})` builds such a model.")
    return dict(outputs)


def logits_of(outputs) -> tf.Tensor:
    """float32 [N, K]: the logits of a model's outputs (a tensor, or a dict holding LOGITS).

    Other keys of a dict are ignored here, so models saved by earlier versions
    (feature maps next to the logits) still predict and can be attacked.
    """
    if isinstance(outputs, Mapping):
        if LOGITS not in outputs:
            raise ValueError(f"A model returning a dict must have a {LOGITS!r} entry. "
                             f"Received keys: {sorted(outputs)}")
        outputs = outputs[LOGITS]
    return tf.cast(outputs, tf.float32)


def features_of(outputs) -> dict:
    """{name: [N, h, w, c]}: the feature maps of a model's outputs ({} if it has none)."""
    return dict(as_roles(outputs).get(FEATURES, {}))


def symbolic_logits(model: keras.Model):
    """The KerasTensor of a functional model's logits [N, K] (its output, or output["logits"])."""
    output = model.output
    if isinstance(output, (list, tuple)):
        raise ValueError(
            "`model` must have one output (the logits) or a dict holding them. "
            f"Received {len(output)} outputs.")
    if isinstance(output, Mapping):
        if LOGITS not in output:
            raise ValueError(f"A model returning a dict must have a {LOGITS!r} entry. "
                             f"Received keys: {sorted(output)}")
        return output[LOGITS]
    return output


def with_feature_outputs(model: keras.Model, feature_layers: Mapping[str, str],
                         name: str | None = None) -> keras.Model:
    """A model with the same inputs and logits, plus the named layers' outputs as features.

    Args:
      model: a functional keras.Model whose output is the logits [N, K] (or a
        dict of roles holding them).
      feature_layers: {feature name: layer name}, e.g.
        {"conv2_x": "conv2_block3_out"}; each layer must be a layer of
        `model` itself (not of a nested model) with a [N, h, w, c] output.
      name: the new model's name (default: `model`'s).

    Returns:
      A functional keras.Model sharing `model`'s layers and weights, mapping
      its inputs to {"logits": [N, K], "features": {name: [N, h, w, c]}}.
    """
    if not isinstance(model, keras.Model) or not hasattr(model, "inputs") or not model.inputs:
        raise ValueError(
            "`model` must be a functional keras.Model (one built from keras.Input). "
            f"Received: {type(model).__name__}")
    if not isinstance(feature_layers, Mapping) or not feature_layers:
        raise ValueError(
            "`feature_layers` must be a non-empty dict {feature name: layer name}. "
            f"Received: feature_layers={feature_layers!r}")
    layer_names = {layer.name for layer in model.layers}
    missing = sorted(layer for layer in feature_layers.values() if layer not in layer_names)
    if missing:
        raise ValueError(
            f"Model {model.name!r} has no layer named {missing}. Layers of a nested model "
            "cannot be tapped from outside it; build the model flat (e.g. a "
            "keras.applications backbone with `input_tensor=`).")
    features = {}
    for feature, layer in feature_layers.items():
        tensor = model.get_layer(layer).output
        if len(tensor.shape) != 4:
            raise ValueError(
                f"Feature {feature!r} (layer {layer!r}) must be [N, h, w, c]. "
                f"Received shape: {tensor.shape}")
        features[feature] = tensor
    return keras.Model(model.input, {LOGITS: symbolic_logits(model), FEATURES: features},
                       name=name or model.name)
