"""Tests of AdversarialTrainer: its loss, its gradients, and Keras integration."""

import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tf_atalp import attacks, losses
from tf_atalp.attacks import PGD
from tf_atalp.data.synthetic import make_synthetic_arrays
from tf_atalp.defenses import get_defense
from tf_atalp.models import build_resnet, with_feature_outputs
from tf_atalp.training import AdversarialTrainer

IMAGE_SIZE = 16
NUM_CLASSES = 4
# A deterministic attack (no random start), so a step can be recomputed by hand.
FIXED_ATTACK = PGD(epsilon=0.05, step_size=0.02, iterations=3, random_start=False)


def fixed_adversarial(network, images, labels):
    """FIXED_ATTACK's images on `network` in inference mode (as the trainer's attack runs)."""
    return FIXED_ATTACK.attack(attacks.inference_logits(network), images,
                               labels).adversarial_images


def feature_model(seed=0, batch_norm=False):
    """A small user-style functional model: logits, with two layers tapped as feature maps."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    if batch_norm:
        x = keras.layers.BatchNormalization()(x)
    block1 = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.MaxPooling2D()(block1)
    block2 = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(x)
    logits = keras.layers.Dense(NUM_CLASSES, name="logits")(
        keras.layers.GlobalAveragePooling2D()(block2))
    return with_feature_outputs(keras.Model(inputs, logits),
                                {"block1": "relu1", "block2": "conv2"})


def fixed_batch(n=32, seed=0):
    images, labels = make_synthetic_arrays(n, IMAGE_SIZE, NUM_CLASSES, seed=seed)
    return images, labels


def defense(name, **options):
    return get_defense(name, attention_groups=None, **options)


class TrainerLossTest(tf.test.TestCase, parameterized.TestCase):

    def test_pat_gradients_equal_plain_cross_entropy_on_adversarial_batch(self):
        images, labels = fixed_batch()
        network = feature_model(batch_norm=True)
        adversarial = fixed_adversarial(network, images, labels)
        with tf.GradientTape() as tape:
            outputs = network(adversarial, training=True)
            reference_loss = losses.cross_entropy(labels, outputs["logits"])
        reference = tape.gradient(reference_loss, network.trainable_variables)

        network = feature_model(batch_norm=True)  # same seed, same initial weights
        trainer = AdversarialTrainer(network, defense("pat", alpha=0.0, beta=0.0),
                                     attack=FIXED_ATTACK)
        trainer.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0))
        before = [v.numpy().copy() for v in network.trainable_variables]
        logs = trainer.train_on_batch(images, labels, return_dict=True)
        after = [v.numpy() for v in network.trainable_variables]
        self.assertAllClose(logs["loss"], reference_loss, rtol=1e-5)
        for old, new, gradient in zip(before, after, reference):
            self.assertAllClose(old - new, gradient, rtol=1e-4, atol=1e-6)

    def test_at_alp_loss_is_ce_plus_weighted_pairing_terms(self):
        images, labels = fixed_batch()
        alpha, beta = 0.7, 2.5
        network = feature_model()
        adversarial = fixed_adversarial(network, images, labels)
        clean_out = network(images, training=True)
        adv_out = network(adversarial, training=True)
        ce = losses.cross_entropy(labels, adv_out["logits"])
        alp = losses.logit_pairing_loss(clean_out["logits"], adv_out["logits"])
        at = losses.attention_pairing_loss(clean_out["features"], adv_out["features"])

        trainer = AdversarialTrainer(network, defense("at_alp", alpha=alpha, beta=beta),
                                     attack=FIXED_ATTACK)
        trainer.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0))
        logs = trainer.train_on_batch(images, labels, return_dict=True)
        self.assertAllClose(logs["ce"], ce, rtol=1e-5)
        self.assertAllClose(logs["alp"], alp, rtol=1e-4)
        self.assertAllClose(logs["at"], at, rtol=1e-4)
        self.assertAllClose(logs["loss"], ce + alpha * alp + beta * at, rtol=1e-5)
        self.assertGreater(float(alp), 0.0)
        self.assertGreater(float(at), 0.0)

    def test_mixed_cross_entropy_averages_clean_and_adversarial(self):
        images, labels = fixed_batch()
        network = feature_model()
        adversarial = fixed_adversarial(network, images, labels)
        expected = 0.5 * (losses.cross_entropy(labels, network(images)["logits"])
                          + losses.cross_entropy(labels, network(adversarial)["logits"]))
        trainer = AdversarialTrainer(network, defense("pat", ce_on="mixed"), attack=FIXED_ATTACK)
        trainer.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0))
        logs = trainer.train_on_batch(images, labels, return_dict=True)
        self.assertAllClose(logs["loss"], expected, rtol=1e-5)

    @parameterized.parameters("none", "pat", "alp", "at", "at_alp")
    def test_each_defense_loss_falls_on_a_fixed_batch(self, name):
        images, labels = fixed_batch(64)
        trainer = AdversarialTrainer(feature_model(batch_norm=True), defense(name),
                                     attack=FIXED_ATTACK)
        trainer.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2))
        losses_seen = [float(trainer.train_on_batch(images, labels, return_dict=True)["loss"])
                       for _ in range(20)]
        self.assertTrue(np.all(np.isfinite(losses_seen)))
        self.assertLess(np.mean(losses_seen[-3:]), 0.8 * np.mean(losses_seen[:3]))

    def test_metrics_reported_per_defense(self):
        images, labels = fixed_batch()
        expected = {
            "none": {"loss", "ce", "clean_accuracy"},
            "pat": {"loss", "ce", "adversarial_accuracy"},
            "at_alp": {"loss", "ce", "alp", "at", "clean_accuracy", "adversarial_accuracy"},
        }
        for name, keys in expected.items():
            trainer = AdversarialTrainer(feature_model(), defense(name), attack=FIXED_ATTACK)
            trainer.compile(optimizer="sgd")
            self.assertEqual(set(trainer.train_on_batch(images, labels, return_dict=True)), keys)


class FeatureDenoisingTrainingTest(tf.test.TestCase):

    def test_fd_network_has_the_blocks_and_its_loss_falls(self):
        defense = get_defense("fd")
        keras.utils.set_random_seed(0)
        network = build_resnet(10, NUM_CLASSES, 32, 8, **defense.model_options())
        names = [layer.name for layer in network.layers if layer.name.endswith("_denoise")]
        self.assertEqual(names, [f"{g}_denoise" for g in ("conv2_x", "conv3_x", "conv4_x",
                                                          "conv5_x")])
        images, labels = make_synthetic_arrays(64, 32, NUM_CLASSES, seed=0)
        trainer = AdversarialTrainer(network, defense, attack=FIXED_ATTACK)
        trainer.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2))
        losses_seen = [float(trainer.train_on_batch(images, labels, return_dict=True)["loss"])
                       for _ in range(15)]
        self.assertTrue(np.all(np.isfinite(losses_seen)))
        self.assertLess(np.mean(losses_seen[-3:]), 0.8 * np.mean(losses_seen[:3]))


class TrainerKerasIntegrationTest(tf.test.TestCase):

    def test_fit_evaluate_predict_and_callbacks(self):
        images, labels = fixed_batch(64)
        network = feature_model()
        trainer = AdversarialTrainer(network, defense("at_alp"), attack=FIXED_ATTACK,
                                     eval_attack=PGD(0.05, 0.02, 2))
        trainer.compile(optimizer="adam")
        seen_epochs = []
        history = trainer.fit(
            images, labels, batch_size=16, epochs=2, verbose=0,
            validation_data=(images, labels),
            callbacks=[keras.callbacks.LambdaCallback(
                on_epoch_end=lambda epoch, logs: seen_epochs.append((epoch, dict(logs))))])
        self.assertEqual([e for e, _ in seen_epochs], [0, 1])
        for key in ("loss", "ce", "alp", "at", "clean_accuracy", "adversarial_accuracy",
                    "val_loss", "val_clean_accuracy", "val_adversarial_accuracy"):
            self.assertIn(key, history.history)
        results = trainer.evaluate(images, labels, verbose=0, return_dict=True)
        self.assertEqual(set(results), {"loss", "clean_accuracy", "adversarial_accuracy"})
        logits = trainer.predict(images, batch_size=16, verbose=0)
        self.assertEqual(logits.shape, (64, NUM_CLASSES))
        self.assertAllClose(logits, network(images)["logits"], atol=1e-5)

    def test_trains_from_a_tf_data_dataset(self):
        images, labels = fixed_batch(64)
        dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16)
        trainer = AdversarialTrainer(feature_model(), defense("at_alp"), attack=FIXED_ATTACK)
        trainer.compile(optimizer="adam")
        history = trainer.fit(dataset, epochs=1, verbose=0, shuffle=False)
        self.assertLen(history.history["loss"], 1)

    def test_mixed_bfloat16(self):
        images, labels = fixed_batch()
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        try:
            network = feature_model()
            self.assertEqual(network(images)["features"]["block1"].dtype, tf.bfloat16)
            trainer = AdversarialTrainer(network, defense("at_alp"), attack=FIXED_ATTACK)
            trainer.compile(optimizer="adam")
            logs = trainer.train_on_batch(images, labels, return_dict=True)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        for key in ("loss", "ce", "alp", "at"):
            self.assertTrue(np.isfinite(logs[key]), key)
        self.assertEqual(network.trainable_variables[0].dtype, "float32")

    def test_xla_step_runs_the_attack_unrolled(self):
        # compile(jit_compile=True) hands the step's attack over with jit_compile set,
        # so its loop unrolls under XLA; the step's loss is that of the plain step.
        images, labels = fixed_batch(16)
        seen = []

        @dataclasses.dataclass(frozen=True)
        class RecordingPGD(PGD):
            def attack(self, model_fn, images, labels, **kwargs):
                seen.append(self.jit_compile)
                return super().attack(model_fn, images, labels, **kwargs)

        attack = RecordingPGD(epsilon=0.05, step_size=0.02, iterations=3, random_start=False)
        step_losses = []
        for jit in (False, True):
            trainer = AdversarialTrainer(feature_model(), defense("at_alp"), attack=attack)
            trainer.compile(optimizer=keras.optimizers.SGD(0.0), jit_compile=jit)
            step_losses.append(trainer.train_on_batch(images, labels, return_dict=True)["loss"])
        self.assertEqual(sorted(set(seen)), [False, True])
        self.assertFalse(attack.jit_compile)
        self.assertAllClose(step_losses[1], step_losses[0], rtol=1e-4)

    def test_seeded_training_attack_draws_by_seed_and_step(self):
        # The random start is a function of (seed, optimizer step): the same seed repeats
        # the losses whatever the global random state; the next step draws anew.
        images, labels = fixed_batch()
        attack = PGD(epsilon=0.05, step_size=0.02, iterations=2, random_start=True)

        def losses_of_two_steps(seed):
            trainer = AdversarialTrainer(feature_model(), defense("pat"), attack=attack,
                                         seed=seed)
            trainer.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0))
            tf.random.uniform([7])  # moves the global generator; must not matter
            return [float(trainer.train_on_batch(images, labels, return_dict=True)["loss"])
                    for _ in range(2)]

        first, again, other = losses_of_two_steps(5), losses_of_two_steps(5), \
            losses_of_two_steps(6)
        self.assertEqual(first, again)
        self.assertNotEqual(first[0], first[1])
        self.assertNotEqual(first, other)

    def test_model_returning_plain_logits_trains_without_attention(self):
        images, labels = fixed_batch()
        inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
        logits = keras.layers.Dense(NUM_CLASSES)(keras.layers.Flatten()(inputs))
        trainer = AdversarialTrainer(keras.Model(inputs, logits), defense("alp"),
                                     attack=FIXED_ATTACK)
        trainer.compile(optimizer="adam")
        self.assertIn("alp", trainer.train_on_batch(images, labels, return_dict=True))

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "pass `attack=PGD"):
            AdversarialTrainer(feature_model(), "pat")
        images, labels = fixed_batch()
        trainer = AdversarialTrainer(feature_model(), get_defense("at"), attack=FIXED_ATTACK)
        trainer.compile(optimizer="sgd")
        with self.assertRaisesRegex(ValueError, "has no feature map named"):
            trainer.train_on_batch(images, labels)
        trainer = AdversarialTrainer(feature_model(), defense("at"), attack=FIXED_ATTACK)
        trainer.compile(optimizer="sgd")
        with self.assertRaisesRegex(ValueError, "does not support sample weights"):
            trainer.train_on_batch(images, labels, sample_weight=np.ones(len(labels)))

    def test_feature_maps_must_be_under_the_features_role(self):
        images, labels = fixed_batch()
        network = feature_model()
        flat = keras.Model(network.input, {"logits": network.output["logits"],
                                           **network.output["features"]})
        trainer = AdversarialTrainer(flat, defense("at"), attack=FIXED_ATTACK)
        trainer.compile(optimizer="sgd")
        with self.assertRaisesRegex(ValueError, "with_feature_outputs"):
            trainer.train_on_batch(images, labels)

    def test_compiled_metrics_see_the_logits_trained_on(self):
        images, labels = fixed_batch(64)
        for name, key in (("at_alp", "adversarial_accuracy"), ("none", "clean_accuracy")):
            trainer = AdversarialTrainer(feature_model(), defense(name), attack=FIXED_ATTACK)
            trainer.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0),
                            metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")])
            logs = trainer.train_on_batch(images, labels, return_dict=True)
            self.assertAllClose(logs["acc"], logs[key])
            results = trainer.evaluate(images, labels, verbose=0, return_dict=True)
            self.assertAllClose(results["acc"], results["clean_accuracy"])

    def test_config_and_saving_round_trip(self):
        images, labels = fixed_batch()
        trainer = AdversarialTrainer(feature_model(), defense("at_alp", alpha=0.3),
                                     attack=FIXED_ATTACK, eval_attack=PGD(0.05, 0.02, 2),
                                     attack_batchnorm_training=True, seed=3)
        trainer.compile(optimizer="adam")
        trainer.train_on_batch(images, labels)
        path = os.path.join(self.get_temp_dir(), "trainer.keras")
        trainer.save(path)
        loaded = keras.models.load_model(path)
        self.assertIsInstance(loaded, AdversarialTrainer)
        self.assertEqual(loaded.defense, trainer.defense)
        self.assertEqual((loaded.attack, loaded.eval_attack), (trainer.attack, trainer.eval_attack))
        self.assertEqual((loaded.attack_batchnorm_training, loaded.seed), (True, 3))
        self.assertAllClose(loaded.predict(images, verbose=0), trainer.predict(images, verbose=0),
                            atol=1e-5)


NEW_DEFENSES = (("trades", {}), ("mart", {}), ("fast_at", {"grad_align_lambda": 0.2}),
                ("free_at", {"replays": 3}), ("at_alp", {"awp_gamma": 0.01}),
                ("trades", {"awp_gamma": 0.005}))


class StepStrategyTest(tf.test.TestCase, parameterized.TestCase):
    """trades, mart, fast_at, free_at and AWP through fit, bf16, XLA and saving."""

    @parameterized.parameters(*NEW_DEFENSES)
    def test_loss_falls_on_a_fixed_batch(self, name, options):
        images, labels = fixed_batch(64)
        trainer = AdversarialTrainer(feature_model(batch_norm=True), defense(name, **options),
                                     attack=FIXED_ATTACK, seed=0)
        trainer.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2))
        losses_seen = [float(trainer.train_on_batch(images, labels, return_dict=True)["loss"])
                       for _ in range(20)]
        self.assertTrue(np.all(np.isfinite(losses_seen)))
        self.assertLess(np.mean(losses_seen[-3:]), 0.8 * np.mean(losses_seen[:3]))

    @parameterized.parameters(*NEW_DEFENSES)
    def test_fit_and_saving_round_trip(self, name, options):
        images, labels = fixed_batch(32)
        chosen = defense(name, **options)
        trainer = AdversarialTrainer(feature_model(batch_norm=True), chosen, attack=FIXED_ATTACK,
                                     eval_attack=PGD(0.05, 0.02, 2), seed=1)
        trainer.compile(optimizer="adam")
        history = trainer.fit(tf.data.Dataset.from_tensor_slices((images, labels)).batch(16),
                              epochs=1, verbose=0, validation_data=(images, labels),
                              shuffle=False)
        for key in ("loss", *chosen.term_names, "adversarial_accuracy", "val_adversarial_accuracy"):
            self.assertTrue(np.isfinite(history.history[key][-1]), key)
        path = os.path.join(self.get_temp_dir(), f"{chosen.name}.keras")
        trainer.save(path)
        loaded = keras.models.load_model(path)
        self.assertEqual(loaded.defense, chosen)
        self.assertEqual(loaded.defense.name, chosen.name)
        self.assertAllClose(loaded.predict(images, verbose=0), trainer.predict(images, verbose=0),
                            atol=1e-5)

    @parameterized.parameters(*NEW_DEFENSES)
    def test_mixed_bfloat16(self, name, options):
        images, labels = fixed_batch()
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        try:
            network = feature_model(batch_norm=True)
            trainer = AdversarialTrainer(network, defense(name, **options), attack=FIXED_ATTACK)
            trainer.compile(optimizer="adam")
            logs = trainer.train_on_batch(images, labels, return_dict=True)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        for key, value in logs.items():
            self.assertTrue(np.isfinite(value), key)
        self.assertEqual(network.trainable_variables[0].dtype, "float32")

    @parameterized.parameters(("free_at", {"replays": 2}), ("pat", {"awp_gamma": 0.01}))
    def test_xla_step_computes_the_plain_step(self, name, options):
        images, labels = fixed_batch(16)
        step_losses, weights = [], []
        for jit in (False, True):
            network = feature_model()
            trainer = AdversarialTrainer(network, defense(name, **options), attack=FIXED_ATTACK)
            trainer.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=jit)
            step_losses.append(trainer.train_on_batch(images, labels, return_dict=True)["loss"])
            weights.append([v.numpy() for v in network.trainable_variables])
        self.assertAllClose(step_losses[1], step_losses[0], rtol=1e-4)
        for plain, compiled in zip(*weights):
            self.assertAllClose(plain, compiled, rtol=1e-4, atol=1e-5)


class RobustnessEffectTest(tf.test.TestCase):
    """at_alp training must buy real PGD robustness over undefended training."""

    def test_at_alp_beats_undefended_under_pgd(self):
        train_x, train_y = make_synthetic_arrays(1024, 32, NUM_CLASSES, seed=0)
        test_x, test_y = make_synthetic_arrays(256, 32, NUM_CLASSES, seed=1)
        epsilon = 0.03
        train_attack = PGD(epsilon, epsilon / 4, 5)
        test_attack = PGD(epsilon, epsilon / 4, 20)
        results = {}
        for name in ("none", "at_alp"):
            keras.utils.set_random_seed(0)
            inputs = keras.Input((32, 32, 3))
            x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
            g1 = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="g1")(x)
            g2 = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="g2")(
                keras.layers.MaxPooling2D()(g1))
            logits = keras.layers.Dense(NUM_CLASSES)(keras.layers.GlobalAveragePooling2D()(g2))
            network = with_feature_outputs(keras.Model(inputs, logits), {"g1": "g1", "g2": "g2"})
            trainer = AdversarialTrainer(network, defense(name, beta=0.05), attack=train_attack,
                                         eval_attack=test_attack)
            trainer.compile(optimizer=keras.optimizers.Adam(3e-3))
            trainer.fit(train_x, train_y, batch_size=64, epochs=10, verbose=0)
            results[name] = trainer.evaluate(test_x, test_y, batch_size=256, verbose=0,
                                             return_dict=True)
        self.assertGreater(results["none"]["clean_accuracy"], 0.9)
        self.assertGreater(results["at_alp"]["clean_accuracy"], 0.8)
        self.assertGreater(results["at_alp"]["adversarial_accuracy"],
                           results["none"]["adversarial_accuracy"] + 0.3, msg=str(results))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tf.test.main()
