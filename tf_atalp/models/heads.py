"""The classification head, and the names of the conv groups every ResNet builder taps."""

import keras

GROUP_NAMES = ("conv2_x", "conv3_x", "conv4_x", "conv5_x")


def classifier_logits(features, num_classes):
    """Global average pooling + Dense(K): [N, H, W, C] -> [N, num_classes] float32 logits.

    The Dense runs in float32, so logits stay float32 under a mixed-precision policy.
    """
    pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features)
    return keras.layers.Dense(num_classes, dtype="float32", name="logits")(pooled)
