"""Tests of tf_atalp.models.outputs: output roles and features tapped by layer name."""

import keras
import numpy as np
import tensorflow as tf

from tf_atalp.models import (
    as_roles, features_of, logits_of, symbolic_logits, with_feature_outputs)


def small_classifier():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="first")(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="second")(x)
    logits = keras.layers.Dense(3, name="head")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, logits, name="small")


class WithFeatureOutputsTest(tf.test.TestCase):

    def test_taps_the_named_layers_and_keeps_the_logits(self):
        model = small_classifier()
        tapped = with_feature_outputs(model, {"early": "first", "late": "second"})
        images = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype(np.float32)
        outputs = tapped(images)
        self.assertEqual(set(outputs), {"logits", "features"})
        self.assertAllClose(outputs["logits"], model(images), atol=1e-6)
        self.assertEqual(outputs["features"]["early"].shape, (2, 16, 16, 4))
        self.assertEqual(outputs["features"]["late"].shape, (2, 8, 8, 8))
        self.assertEqual(tapped.name, "small")
        # The same layers and weights, not a copy.
        self.assertIs(tapped.get_layer("head"), model.get_layer("head"))

    def test_a_keras_applications_model_without_downloaded_weights(self):
        backbone = keras.applications.MobileNetV2(
            input_shape=(32, 32, 3), include_top=False, weights=None)
        logits = keras.layers.Dense(5)(keras.layers.GlobalAveragePooling2D()(backbone.output))
        model = with_feature_outputs(keras.Model(backbone.input, logits),
                                     {"block_3": "block_3_expand_relu", "last": "out_relu"})
        outputs = model(np.zeros((1, 32, 32, 3), np.float32))
        self.assertEqual(outputs["logits"].shape, (1, 5))
        self.assertEqual(outputs["features"]["last"].shape[-1], 1280)

    def test_errors(self):
        model = small_classifier()
        with self.assertRaisesRegex(ValueError, r"has no layer named \['nope'\]"):
            with_feature_outputs(model, {"x": "nope"})
        with self.assertRaisesRegex(ValueError, r"must be \[N, h, w, c\]"):
            with_feature_outputs(model, {"x": "head"})
        with self.assertRaisesRegex(ValueError, "non-empty dict"):
            with_feature_outputs(model, {})


class RolesTest(tf.test.TestCase):

    def test_logits_alone_or_in_a_dict(self):
        logits = tf.constant([[1.0, 2.0]], tf.bfloat16)
        self.assertEqual(logits_of(logits).dtype, tf.float32)
        self.assertAllClose(logits_of({"logits": logits, "conv2_x": logits}), [[1.0, 2.0]])
        self.assertEqual(as_roles(logits), {"logits": logits})
        self.assertEqual(features_of({"logits": logits}), {})
        with self.assertRaisesRegex(ValueError, "must have a 'logits' entry"):
            logits_of({"scores": logits})

    def test_roles_are_checked_where_features_matter(self):
        with self.assertRaisesRegex(ValueError, "only the roles"):
            as_roles({"logits": 1, "conv2_x": 2})
        self.assertEqual(features_of({"logits": 1, "features": {"a": 2}}), {"a": 2})

    def test_symbolic_logits(self):
        model = small_classifier()
        self.assertIs(symbolic_logits(model), model.output)
        tapped = with_feature_outputs(model, {"early": "first"})
        self.assertIs(symbolic_logits(tapped), model.output)


if __name__ == "__main__":
    tf.test.main()
