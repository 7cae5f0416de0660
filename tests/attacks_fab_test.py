"""Tests of tf_atalp.attacks.fab: the L-inf projection, FAB's and FAB-T's minimal perturbations."""

import keras
import numpy as np
import tensorflow as tf

from tests.attack_fixtures import CountingModelFn, batch, conv_model
from tf_atalp.attacks import (
    BackwardPassDifferentiableApproximation, ExpectationOverTransformation, inference_logits)
from tf_atalp.attacks.fab import FAB, FABTargeted, linf_projection

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


def closest_boundary_model():
    """Four classes on images near grey, where the closest boundary is not the runner-up's.

    logits = x @ W + b with w_0 = 0 and b_0 = 0, so every image is class 0 and
    the boundary with class c is f_c = z_0 - z_c = -w_c . x - b_c = 0, at
    L-inf distance f_c / ||w_c||_1 (the box is 0.45 away, not in the way):
    - class 1, w_1 = 0.1 on one pixel, b_1 = -0.07: f_1 = 0.07 - 0.1 x_0 in
      [0.015, 0.025], the runner-up (FAB-T's first target), distance >= 0.15;
    - class 2, w_2 = +-0.1 alternating over all 48 pixels, b_2 = -0.3:
      f_2 = 0.3 - w_2 . x ~ 0.3, distance ~ 0.3 / 4.8 ~ 0.06: the closest;
    - class 3: never competitive (b_3 = -100).
    """
    inputs = keras.Input(SHAPE)
    dense = keras.layers.Dense(4)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    weights = np.zeros((int(np.prod(SHAPE)), 4), np.float32)
    weights[0, 1] = 0.1
    weights[:, 2] = 0.1 * np.where(np.arange(len(weights)) % 2 == 0, 1.0, -1.0)
    bias = np.array([0.0, -0.07, -0.3, -100.0], np.float32)
    dense.set_weights([weights, bias])
    return model, weights, bias


def linf_distances(adversarial, images):
    return np.abs(np.asarray(adversarial) - images).reshape(len(images), -1).max(axis=1)


class UntargetedFABTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.model, weights, bias = closest_boundary_model()
        rng = np.random.default_rng(1)
        cls.images = rng.uniform(0.45, 0.55, size=(12, *SHAPE)).astype(np.float32)
        cls.labels = np.zeros(12, np.int32)
        # The hand-derived distances to each class's boundary (classes 1 and 2).
        margins = -(cls.images.reshape(12, -1) @ weights[:, 1:3] + bias[1:3])  # f_1, f_2
        cls.distances = margins / np.abs(weights[:, 1:3]).sum(axis=0)

    def test_goes_to_the_closest_boundary_not_the_runner_up(self):
        logits = self.model(self.images).numpy()
        self.assertAllEqual(np.argmax(logits, axis=1), self.labels)
        self.assertAllEqual(np.argsort(-logits, axis=1)[:, 1], np.ones(12))  # runner-up: 1
        exact = self.distances[:, 1]
        self.assertTrue(np.all(exact < self.distances[:, 0] / 2))  # but 2 is closer
        model_fn = inference_logits(self.model)
        result = FAB(1.0, iterations=20).attack(model_fn, self.images, self.labels)
        found = linf_distances(result.adversarial_images, self.images)
        predicted = np.argmax(self.model(result.adversarial_images).numpy(), axis=1)
        self.assertAllEqual(predicted, np.full(12, 2))
        self.assertTrue(np.all(found >= exact * 0.999), (found, exact))
        self.assertTrue(np.all(found <= exact * 1.1), found / exact)
        # FAB-T towards the runner-up only finds the farther boundary.
        targeted = FABTargeted(1.0, iterations=20, target_classes=1).attack(
            model_fn, self.images, self.labels)
        self.assertTrue(np.all(linf_distances(targeted.adversarial_images, self.images)
                               >= self.distances[:, 0] * 0.999))
        self.assertAllEqual(np.argmax(self.model(targeted.adversarial_images).numpy(), axis=1),
                            np.ones(12))

    def test_a_model_function_with_its_own_gradient_gives_the_same_points(self):
        plain = FAB(1.0, iterations=5).attack(inference_logits(self.model), self.images,
                                              self.labels)
        eot = FAB(1.0, iterations=5).attack(
            ExpectationOverTransformation(inference_logits(self.model), 1), self.images,
            self.labels)
        self.assertAllClose(eot.adversarial_images, plain.adversarial_images, atol=1e-5)

    def test_counts_only_what_lies_within_epsilon(self):
        exact = self.distances[:, 1]
        epsilon = float(np.quantile(exact, 0.75))
        beyond, well_within = exact > epsilon, exact < epsilon / 1.1
        self.assertTrue(beyond.any() and well_within.any())
        result = FAB(epsilon, iterations=20, restarts=2).attack(
            inference_logits(self.model), self.images, self.labels, seed=0, record_at=[0, 20])
        correct_at = result.correct_at.numpy()
        self.assertTrue(correct_at[0].all())
        self.assertTrue(correct_at[1][beyond].all())  # no adversarial is that close
        self.assertFalse(correct_at[1][well_within].any())  # found within 10%
        found = linf_distances(result.adversarial_images, self.images)
        self.assertAllLessEqual(found, epsilon * (1 + 1e-6))
        self.assertAllEqual(found > 0, ~correct_at[1])


