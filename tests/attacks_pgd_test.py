"""Tests of tf_atalp.attacks.pgd: invariants and a hand-derived FGSM."""

import dataclasses
import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tests.attack_fixtures import NUM_CLASSES, batch, conv_model, linear_model
from tf_atalp import attacks
from tf_atalp.attacks import PGDConfig


class PGDTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.product(
        objective=["cross_entropy", "margin"], random_start=[True, False],
        targeted=[False, True], epsilon=[0.0, 0.05, 0.3])
    def test_stays_in_epsilon_ball_and_unit_range(self, objective, random_start, targeted,
                                                  epsilon):
        model = conv_model()
        images, labels = batch()
        target = (labels + 1) % NUM_CLASSES if targeted else None
        adversarial = attacks.pgd(
            model, images, labels, epsilon=epsilon, step_size=0.1, iterations=5,
            random_start=random_start, objective=objective, targeted=targeted,
            target_labels=target).numpy()
        self.assertLessEqual(np.abs(adversarial - images).max(), epsilon + 1e-6)
        self.assertGreaterEqual(adversarial.min(), 0.0)
        self.assertLessEqual(adversarial.max(), 1.0)
        self.assertEqual(adversarial.dtype, np.float32)

    @parameterized.parameters("cross_entropy", "margin")
    def test_raises_the_objective(self, objective):
        model, _, _ = linear_model()
        images, labels = batch()
        adversarial = attacks.pgd(model, images, labels, epsilon=0.05, step_size=0.01,
                                  iterations=10, objective=objective)
        objective_fn = (attacks.cross_entropy_objective if objective == "cross_entropy"
                        else attacks.margin_objective)
        before = objective_fn(model(images), labels)
        after = objective_fn(model(adversarial), labels)
        self.assertTrue(np.all(after.numpy() >= before.numpy() - 1e-5))
        self.assertGreater(float(tf.reduce_mean(after - before)), 0.1)

    def test_targeted_lowers_target_loss(self):
        model, _, _ = linear_model()
        images, labels = batch()
        target = (labels + 1) % NUM_CLASSES
        adversarial = attacks.pgd(model, images, labels, 0.1, 0.02, 10,
                                  targeted=True, target_labels=target)
        before = attacks.cross_entropy_objective(model(images), target)
        after = attacks.cross_entropy_objective(model(adversarial), target)
        self.assertLess(float(tf.reduce_mean(after)), float(tf.reduce_mean(before)))

    def test_fgsm_on_linear_model_matches_hand_derivation(self):
        model, weights, bias = linear_model()
        images, labels = batch()
        epsilon = 0.07
        flat = images.reshape(len(images), -1)
        logits = flat @ weights + bias
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        # d CE / d x = W (softmax - onehot), per example.
        gradient = (probabilities - np.eye(NUM_CLASSES)[labels]) @ weights.T
        expected = np.clip(flat + epsilon * np.sign(gradient), 0.0, 1.0).reshape(images.shape)
        self.assertAllClose(attacks.fgsm(model, images, labels, epsilon), expected, atol=1e-6)

    def test_margin_objective_by_hand(self):
        logits = tf.constant([[1.0, 3.0, 2.0], [5.0, -1.0, 0.0]])
        self.assertAllClose(attacks.margin_objective(logits, tf.constant([1, 2])), [-1.0, 5.0])

    def test_zero_iterations_returns_start_point(self):
        model = conv_model()
        images, labels = batch()
        self.assertAllClose(attacks.pgd(model, images, labels, 0.1, 0.01, 0, random_start=False),
                            images)

    def test_seed_makes_random_start_reproducible(self):
        model = conv_model()
        images, labels = batch()
        first = attacks.pgd(model, images, labels, 0.1, 0.01, 2, seed=3)
        second = attacks.pgd(model, images, labels, 0.1, 0.01, 2, seed=3)
        third = attacks.pgd(model, images, labels, 0.1, 0.01, 2, seed=4)
        self.assertAllClose(first, second)
        self.assertNotAllClose(first, third)

    def test_batchnorm_statistics_untouched_by_default(self):
        model = conv_model()
        images, labels = batch()
        before = [w.numpy().copy() for w in model.non_trainable_weights]
        attacks.pgd(model, images * 5.0 % 1.0, labels, 0.1, 0.01, 3)
        for old, new in zip(before, model.non_trainable_weights):
            self.assertAllClose(old, new)

    def test_training_mode_attack_updates_batchnorm(self):
        model = conv_model()
        images, labels = batch()
        before = [w.numpy().copy() for w in model.non_trainable_weights]
        attacks.pgd(model, images, labels, 0.1, 0.01, 3, training=True)
        changed = [not np.allclose(old, new.numpy())
                   for old, new in zip(before, model.non_trainable_weights)]
        self.assertTrue(any(changed))

    def test_works_inside_tf_function_and_with_xla(self):
        model, _, _ = linear_model()
        images, labels = batch()
        expected = attacks.pgd(model, images, labels, 0.05, 0.01, 4, random_start=False)

        @tf.function
        def attack(x, y):
            return attacks.pgd(model, x, y, 0.05, 0.01, 4, random_start=False)

        self.assertAllClose(attack(images, labels), expected, atol=1e-6)
        self.assertAllClose(
            attacks.pgd(model, images, labels, 0.05, 0.01, 4, random_start=False,
                        jit_compile=True), expected, atol=1e-5)

    def test_xla_unrolls_the_loop_and_computes_the_same(self):
        # Under XLA the loop is unrolled (XLA:CPU runs convolutions inside a while loop
        # as naive loops): no While op in the traced graph, and every path (final
        # iterate, recorded iterates, early stop, `iterates`) matches the tf.range loop.
        model, _, _ = linear_model()
        images, labels = batch()

        def loop_ops(attack):
            traced = tf.function(lambda x, y: attack.attack(model, x, y).adversarial_images)
            graph_def = traced.get_concrete_function(images, labels).graph.as_graph_def()
            nodes = list(graph_def.node)
            for function in graph_def.library.function:
                nodes.extend(function.node_def)
            return {node.op for node in nodes}

        plain, xla = (PGDConfig(0.05, 0.01, 12, random_start=False, jit_compile=jit)
                      for jit in (False, True))
        self.assertTrue({"While", "StatelessWhile"} & loop_ops(plain))
        self.assertFalse({"While", "StatelessWhile"} & loop_ops(xla))
        for early_stop in (False, True):
            expected, got = (dataclasses.replace(a, early_stop=early_stop).attack(
                model, images, labels, record_at=[0, 5, 12]) for a in (plain, xla))
            self.assertAllClose(got.adversarial_images, expected.adversarial_images, atol=1e-5)
            self.assertAllEqual(got.correct_at, expected.correct_at)
        expected, got = (a.iterates(model, images, labels, at=[3, 12]) for a in (plain, xla))
        for count in (3, 12):
            self.assertAllClose(got[count], expected[count], atol=1e-5)

    def test_for_xla_sets_jit_compile_on_attacks_that_have_it(self):
        attack = PGDConfig(0.05, 0.01, 3)
        self.assertTrue(attacks.for_xla(attack).jit_compile)
        self.assertEqual(dataclasses.replace(attacks.for_xla(attack), jit_compile=False),
                         attack)
        self.assertTrue(attacks.for_xla(attacks.FGSM(0.05)).jit_compile)
        other = object()
        self.assertIs(attacks.for_xla(other), other)

    def test_no_gradient_raises(self):
        images, labels = batch()

        def constant_model(x, training=False):
            return tf.ones([tf.shape(x)[0], NUM_CLASSES])

        with self.assertRaisesRegex(ValueError, "no gradient with respect to the input"):
            attacks.pgd(constant_model, images, labels, 0.1, 0.01, 2)

    def test_bad_arguments_raise(self):
        model = conv_model()
        images, labels = batch()
        with self.assertRaisesRegex(ValueError, r"`epsilon` must be in \[0, 1\]"):
            attacks.pgd(model, images, labels, -0.1, 0.01, 2)
        with self.assertRaisesRegex(ValueError, "`iterations` must be >= 0"):
            attacks.pgd(model, images, labels, 0.1, 0.01, -1)
        with self.assertRaisesRegex(ValueError, "`objective` must be one of"):
            attacks.pgd(model, images, labels, 0.1, 0.01, 2, objective="hinge")
        with self.assertRaisesRegex(ValueError, "needs `target_labels`"):
            attacks.pgd(model, images, labels, 0.1, 0.01, 2, targeted=True)
        with self.assertRaisesRegex(ValueError, r"\[N, H, W, C\]"):
            attacks.pgd(model, images[0], labels, 0.1, 0.01, 2)
        with self.assertRaisesRegex(ValueError, r"`epsilon` must be in \(0, 1\]"):
            attacks.FGSM(0.0)


