"""Tests for tf_atalp.models.resnet.build_resnet."""

import os

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tf_atalp.models import GROUP_NAMES, build_resnet
from tf_atalp.models.layers import IMAGENET_MEAN, IMAGENET_STD

BOTTLENECK_DEPTHS = (50, 101, 152)
# depth -> number of blocks in conv2_x .. conv5_x (He et al. 2015, table 1)
BLOCK_COUNTS = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3),
                50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


def _images(n=2, size=32, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, size, size, 3)).astype("float32")


def _expected_shapes(depth, width, first_size):
    """Group shapes [H, W, C] when conv2_x has side `first_size`."""
    expansion = 4 if depth in BOTTLENECK_DEPTHS else 1
    return {name: (first_size // 2**i, first_size // 2**i, width * 2**i * expansion)
            for i, name in enumerate(GROUP_NAMES)}


class BuildResnetTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)

    def tearDown(self):
        keras.mixed_precision.set_global_policy("float32")
        super().tearDown()

    @parameterized.parameters(10, 18, 34, 50, 101, 152)
    def test_group_shapes_and_block_counts(self, depth):
        width = 4
        model = build_resnet(depth, num_classes=5, image_size=32, width=width, stem="cifar")
        symbolic = model.output  # the dict of roles, of KerasTensors
        self.assertEqual(set(symbolic), {"logits", "features"})
        self.assertEqual(set(symbolic["features"]), set(GROUP_NAMES))
        self.assertEqual(tuple(symbolic["logits"].shape), (None, 5))
        for name, shape in _expected_shapes(depth, width, 32).items():
            self.assertEqual(tuple(symbolic["features"][name].shape[1:]), shape, name)
        for stage, count in enumerate(BLOCK_COUNTS[depth], start=2):
            model.get_layer(f"conv{stage}_block{count}_out")
            with self.assertRaises(ValueError):
                model.get_layer(f"conv{stage}_block{count + 1}_out")

    @parameterized.parameters(10, 50)
    def test_forward_pass_shapes(self, depth):
        model = build_resnet(depth, num_classes=3, image_size=32, width=4)
        outputs = model(_images(), training=False)
        self.assertEqual(tuple(outputs["logits"].shape), (2, 3))
        for name, shape in _expected_shapes(depth, 4, 32).items():
            self.assertEqual(tuple(outputs["features"][name].shape), (2, *shape))
            self.assertAllGreaterEqual(outputs["features"][name], 0.0)  # after the final ReLU

    @parameterized.named_parameters(
            ("cifar", "cifar", 32, 32),
            ("imagenet", "imagenet", 64, 16),
            ("auto_small", "auto", 64, 64),
            ("auto_large", "auto", 96, 24))
    def test_stems(self, stem, image_size, first_size):
        model = build_resnet(10, num_classes=2, image_size=image_size, width=4, stem=stem)
        for name, shape in _expected_shapes(10, 4, first_size).items():
            self.assertEqual(tuple(model.output["features"][name].shape[1:]), shape, name)
        has_pool = any(layer.name == "stem_pool" for layer in model.layers)
        self.assertEqual(has_pool, first_size < image_size)

    def test_imagenet_stem_reaches_one_pixel_at_32(self):
        model = build_resnet(18, num_classes=2, image_size=32, width=4, stem="imagenet")
        self.assertEqual(tuple(model.output["features"]["conv5_x"].shape[1:]), (1, 1, 32))

    def test_images_are_normalised_inside_the_model(self):
        model = build_resnet(10, num_classes=2, image_size=32, width=4, stem="cifar")
        stem_conv = model.get_layer("stem_conv")
        to_stem = keras.Model(model.input, stem_conv.output)
        x = _images()
        normalised = (x - np.array(IMAGENET_MEAN, "float32")) / np.array(IMAGENET_STD, "float32")
        expected = tf.nn.conv2d(normalised, stem_conv.kernel, strides=1, padding="SAME")
        self.assertAllClose(to_stem(x), expected, atol=1e-4)

    @parameterized.named_parameters(
            ("depth", dict(depth=7),
             r"`depth` must be one of \(10, 18, 34, 50, 101, 152\). Received: depth=7"),
            ("small_image", dict(image_size=31),
             r"`image_size` must be an int >= 32. Received: image_size=31"),
            ("float_image", dict(image_size=32.0), "`image_size` must be an int >= 32"),
            ("num_classes", dict(num_classes=0), "`num_classes` must be an int >= 1"),
            ("width", dict(width=0), "`width` must be an int >= 1"),
            ("stem", dict(stem="deep"), r"`stem` must be one of \('auto', 'imagenet', 'cifar'\)"),
            ("group_name", dict(denoise_groups=("conv1_x",)),
             "`denoise_groups` must be a collection"),
            ("group_string", dict(denoise_groups="conv2_x"),
             "`denoise_groups` must be a collection"),
            ("kwargs_without_groups", dict(denoise_kwargs={"mode": "gaussian"}),
             "`denoise_kwargs` is only used with a non-empty `denoise_groups`"),
            ("noise", dict(input_noise_scale=-0.1), "`input_noise_scale` must be >= 0"))
    def test_bad_arguments_raise(self, overrides, message):
        kwargs = dict(depth=10, num_classes=2, image_size=32, width=4)
        kwargs.update(overrides)
        with self.assertRaisesRegex(ValueError, message):
            build_resnet(**kwargs)

    def test_denoised_groups_are_the_reported_outputs(self):
        model = build_resnet(10, 2, 32, 4, denoise_groups=("conv3_x", "conv5_x"),
                             denoise_kwargs={"mode": "dot_product"})
        denoise_layers = [layer for layer in model.layers if layer.name.endswith("_denoise")]
        self.assertEqual([layer.name for layer in denoise_layers],
                         ["conv3_x_denoise", "conv5_x_denoise"])
        self.assertTrue(all(layer.mode == "dot_product" for layer in denoise_layers))
        self.assertIs(model.output["features"]["conv3_x"], model.get_layer("conv3_x_denoise").output)
        self.assertIs(model.output["features"]["conv5_x"], model.get_layer("conv5_x_denoise").output)
        self.assertIs(model.output["features"]["conv2_x"], model.get_layer("conv2_block1_out").output)

    def test_input_noise_stays_on_at_inference(self):
        model = build_resnet(10, 2, 32, 4, input_noise_scale=0.1, input_noise_seed=1)
        first_layers = [layer.name for layer in model.layers[1:3]]
        self.assertEqual(first_layers, ["input_noise", "normalization"])
        x = _images()
        first, second = model(x, training=False)["logits"], model(x, training=False)["logits"]
        self.assertNotAllClose(first, second)
        plain = build_resnet(10, 2, 32, 4)
        self.assertNotIn("input_noise", [layer.name for layer in plain.layers])

    def test_mixed_bfloat16_keeps_logits_float32(self):
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        model = build_resnet(10, 3, 32, 4, denoise_groups=GROUP_NAMES, input_noise_scale=0.05)
        outputs = model(_images(), training=False)
        self.assertEqual(outputs["logits"].dtype, tf.float32)
        self.assertEqual(outputs["features"]["conv5_x"].dtype, tf.bfloat16)
        self.assertAllEqual(tf.math.is_finite(outputs["logits"]), np.ones((2, 3), bool))

    def test_builds_and_runs_in_distribution_strategy_scope(self):
        strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
        with strategy.scope():
            model = build_resnet(10, 3, 32, 4, denoise_groups=("conv5_x",), input_noise_scale=0.05)
        kernel = model.get_layer("logits").kernel.value
        self.assertIsInstance(kernel, tf.distribute.DistributedValues)

        @tf.function(autograph=False)
        def logits(x):
            return strategy.run(lambda images: model(images, training=False)["logits"], args=(x,))

        self.assertEqual(tuple(logits(tf.constant(_images())).shape), (2, 3))

    def test_keras_file_round_trip_with_every_option(self):
        model = build_resnet(
                18, 3, 32, 4, stem="imagenet", denoise_groups=GROUP_NAMES,
                denoise_kwargs={"mode": "gaussian", "zero_init": False},
                input_noise_scale=0.1, input_noise_seed=4, name="every_option")
        path = os.path.join(self.get_temp_dir(), "every_option.keras")
        model.save(path)
        loaded = keras.models.load_model(path)
        self.assertEqual(loaded.name, "every_option")
        self.assertEqual(loaded.get_layer("input_noise").get_config(),
                         model.get_layer("input_noise").get_config())
        self.assertEqual(loaded.get_layer("conv4_x_denoise").mode, "gaussian")
        for m in (model, loaded):
            m.get_layer("input_noise").scale = 0.0  # noise off to compare deterministic outputs
        x = _images()
        expected, actual = model(x, training=False), loaded(x, training=False)
        self.assertEqual(set(actual), set(expected))
        for name in expected:
            self.assertAllClose(actual[name], expected[name], atol=1e-5, msg=name)


if __name__ == "__main__":
    tf.test.main()
