"""The classification head and the dict of outputs every model builder returns."""

import keras

GROUP_NAMES = ("conv2_x", "conv3_x", "conv4_x", "conv5_x")


def classifier_outputs(features, groups, num_classes):
    """Returns `{"logits": [N, num_classes] float32, **groups}`.

    Args:
        features: [N, H, W, C], the last conv group's output.
        groups: dict GROUP_NAMES -> [N, H, W, C] group outputs.
        num_classes: K, the number of logits.

    The head is global average pooling + Dense(K). The Dense runs in float32,
    so logits stay float32 under a mixed-precision policy.
    """
    pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features)
    logits = keras.layers.Dense(num_classes, dtype="float32", name="logits")(pooled)
    return {"logits": logits, **{name: groups[name] for name in GROUP_NAMES}}