class FABOnAConvNetTest(tf.test.TestCase):

    def test_stays_in_the_ball_and_the_box_and_restarts_only_help(self):
        model = conv_model()
        model_fn = inference_logits(model)
        images, _ = batch(seed=3, n=12)
        labels = np.argmax(model_fn(images).numpy(), axis=1).astype(np.int32)
        epsilon = 0.7  # this net needs large perturbations: the box is in the way
        robust = {}
        for restarts in (1, 3):
            attack = FAB(epsilon, iterations=5, restarts=restarts)
            result = attack.attack(model_fn, images, labels, seed=7)
            adversarial = result.adversarial_images.numpy()
            self.assertAllInRange(adversarial, 0.0, 1.0)
            self.assertAllLessEqual(linf_distances(adversarial, images), epsilon * (1 + 1e-6))
            robust[restarts] = np.argmax(model_fn(adversarial).numpy(), axis=1) == labels
            again = attack.attack(model_fn, images, labels, seed=7).adversarial_images
            self.assertAllClose(again, adversarial)  # the seed fixes the random starts
        self.assertTrue(np.all(robust[3] <= robust[1]))
        self.assertLess(robust[1].mean(), 1.0)

    def test_the_jacobian_path_gives_the_per_class_paths_points(self):
        model_fn = inference_logits(conv_model())
        images, _ = batch(seed=4, n=12)
        labels = np.argmax(model_fn(images).numpy(), axis=1).astype(np.int32)
        attack = FAB(0.7, iterations=6, restarts=2)
        at_once = attack.attack(model_fn, images, labels, seed=2).adversarial_images.numpy()
        # BPDA through the identity: the exact gradient, but a gradient of its own, so
        # one forward-backward pass per class (the path EoT and BPDA take).
        per_class = attack.attack(
            BackwardPassDifferentiableApproximation(model_fn, tf.identity), images, labels,
            seed=2).adversarial_images.numpy()
        self.assertAllClose(at_once, per_class, atol=1e-5)
        broken = np.argmax(model_fn(at_once).numpy(), axis=1) != labels
        self.assertTrue(broken.any())
        self.assertAllEqual(broken, np.argmax(model_fn(per_class).numpy(), axis=1) != labels)

    def test_a_step_takes_two_forward_passes_whatever_the_classes(self):
        counting = CountingModelFn(inference_logits(conv_model()))
        images, labels = batch(seed=5, n=8)
        FAB(0.5, iterations=4).attack(counting, images, labels)
        # The clean logits, then per step the Jacobian's forward and the check's.
        self.assertEqual(int(counting.calls.numpy()), 1 + 4 * 2)

    def test_settings_description_and_serialization(self):
        with self.assertRaisesRegex(ValueError, "epsilon"):
            FAB(1.5)
        with self.assertRaisesRegex(ValueError, "restarts"):
            FAB(0.1, restarts=0)
        described = FAB(0.1, iterations=7, restarts=5).describe()
        self.assertEqual((described["attack"], described["iterations"], described["restarts"],
                          described["random_start"], described["targeted"]),
                         ("fab", 7, 5, True, False))
        self.assertAllClose(described["restart_radius"], 0.05)
        self.assertEqual(FABTargeted(0.1).describe()["restarts"], 1)
        for attack in (FAB(0.1, iterations=7, restarts=5), FABTargeted(0.2, 3, 2, 2)):
            copy = keras.saving.deserialize_keras_object(
                keras.saving.serialize_keras_object(attack))
            self.assertEqual(copy, attack)


if __name__ == "__main__":
    tf.test.main()