class AttackObjectTest(tf.test.TestCase):
    """PGD and FGSM as `Attack` objects: one call, a result, a description."""

    def test_pgd_and_fgsm_implement_the_protocol(self):
        for attack in (attacks.PGD(0.1, 0.01, 3), attacks.FGSM(0.1)):
            self.assertIsInstance(attack, attacks.Attack)
        self.assertIs(attacks.PGDConfig, attacks.PGD)

    def test_attack_call_equals_the_simple_entry_point(self):
        model = conv_model()
        images, labels = batch()
        result = attacks.PGD(0.1, 0.01, 3).attack(attacks.inference_logits(model), images,
                                                  labels, seed=5)
        self.assertIsInstance(result, attacks.AttackResult)
        self.assertIsNone(result.correct_at)
        self.assertAllClose(result.adversarial_images,
                            attacks.pgd(model, images, labels, 0.1, 0.01, 3, seed=5))
        self.assertAllClose(attacks.FGSM(0.07).attack(attacks.inference_logits(model), images,
                                                      labels).adversarial_images,
                            attacks.fgsm(model, images, labels, 0.07))

    def test_describe_names_every_setting_but_how_it_runs(self):
        described = attacks.PGD(0.25, 1 / 256, 200, objective="margin",
                                jit_compile=True).describe()
        self.assertEqual(described, {
            "attack": "pgd", "norm": "linf", "epsilon": 0.25, "step_size": 1 / 256,
            "iterations": 200, "random_start": True, "objective": "margin", "targeted": False})
        self.assertEqual(attacks.FGSM(0.1).describe()["attack"], "fgsm")

    def test_crafted_on_one_model_scored_on_another(self):
        # Crafting is separate from scoring: a transfer attack is an attack on the source
        # whose images are then given to the target.
        source, target = conv_model(seed=0), conv_model(seed=1)
        images, labels = batch(n=64)
        crafted = attacks.PGD(0.2, 0.05, 5).attack(
            attacks.inference_logits(source), images, labels, seed=0).adversarial_images
        self.assertLessEqual(np.abs(crafted.numpy() - images).max(), 0.2 + 1e-6)
        source_objective = attacks.cross_entropy_objective(source(crafted)["logits"], labels)
        clean_objective = attacks.cross_entropy_objective(source(images)["logits"], labels)
        self.assertGreater(float(tf.reduce_mean(source_objective - clean_objective)), 0.0)
        scores = target(crafted)["logits"]  # the target sees the same images
        self.assertEqual(scores.shape, (64, NUM_CLASSES))

    def test_gaussian_start_is_clean_plus_a_thousandth_of_a_normal_draw(self):
        images, _ = batch()
        seed = tf.constant([2, 9], tf.int64)
        start = attacks.random_start(tf.constant(images), 0.05, seed, noise="gaussian")
        expected = np.clip(images + 0.001 * tf.random.stateless_normal(images.shape, seed), 0, 1)
        self.assertAllClose(start, expected, atol=1e-7)
        attack = attacks.PGD(0.05, 0.01, 0, start_noise="gaussian")
        self.assertAllClose(attack.attack(attacks.inference_logits(conv_model()), images,
                                          batch()[1], seed=seed).adversarial_images, start)
        self.assertEqual(attack.describe()["start_noise"], "gaussian")
        self.assertNotIn("start_noise", attacks.PGD(0.05, 0.01, 2).describe())
        with self.assertRaisesRegex(ValueError, "`start_noise` must be one of"):
            attacks.PGD(0.05, 0.01, 2, start_noise="laplace")

    def test_objective_by_name_or_object(self):
        by_object = attacks.PGD(0.1, 0.01, 3, objective=attacks.get_objective("kl_to_clean"))
        self.assertEqual(by_object, attacks.PGD(0.1, 0.01, 3, objective="kl_to_clean"))
        self.assertEqual(by_object.get_config()["objective"], "kl_to_clean")
        custom = attacks.Objective("first_logit", lambda logits, labels: logits[:, 0])
        model, _, _ = linear_model()
        images, labels = batch()
        adversarial = attacks.PGD(0.1, 0.02, 3, objective=custom).attack(
            attacks.inference_logits(model), images, labels).adversarial_images
        self.assertTrue(np.all(model(adversarial).numpy()[:, 0] > model(images).numpy()[:, 0]))
        with self.assertRaisesRegex(ValueError, "cannot be saved by name"):
            attacks.PGD(0.1, 0.02, 3, objective=custom).get_config()
        with self.assertRaisesRegex(ValueError, "is untargeted"):
            attacks.PGD(0.1, 0.02, 3, objective="kl_to_clean", targeted=True)

    def test_keras_serialization_round_trip(self):
        for attack in (attacks.PGD(0.1, 0.01, 3, objective="margin"), attacks.FGSM(0.2),
                       attacks.PGD(0.1, 0.01, 3, objective="kl_to_clean",
                                   start_noise="gaussian")):
            copy = keras.saving.deserialize_keras_object(
                keras.saving.serialize_keras_object(attack))
            self.assertEqual(copy, attack)


