"""AdversarialTrainer under MirroredStrategy on two logical CPUs.

Run in a subprocess, because logical devices must be set before TensorFlow
starts, and other test modules in the same pytest process start it.
"""

import os
import subprocess
import sys
import textwrap

import tensorflow as tf

SCRIPT = textwrap.dedent("""
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from tf_atalp.attacks import PGD
    from tf_atalp.data.synthetic import make_synthetic_arrays
    from tf_atalp.defenses import get_defense
    from tf_atalp.models import with_feature_outputs
    from tf_atalp.training import AdversarialTrainer

    images, labels = make_synthetic_arrays(32, 16, 4, seed=0)
    attack = PGD(0.05, 0.02, 2, random_start=False)

    def one_step(strategy, name="at_alp", **options):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            inputs = keras.Input((16, 16, 3))
            features = keras.layers.Conv2D(8, 3, padding="same", activation="relu",
                                           name="features")(inputs)
            logits = keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(features))
            network = with_feature_outputs(keras.Model(inputs, logits), {"maps": "features"})
            trainer = AdversarialTrainer(network, get_defense(name, attention_groups=None,
                                                              **options),
                                         attack=attack, seed=0)
            trainer.compile(optimizer=keras.optimizers.SGD(0.5),
                            metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")])
        dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(32)
        logs = trainer.fit(dataset, epochs=1, verbose=0).history
        return ([v.numpy() for v in network.trainable_variables], strategy.num_replicas_in_sync,
                {key: value[-1] for key, value in logs.items()})

    mirrored_strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    # Deterministic steps match the single-device step exactly (free_at's replays; AWP's
    # perturbation from the gradient summed over the replicas).
    for name, options in (("at_alp", {}), ("free_at", {"replays": 3}),
                          ("at_alp", {"awp_gamma": 0.01})):
        single, one, single_logs = one_step(tf.distribute.get_strategy(), name, **options)
        mirrored, two, mirrored_logs = one_step(mirrored_strategy, name, **options)
        assert (one, two) == (1, 2), (one, two)
        for a, b in zip(single, mirrored):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=name)
        # The logged loss is the global batch's, not one replica's share.
        assert set(single_logs) == set(mirrored_logs), (single_logs, mirrored_logs)
        for key in single_logs:
            np.testing.assert_allclose(single_logs[key], mirrored_logs[key], rtol=1e-4,
                                       err_msg=f"{name} {key}")
    # Random starts are drawn per replica, so these are checked for running and logging.
    for name in ("trades", "mart", "fast_at"):
        single, _, single_logs = one_step(tf.distribute.get_strategy(), name)
        mirrored, _, mirrored_logs = one_step(mirrored_strategy, name)
        assert set(single_logs) == set(mirrored_logs), (name, single_logs, mirrored_logs)
        assert all(np.isfinite(value) for value in mirrored_logs.values()), mirrored_logs
    print("MIRRORED_MATCHES")
""")


class DistributedTrainingTest(tf.test.TestCase):

    def test_mirrored_step_equals_single_device_step(self):
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        result = subprocess.run(
            [sys.executable, "-c", SCRIPT], cwd=root, capture_output=True, text=True,
            timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=root))
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertIn("MIRRORED_MATCHES", result.stdout)


if __name__ == "__main__":
    tf.test.main()
