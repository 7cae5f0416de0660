"""Tests of the warm-up learning-rate schedule against hand-computed values."""

import math

import keras
import tensorflow as tf
from absl.testing import parameterized

from tf_atalp.training.schedules import WarmupSchedule


class WarmupScheduleTest(tf.test.TestCase, parameterized.TestCase):

    def test_cosine_with_warmup(self):
        schedule = WarmupSchedule(peak=1.0, total_steps=110, warmup_steps=10, kind="cosine")
        self.assertAllClose(schedule(0), 0.1)
        self.assertAllClose(schedule(9), 1.0)
        self.assertAllClose(schedule(10), 1.0)
        self.assertAllClose(schedule(60), 0.5 * (1 + math.cos(math.pi * 0.5)))
        self.assertAllClose(schedule(110), 0.0, atol=1e-6)

    def test_step_and_constant(self):
        step = WarmupSchedule(peak=2.0, total_steps=100, kind="step")
        self.assertAllClose([step(0), step(49), step(50), step(74), step(75)],
                            [2.0, 2.0, 0.2, 0.2, 0.02])
        constant = WarmupSchedule(peak=0.5, total_steps=10, kind="constant")
        self.assertAllClose(constant(9), 0.5)

    def test_cyclic_rises_to_the_peak_at_half_and_falls_to_zero(self):
        cyclic = WarmupSchedule(peak=0.2, total_steps=100, kind="cyclic")
        self.assertAllClose([cyclic(0), cyclic(25), cyclic(50), cyclic(75), cyclic(100)],
                            [0.0, 0.1, 0.2, 0.1, 0.0], atol=1e-7)
        with self.assertRaisesRegex(ValueError, "`warmup_steps` must be 0"):
            WarmupSchedule(peak=0.2, total_steps=100, warmup_steps=10, kind="cyclic")

    def test_serialises(self):
        schedule = WarmupSchedule(peak=0.3, total_steps=50, warmup_steps=5, kind="step")
        restored = keras.optimizers.schedules.deserialize(
            keras.optimizers.schedules.serialize(schedule))
        self.assertAllClose(restored(20), schedule(20))

    @parameterized.parameters((0, 0), (10, 10), (10, -1))
    def test_bad_steps(self, total, warmup):
        with self.assertRaisesRegex(ValueError, "total_steps"):
            WarmupSchedule(peak=1.0, total_steps=total, warmup_steps=warmup)


if __name__ == "__main__":
    tf.test.main()
