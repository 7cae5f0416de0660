"""Tests of tf_atalp.attacks.fab: the L-inf projection and FAB-T's minimal perturbations."""

import keras
import numpy as np
import tensorflow as tf

from tf_atalp.attacks import inference_logits
from tf_atalp.attacks.fab import FABTargeted, linf_projection

SHAPE = (4, 4, 3)


def reach(points, normals, radius):
    """The largest change of normals . z with |d| <= radius inside [0, 1] (numpy, one row)."""
    up = np.where(normals > 0, 1 - points, points)
    return np.sum(np.abs(normals) * np.minimum(radius, up))


class ProjectionTest(tf.test.TestCase):

    def test_hand_derived_projections(self):
        # Free: |d| = 0.25 on both coordinates reaches 0.5 + 0.25 + 0.5 + 0.25 = 1.5.
        self.assertAllClose(linf_projection([[0.5, 0.5]], [[1.0, 1.0]], [1.5]), [[0.25, 0.25]])
        # The first coordinate hits the box at 1.0 after 0.1; the second moves 0.3.
        self.assertAllClose(linf_projection([[0.9, 0.5]], [[1.0, 1.0]], [1.8]), [[0.1, 0.3]])
        # Downwards, with a negative normal.
        self.assertAllClose(linf_projection([[0.5, 0.5]], [[-1.0, 1.0]], [-0.5]),
                            [[0.25, -0.25]])
        # Out of reach: as far as the box allows.
        self.assertAllClose(linf_projection([[0.9, 0.9]], [[1.0, 1.0]], [5.0]), [[0.1, 0.1]])

    def test_reaches_the_hyperplane_with_the_smallest_radius(self):
        rng = np.random.default_rng(0)
        points = rng.uniform(size=(50, 12)).astype(np.float32)
        normals = rng.normal(size=(50, 12)).astype(np.float32)
        offsets = np.sum(normals * points, axis=1) + rng.normal(size=50).astype(np.float32)
        steps = linf_projection(points, normals, offsets).numpy()
        moved = points + steps
        self.assertGreaterEqual(moved.min(), -1e-6)
        self.assertLessEqual(moved.max(), 1 + 1e-6)
        radius = np.abs(steps).max(axis=1)
        for i in range(50):
            needed = abs(offsets[i] - normals[i] @ points[i])
            reachable = reach(points[i], normals[i] * np.sign(offsets[i] - normals[i] @ points[i]),
                              1.0)
            if reachable >= needed:
                self.assertAllClose(normals[i] @ moved[i], offsets[i], atol=1e-4)
                # No smaller radius reaches it.
                direction = normals[i] * np.sign(offsets[i] - normals[i] @ points[i])
                self.assertLess(reach(points[i], direction, radius[i] * 0.99), needed)


def two_class_linear_model(seed=0):
    """Three classes, the third never competitive: FAB's targets y<->t are one hyperplane."""
    rng = np.random.default_rng(seed)
    inputs = keras.Input(SHAPE)
    dense = keras.layers.Dense(3)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    weights = rng.normal(scale=0.1, size=(int(np.prod(SHAPE)), 3)).astype(np.float32)
    dense.set_weights([weights, np.array([0.0, 0.0, -100.0], np.float32)])
    return model, weights


class FABTest(tf.test.TestCase):

    def test_finds_the_minimal_linf_distance_of_a_linear_boundary(self):
        model, weights = two_class_linear_model()
        rng = np.random.default_rng(1)
        images = rng.uniform(0.45, 0.55, size=(16, *SHAPE)).astype(np.float32)
        labels = np.argmax(model(images).numpy(), axis=1).astype(np.int32)
        flat = images.reshape(16, -1)
        other = 1 - labels
        normal = weights[:, labels].T - weights[:, other].T  # [16, D]
        margin = np.sum(normal * flat, axis=1)
        exact = np.abs(margin) / np.abs(normal).sum(axis=1)  # the box is not in the way
        self.assertLess(exact.max(), 0.45)
        result = FABTargeted(1.0, iterations=30).attack(inference_logits(model), images, labels)
        found = np.abs(result.adversarial_images.numpy() - images).reshape(16, -1).max(axis=1)
        self.assertTrue(np.all(np.argmax(model(result.adversarial_images).numpy(), 1) != labels))
        self.assertTrue(np.all(found >= exact * 0.999), (found, exact))
        self.assertTrue(np.all(found <= exact * 1.1 + 1e-4), (found / exact))

    def test_counts_only_what_lies_within_epsilon(self):
        model, _ = two_class_linear_model()
        rng = np.random.default_rng(2)
        images = rng.uniform(0.3, 0.7, size=(16, *SHAPE)).astype(np.float32)
        labels = np.argmax(model(images).numpy(), axis=1).astype(np.int32)
        small = FABTargeted(1e-5, iterations=20).attack(inference_logits(model), images, labels,
                                                        record_at=[0, 20])
        self.assertAllEqual(small.correct_at.numpy(), np.ones([2, 16], bool))
        self.assertAllClose(small.adversarial_images, images)
        large = FABTargeted(0.5, iterations=20).attack(inference_logits(model), images, labels,
                                                       record_at=[0, 20])
        self.assertTrue(large.correct_at.numpy()[0].all())
        self.assertFalse(large.correct_at.numpy()[1].any())
        self.assertLessEqual(np.abs(large.adversarial_images.numpy() - images).max(), 0.5 + 1e-6)

    def test_settings_are_checked(self):
        with self.assertRaisesRegex(ValueError, "epsilon"):
            FABTargeted(0.0)
        with self.assertRaisesRegex(ValueError, "target_classes"):
            FABTargeted(0.1, target_classes=0)
        self.assertEqual(FABTargeted(0.1).describe()["attack"], "fab-t")
