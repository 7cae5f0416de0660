"""Tests of tf_atalp.protocol.checks: each check fires on a masked model or a weak attack,
and stays silent on an honest model under a strong attack."""

import numpy as np
import tensorflow as tf

from tests.attack_fixtures import IMAGE_SHAPE, linear_model, rounding_model
from tf_atalp.protocol import cell_runs, paper_setting
from tf_atalp.protocol.checks import (
    epsilon_check, iteration_check, protocol_checks)
from tf_atalp.protocol.settings import AttackSetting
from tf_atalp.protocol.tables import (
    SINGLE_STEP_KIND, TRANSFER_KIND, WHITE_BOX_KIND, collect)

EPSILONS = (0.25, 0.5)
STRONG = AttackSetting("strong", iterations=10, record_at=(5, 10), step_size=0.1)


def protocol_of(target, source, setting, batches):
    """collect() of a white-box, an FGSM and a transfer cell of `target` (one setting)."""
    cells = [
        {"spec": {"kind": WHITE_BOX_KIND, "setting": setting.name, "target": "t"},
         "result": cell_runs.white_box_cell(target, batches, setting, EPSILONS, seed=0,
                                            drop_broken=True)},
        {"spec": {"kind": SINGLE_STEP_KIND, "target": "t"},
         "result": cell_runs.single_step_cell(target, batches, EPSILONS)},
        {"spec": {"kind": TRANSFER_KIND, "setting": setting.name, "source": "s",
                  "threat_model": "gray_box"},
         "result": cell_runs.transfer_cell(source, {"t": target}, batches, setting, EPSILONS,
                                           threat_model="gray_box", seed=0)},
    ]
    return collect(cells)


class MaskedModelTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.honest, _, _ = linear_model()
        cls.masked = rounding_model(cls.honest)
        rng = np.random.default_rng(0)
        images = rng.uniform(size=(48, *IMAGE_SHAPE)).astype(np.float32)
        labels = np.argmax(cls.masked(images).numpy(), axis=1).astype(np.int32)
        cls.batches = [(tf.constant(images[i:i + 16]), tf.constant(labels[i:i + 16]))
                       for i in range(0, 48, 16)]

    def test_checks_fire_on_the_rounding_model(self):
        checks = protocol_checks(protocol_of(self.masked, self.honest, STRONG, self.batches))
        # PGD cannot move (zero gradient): it stays at the clean accuracy, above the largest
        # class share at epsilon 0.5, and the honest twin's images transfer better.
        self.assertNotEmpty(checks["majority_class_at_grey"])
        self.assertNotEmpty(checks["white_box_vs_transfer"])
        self.assertIn("gradient masking suspected", checks["majority_class_at_grey"][0])

    def test_checks_stay_silent_on_the_honest_model(self):
        checks = protocol_checks(protocol_of(self.honest, self.masked, STRONG, self.batches))
        self.assertEqual({name: [] for name in checks}, checks)

    def test_single_step_check_fires_when_pgd_cannot_reach_the_boundary(self):
        weak = paper_setting(record_at=(2, 4))  # 4 steps of 1/256 against epsilon 0.5
        checks = protocol_checks(protocol_of(self.honest, self.masked, weak, self.batches))
        self.assertNotEmpty(checks["iterative_vs_single_step"])
        self.assertIn("weaker than one step", checks["iterative_vs_single_step"][0])


def series(robust, epsilon=0.25, accuracies=(0.5, 0.4), source="s"):
    return {"setting": "paper", "threat_model": "gray_box" if source else "white_box",
            "source": source, "target": "t",
            "epsilon": epsilon, "robust_accuracy": robust,
            "points": [{"iterations": 10 * (i + 1), "accuracy": a}
                       for i, a in enumerate(accuracies)]}


class SeriesChecksTest(tf.test.TestCase):

    def test_robust_accuracy_rising_with_epsilon_is_flagged(self):
        self.assertNotEmpty(epsilon_check([series(0.2, 0.25), series(0.3, 0.5)]))
        self.assertEmpty(epsilon_check([series(0.3, 0.25), series(0.2, 0.5)]))

    def test_accuracy_rising_with_iterations_beyond_a_point_is_flagged(self):
        self.assertNotEmpty(iteration_check([series(0.1, accuracies=(0.3, 0.2, 0.35))]))
        # Within one point of the lowest so far: PGD may step back by a hair.
        self.assertEmpty(iteration_check([series(0.1, accuracies=(0.3, 0.2, 0.205))]))

    def test_white_box_violations_suspect_masking_transfer_ones_a_weak_transfer(self):
        white = epsilon_check([series(0.2, 0.25, source=None), series(0.3, 0.5, source=None)])
        transfer = epsilon_check([series(0.2, 0.25), series(0.3, 0.5)])
        self.assertTrue(white[0].startswith("gradient masking suspected"))
        self.assertTrue(transfer[0].startswith("weak transfer attack"))
