"""Tests of tf_atalp.attacks.pgd: invariants and a hand-derived FGSM."""

import dataclasses
import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tests.attack_fixtures import NUM_CLASSES, batch, conv_model, linear_model
from tf_atalp import attacks
from tf_atalp.attacks import FGSM, PGD


def adversarial_images(attack, model, images, labels, *, training=False, **kwargs):
    """`attack`'s images on `model`, run in inference mode unless `training`."""
    model_fn = (attacks.training_logits if training else attacks.inference_logits)(model)
    return attack.attack(model_fn, images, labels, **kwargs).adversarial_images


class PGDTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.product(
        objective=["cross_entropy", "margin"], random_start=[True, False],
        targeted=[False, True], epsilon=[0.0, 0.05, 0.3])
    def test_stays_in_epsilon_ball_and_unit_range(self, objective, random_start, targeted,
                                                  epsilon):
        model = conv_model()
        images, labels = batch()
        target = (labels + 1) % NUM_CLASSES if targeted else None
        attack = PGD(epsilon=epsilon, step_size=0.1, iterations=5, random_start=random_start,
                     objective=objective, targeted=targeted)
        adversarial = adversarial_images(attack, model, images, labels,
                                         target_labels=target).numpy()
        self.assertLessEqual(np.abs(adversarial - images).max(), epsilon + 1e-6)
        self.assertGreaterEqual(adversarial.min(), 0.0)
        self.assertLessEqual(adversarial.max(), 1.0)
        self.assertEqual(adversarial.dtype, np.float32)

    @parameterized.parameters("cross_entropy", "margin")
    def test_raises_the_objective(self, objective):
        model, _, _ = linear_model()
        images, labels = batch()
        adversarial = adversarial_images(
            PGD(epsilon=0.05, step_size=0.01, iterations=10, objective=objective),
            model, images, labels)
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
        adversarial = adversarial_images(PGD(0.1, 0.02, 10, targeted=True), model, images,
                                         labels, target_labels=target)
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
        self.assertAllClose(adversarial_images(FGSM(epsilon), model, images, labels), expected,
                            atol=1e-6)

    def test_margin_objective_by_hand(self):
        logits = tf.constant([[1.0, 3.0, 2.0], [5.0, -1.0, 0.0]])
        self.assertAllClose(attacks.margin_objective(logits, tf.constant([1, 2])), [-1.0, 5.0])

    def test_zero_iterations_returns_start_point(self):
        model = conv_model()
        images, labels = batch()
        self.assertAllClose(
            adversarial_images(PGD(0.1, 0.01, 0, random_start=False), model, images, labels),
            images)

    def test_seed_makes_random_start_reproducible(self):
        model = conv_model()
        images, labels = batch()
        first, second, third = (adversarial_images(PGD(0.1, 0.01, 2), model, images, labels,
                                                   seed=seed) for seed in (3, 3, 4))
        self.assertAllClose(first, second)
        self.assertNotAllClose(first, third)

    def test_batchnorm_statistics_untouched_by_default(self):
        model = conv_model()
        images, labels = batch()
        before = [w.numpy().copy() for w in model.non_trainable_weights]
        adversarial_images(PGD(0.1, 0.01, 3), model, images * 5.0 % 1.0, labels)
        for old, new in zip(before, model.non_trainable_weights):
            self.assertAllClose(old, new)

    def test_training_mode_attack_updates_batchnorm(self):
        model = conv_model()
        images, labels = batch()
        before = [w.numpy().copy() for w in model.non_trainable_weights]
        adversarial_images(PGD(0.1, 0.01, 3), model, images, labels, training=True)
        changed = [not np.allclose(old, new.numpy())
                   for old, new in zip(before, model.non_trainable_weights)]
        self.assertTrue(any(changed))

    def test_works_inside_tf_function_and_with_xla(self):
        model, _, _ = linear_model()
        images, labels = batch()
        attack = PGD(0.05, 0.01, 4, random_start=False)
        expected = adversarial_images(attack, model, images, labels)

        @tf.function
        def compiled(x, y):
            return adversarial_images(attack, model, x, y)

        self.assertAllClose(compiled(images, labels), expected, atol=1e-6)
        self.assertAllClose(
            adversarial_images(dataclasses.replace(attack, jit_compile=True), model, images,
                               labels), expected, atol=1e-5)

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

        plain, xla = (PGD(0.05, 0.01, 12, random_start=False, jit_compile=jit)
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
        attack = PGD(0.05, 0.01, 3)
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
            adversarial_images(PGD(0.1, 0.01, 2), constant_model, images, labels)

    def test_bad_arguments_raise(self):
        model = conv_model()
        images, labels = batch()
        with self.assertRaisesRegex(ValueError, r"`epsilon` must be in \[0, 1\]"):
            PGD(-0.1, 0.01, 2)
        with self.assertRaisesRegex(ValueError, "`iterations` must be >= 0"):
            PGD(0.1, 0.01, -1)
        with self.assertRaisesRegex(ValueError, "`objective` must be one of"):
            PGD(0.1, 0.01, 2, objective="hinge")
        with self.assertRaisesRegex(ValueError, "needs `target_labels`"):
            adversarial_images(PGD(0.1, 0.01, 2, targeted=True), model, images, labels)
        with self.assertRaisesRegex(ValueError, "the attack is untargeted"):
            adversarial_images(PGD(0.1, 0.01, 2), model, images, labels, target_labels=labels)
        with self.assertRaisesRegex(ValueError, r"\[N, H, W, C\]"):
            adversarial_images(PGD(0.1, 0.01, 2), model, images[0], labels)
        with self.assertRaisesRegex(ValueError, r"`epsilon` must be in \(0, 1\]"):
            attacks.FGSM(0.0)


class AttackObjectTest(tf.test.TestCase):
    """PGD and FGSM as `Attack` objects: one call, a result, a description."""

    def test_pgd_and_fgsm_implement_the_protocol(self):
        for attack in (attacks.PGD(0.1, 0.01, 3), attacks.FGSM(0.1)):
            self.assertIsInstance(attack, attacks.Attack)

    def test_attack_call_gives_a_result_without_a_trace_unless_asked(self):
        model_fn = attacks.inference_logits(conv_model())
        images, labels = batch()
        attack = attacks.PGD(0.1, 0.01, 3)
        result = attack.attack(model_fn, images, labels, seed=5)
        self.assertIsInstance(result, attacks.AttackResult)
        self.assertIsNone(result.correct_at)
        # The same run as the iterate after 3 steps from the same seed.
        self.assertAllClose(result.adversarial_images,
                            attack.iterates(model_fn, images, labels, at=[3], seed=5)[3])
        # FGSM is one step of size epsilon from the image.
        self.assertAllClose(attacks.FGSM(0.07).attack(model_fn, images, labels)
                            .adversarial_images,
                            attacks.PGD(0.07, 0.07, 1, random_start=False)
                            .attack(model_fn, images, labels).adversarial_images)

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
        trace = PGD(0.05, 0.005, 12, random_start=False).attack(
            attacks.inference_logits(model), images, labels, record_at=[0, 4, 12])
        self.assertEqual(trace.correct_at.shape, (3, 64))
        for row, steps in enumerate([0, 4, 12]):
            adversarial = adversarial_images(PGD(0.05, 0.005, steps, random_start=False),
                                             model, images, labels)
            correct = np.argmax(model(adversarial), axis=1) == labels
            self.assertAllEqual(trace.correct_at[row], correct)
        self.assertAllClose(trace.adversarial_images, adversarial)

    def test_ever_misclassified_covers_every_recorded_iterate(self):
        model, _, _ = linear_model()
        images, labels = batch(n=64)
        trace = PGD(0.1, 0.01, 10).attack(attacks.inference_logits(model), images, labels,
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
            PGD(0.1, 0.01, 5).attack(attacks.inference_logits(model), images, labels,
                                     record_at=[6])


if __name__ == "__main__":
    tf.test.main()