class PGDTraceTest(tf.test.TestCase):

    def test_trace_matches_separate_runs(self):
        model, _, _ = linear_model()
        images, labels = batch(n=64)
        config = PGDConfig(0.05, 0.005, 12, random_start=False)
        trace = attacks.pgd_with_trace(model, images, labels, config, record_at=[0, 4, 12])
        self.assertEqual(trace.correct_at.shape, (3, 64))
        for row, steps in enumerate([0, 4, 12]):
            adversarial = attacks.pgd(model, images, labels, 0.05, 0.005, steps,
                                      random_start=False)
            correct = np.argmax(model(adversarial), axis=1) == labels
            self.assertAllEqual(trace.correct_at[row], correct)
        self.assertAllClose(trace.adversarial_images, adversarial)

    def test_ever_misclassified_covers_every_recorded_iterate(self):
        model, _, _ = linear_model()
        images, labels = batch(n=64)
        trace = attacks.pgd_with_trace(model, images, labels, PGDConfig(0.1, 0.01, 10),
                                       record_at=range(11))
        any_wrong = np.logical_not(trace.correct_at.numpy()).any(axis=0)
        self.assertAllEqual(trace.ever_misclassified, any_wrong)
        # Accuracy falls as the attack goes on (the linear model is easy to break).
        accuracy = trace.correct_at.numpy().mean(axis=1)
        self.assertLess(accuracy[-1], accuracy[0])

    def test_record_at_out_of_range_raises(self):
        model, _, _ = linear_model()
        images, labels = batch()
        with self.assertRaisesRegex(ValueError, "`record_at` must lie in"):
            attacks.pgd_with_trace(model, images, labels, PGDConfig(0.1, 0.01, 5), [6])


if __name__ == "__main__":
    tf.test.main()
