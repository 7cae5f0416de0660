"""Tests of tf_atalp.attacks.autoattack: the ensemble order, the robust points only, the flags."""

import keras
import numpy as np
import tensorflow as tf

from tests.attack_fixtures import CountingModelFn, rounding_model
from tf_atalp.attacks import FAB, AutoAttack, Restarts, inference_logits, masking_flags
from tf_atalp.attacks.autoattack import build_component, version_components

SHAPE = (6, 6, 3)
PLUS = ("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t")


def linear(seed=0, classes=4) -> keras.Model:
    """A linear model on 6x6x3 images (4 classes: every component works; APGD-T needs 4)."""
    rng = np.random.default_rng(seed)
    inputs = keras.Input(SHAPE)
    dense = keras.layers.Dense(classes)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([rng.normal(scale=0.3, size=(108, classes)).astype(np.float32),
                       rng.normal(size=classes).astype(np.float32)])
    return model


class RecordingAttack:
    """Wraps an attack and records how many examples each call is given."""

    def __init__(self, inner):
        self.inner = inner
        self.sizes = []

    def attack(self, model_fn, images, labels, **options):
        self.sizes.append(int(images.shape[0]))
        return self.inner.attack(model_fn, images, labels, **options)

    def describe(self):
        return self.inner.describe()


class AutoAttackTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.honest = linear()
        rng = np.random.default_rng(1)
        cls.images = rng.uniform(size=(24, *SHAPE)).astype(np.float32)
        cls.masked = rounding_model(cls.honest)
        cls.labels = np.argmax(cls.masked(cls.images).numpy(), axis=1).astype(np.int32)

    def run_standard(self, model, epsilon, **options):
        attack = AutoAttack(inference_logits(model), epsilon, iterations=10, queries=100,
                            **options)
        return attack(self.images, self.labels)

    def test_standard_runs_its_four_attacks_and_robustness_only_falls(self):
        self.assertEqual(version_components("standard"), ("apgd-ce", "apgd-t", "fab-t", "square"))
        result = self.run_standard(self.honest, 0.05)
        after = list(result.robust_after.values())
        self.assertEqual(list(result.robust_after), ["apgd-ce", "apgd-t", "fab-t", "square"])
        self.assertEqual(after, sorted(after, reverse=True))
        self.assertEqual(after[-1], result.robust.mean())
        self.assertLess(after[-1], result.clean_correct.mean())
        for example, name in enumerate(result.broken_by):
            self.assertEqual(name == "", bool(result.robust[example]))
        broken = ~result.robust & result.clean_correct
        distance = np.abs(result.adversarial_images.numpy() - self.images).max(axis=(1, 2, 3))
        self.assertAllLessEqual(distance[broken], 0.05 + 1e-6)
        predicted = np.argmax(self.honest(result.adversarial_images).numpy(), axis=1)
        self.assertTrue(np.all(predicted[broken] != self.labels[broken]))

    def test_plus_runs_its_six_attacks_in_order_and_robustness_only_falls(self):
        self.assertEqual(version_components("plus"), PLUS)
        attack = AutoAttack(inference_logits(self.honest), 0.05, version="plus", iterations=3,
                            queries=20)
        described = attack.describe()
        self.assertEqual(described["version"], "plus")
        self.assertEqual([c["attack"] for c in described["components"]], list(PLUS))
        self.assertEqual([c.get("restarts", 1) for c in described["components"]],
                         [5, 5, 5, 1, 1, 1])
        self.assertEqual(described["restarts"], dict(zip(PLUS, [5, 5, 5, 1, 1, 1])))
        self.assertEqual(described["components"][2]["iterations"], 3)
        recordings = {name: RecordingAttack(inner) for name, inner in attack.attacks.items()}
        attack.attacks = recordings
        result = attack(self.images, self.labels)
        self.assertEqual(tuple(result.robust_after), PLUS)
        sizes = [recordings[name].sizes for name in PLUS]
        self.assertTrue(all(len(s) == 1 and s[0] > 0 for s in sizes), sizes)  # each ran once
        self.assertEqual(sizes, sorted(sizes, reverse=True))
        after = list(result.robust_after.values())
        self.assertEqual(after, sorted(after, reverse=True))
        self.assertEqual(after[-1], result.robust.mean())
        self.assertLess(after[-1], result.clean_correct.mean())
        broken = ~result.robust & result.clean_correct
        distance = np.abs(result.adversarial_images.numpy() - self.images).max(axis=(1, 2, 3))
        self.assertAllLessEqual(distance[broken], 0.05 + 1e-6)
        predicted = np.argmax(self.honest(result.adversarial_images).numpy(), axis=1)
        self.assertTrue(np.all(predicted[broken] != self.labels[broken]))

    def test_components_take_their_restarts(self):
        self.assertEqual(build_component("fab", 0.1, 7, restarts=5), FAB(0.1, 7, restarts=5))
        restarted = build_component("apgd-dlr", 0.1, 7, restarts=3)
        self.assertIsInstance(restarted, Restarts)
        self.assertEqual((restarted.restarts, restarted.describe()["loss"]), (3, "dlr"))
        self.assertEqual(build_component("fab-t", 0.1, restarts=2).describe()["restarts"], 2)
        self.assertNotIsInstance(build_component("square", 0.1), Restarts)

    def test_later_attacks_see_only_the_points_still_robust(self):
        attack = AutoAttack(inference_logits(self.honest), 0.02, version="custom",
                            attacks=["apgd-ce", "square"], iterations=5, queries=20)
        recording = RecordingAttack(attack.attacks["square"])
        attack.attacks["square"] = recording
        result = attack(self.images, self.labels)
        robust_after_apgd = round(result.robust_after["apgd-ce"] * len(self.labels))
        self.assertGreater(robust_after_apgd, 0)
        self.assertLess(robust_after_apgd, result.clean_correct.sum())
        self.assertEqual(recording.sizes, [robust_after_apgd])

    def test_batch_size_splits_the_survivors_into_equal_chunks(self):
        attack = AutoAttack(inference_logits(self.honest), 0.02, version="custom",
                            attacks=["apgd-ce", "square"], iterations=5, queries=20)
        recordings = {name: RecordingAttack(inner) for name, inner in attack.attacks.items()}
        attack.attacks = recordings
        result = attack(self.images, self.labels, batch_size=5)
        clean = int(result.clean_correct.sum())
        robust_after_apgd = round(result.robust_after["apgd-ce"] * len(self.labels))
        for name, alive in (("apgd-ce", clean), ("square", robust_after_apgd)):
            sizes = recordings[name].sizes
            self.assertEqual(sum(sizes), alive)
            self.assertLessEqual(max(sizes), 5)
            self.assertLessEqual(max(sizes) - min(sizes), 1)  # equal chunks, not 5, 5, 1
        whole = AutoAttack(inference_logits(self.honest), 0.02, version="custom",
                           attacks=["apgd-ce"], iterations=5)(self.images, self.labels)
        self.assertAllEqual(whole.clean_correct, result.clean_correct)
        with self.assertRaisesRegex(ValueError, "`batch_size` must be None or >= 1"):
            attack(self.images, self.labels, batch_size=0)

    def test_attacks_run_on_attack_model_fn_and_model_fn_scores(self):
        scoring = CountingModelFn(inference_logits(self.honest))
        attacked = CountingModelFn(inference_logits(self.honest))
        result = AutoAttack(scoring, 0.05, version="custom", attacks=["apgd-ce"],
                            iterations=4, attack_model_fn=attacked)(self.images, self.labels)
        self.assertGreater(int(attacked.calls.numpy()), 4)  # every attack step
        # model_fn: the clean images, the found ones, and the flags' probe (2 passes).
        self.assertEqual(int(scoring.calls.numpy()), 4)
        self.assertLess(result.robust.mean(), result.clean_correct.mean())

    def test_flags_fire_on_the_rounding_model_and_not_on_the_honest_one(self):
        masked = self.run_standard(self.masked, 0.3)
        names = {name for name, _ in masked.flags}
        self.assertIn("zero_gradients", names)
        self.assertIn("square_after_gradient_attacks", names)
        self.assertGreater(masked.robust_after["fab-t"], masked.robust_after["square"])
        honest = self.run_standard(self.honest, 0.3)
        self.assertEqual(honest.flags, [])

    def test_a_randomized_model_raises_the_randomized_flag(self):
        inputs = keras.Input(SHAPE)
        noisy = keras.layers.Lambda(lambda x: x + tf.random.normal(tf.shape(x), stddev=0.1))(
            inputs)
        model = keras.Model(inputs, self.honest(noisy))
        flags = masking_flags(inference_logits(model), tf.constant(self.images),
                              tf.constant(self.labels), {"apgd-ce": 0})
        self.assertIn("randomized", {name for name, _ in flags})

    def test_bad_versions_and_components_are_refused(self):
        with self.assertRaisesRegex(ValueError, "version"):
            AutoAttack(inference_logits(self.honest), 0.1, version="plus-plus")
        with self.assertRaisesRegex(ValueError, "attacks"):
            AutoAttack(inference_logits(self.honest), 0.1, version="custom", attacks=["cw"])
        with self.assertRaisesRegex(ValueError, "^`attacks` names the attacks of version "
                                    "'custom' or 'rand'; version='standard' runs its own"):
            AutoAttack(inference_logits(self.honest), 0.1, attacks=["apgd-ce"])
        described = AutoAttack(inference_logits(self.honest), 0.1, version="rand").describe()
        self.assertEqual(described["eot_samples"], 20)
        self.assertEqual([c["attack"] for c in described["components"]],
                         ["apgd-ce", "apgd-dlr"])

    def test_rand_runs_the_attacks_it_is_given_with_eot(self):
        attack = AutoAttack(inference_logits(self.honest), 0.05, version="rand",
                            attacks=["fab", "apgd-ce"], iterations=3, eot_samples=2)
        described = attack.describe()
        self.assertEqual([c["attack"] for c in described["components"]], ["fab", "apgd-ce"])
        self.assertEqual(described["eot_samples"], 2)
        result = attack(self.images[:6], self.labels[:6])
        self.assertEqual(list(result.robust_after), ["fab", "apgd-ce"])
        with self.assertRaisesRegex(ValueError, "`attacks` must name attacks from"):
            AutoAttack(inference_logits(self.honest), 0.1, version="rand", attacks=["cw"])

    def test_components_the_class_count_cannot_take_are_refused_before_any_attack(self):
        # DLR needs 3 classes, targeted DLR 4; APGD-CE, FAB, FAB-T and Square work with 2.
        for classes, version, attacks, refused in (
                (2, "standard", (), "apgd-t needs at least 4"),
                (3, "standard", (), "apgd-t needs at least 4"),
                (2, "rand", (), "apgd-dlr needs at least 3"),
                (2, "custom", ("apgd-ce", "apgd-dlr"), "apgd-dlr needs at least 3"),
                (2, "custom", ("apgd-ce", "fab", "fab-t", "square"), None),
                (2, "rand", ("apgd-ce",), None),
                (3, "rand", (), None)):
            model_fn = inference_logits(linear(classes=classes))
            attacked = CountingModelFn(model_fn)
            attack = AutoAttack(model_fn, 0.05, version=version, attacks=attacks,
                                iterations=2, queries=5, eot_samples=1,
                                attack_model_fn=attacked)
            labels = np.argmax(model_fn(self.images[:6]).numpy(), axis=1).astype(np.int32)
            if refused is None:
                result = attack(self.images[:6], labels)
                self.assertEqual(list(result.robust_after), list(attack.names))
                continue
            with self.assertRaisesRegex(ValueError, f"^AutoAttack's {refused} classes; the "
                                        f"model has {classes}: .*num_classes={classes}$"):
                attack(self.images[:6], labels)
            self.assertEqual(int(attacked.calls.numpy()), 0)  # no attack ran
