"""Every defense of Table 1 trains on a fixed batch (its loss falls) and survives a SavedModel
round trip; randomized ones stay randomized there and say so."""

import json
import os

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tests.evaluation_fixtures import temporary_folder
from tf_atalp.attacks import PGD
from tf_atalp.defenses import defense_names, get_defense
from tf_atalp.export import (
    ASSETS_DIR, SERVING_INFO_ASSET, export_saved_model, load_serving_model, serving_function)
from tf_atalp.models import build_resnet, logits_of
from tf_atalp.training.trainer import AdversarialTrainer

IMAGE_SIZE = 32
NUM_CLASSES = 4
# fd with one denoising block keeps the test fast; the option is what `--denoise_groups` sets.
OPTIONS = {"fd": {"denoise_groups": ("conv5_x",)}}
RANDOMIZED = ("rat", "randomization")
TABLE_1 = ("none", "pat", "alp", "at", "at_alp", "igr", "rat", "randomization", "fd", "adp")


def fixed_batch(n=16, seed=0):
    """Images whose class is the brightest quarter of the image (learnable in a few steps)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % NUM_CLASSES
    images = rng.uniform(0.0, 0.4, (n, IMAGE_SIZE, IMAGE_SIZE, 3)).astype("float32")
    half = IMAGE_SIZE // 2
    for index, label in enumerate(labels):
        row, col = divmod(int(label), 2)
        images[index, row * half:(row + 1) * half, col * half:(col + 1) * half] += 0.5
    return images, labels.astype("int32")


def tiny_network(defense, seed=0):
    keras.utils.set_random_seed(seed)
    return build_resnet(10, NUM_CLASSES, IMAGE_SIZE, width=8, **defense.model_options())


class DefenseTrainingTest(tf.test.TestCase, parameterized.TestCase):

    def test_all_ten_rows_of_table_1_are_registered(self):
        # (Other tests may register defenses of their own in this process.)
        self.assertContainsSubset(TABLE_1, defense_names())

    @parameterized.parameters(*TABLE_1)
    def test_loss_falls_on_a_fixed_batch(self, name):
        defense = get_defense(name, **OPTIONS.get(name, {}))
        trainer = AdversarialTrainer(tiny_network(defense), defense,
                                     attack=PGD(4 / 256, 2 / 256, 2), seed=0)
        trainer.compile(optimizer=keras.optimizers.Adam(3e-3))
        images, labels = fixed_batch()
        history = trainer.fit(images, labels, batch_size=16, epochs=12, verbose=0,
                              shuffle=False).history["loss"]
        self.assertTrue(np.all(np.isfinite(history)), history)
        self.assertLess(np.mean(history[-3:]), np.mean(history[:3]), history)

    @parameterized.parameters(*TABLE_1)
    def test_saved_model_round_trip(self, name):
        defense = get_defense(name, **OPTIONS.get(name, {}))
        model = defense.inference_model(tiny_network(defense))
        export_dir = os.path.join(temporary_folder(self), "saved_model")
        export_saved_model(model, export_dir, randomization=defense.randomization())
        served = load_serving_model(export_dir)
        images, _ = fixed_batch(4)
        # Six calls: a resize-and-pad draw repeats now and then (few sizes at 32 px).
        first, *others = [served(images).numpy() for _ in range(6)]
        self.assertEqual(first.shape, (4, NUM_CLASSES))
        with open(os.path.join(export_dir, ASSETS_DIR, SERVING_INFO_ASSET)) as f:
            info = json.load(f)
        if name in RANDOMIZED:
            # The export draws anew on every call.
            self.assertTrue(any(not np.allclose(first, other) for other in others))
            self.assertIn(defense.randomization(), info["randomized"])
            self.assertIn("RANDOMIZED", serving_function(model, defense.randomization()).__doc__)
            self.assertEqual(served.randomized, info["randomized"])
        else:
            self.assertIsNone(info["randomized"])
            self.assertIsNone(served.randomized)
            for other in others:
                self.assertAllClose(first, other)
            self.assertAllClose(first, logits_of(model(images, training=False)), atol=1e-4)


if __name__ == "__main__":
    tf.test.main()
