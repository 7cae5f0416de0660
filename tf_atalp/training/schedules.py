"""Learning-rate schedules with linear warm-up, and the cyclic schedule of Fast-AT."""

import math

import keras
from keras import ops

SCHEDULES = ("constant", "cosine", "step", "cyclic")


@keras.saving.register_keras_serializable(package="tf_atalp")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `peak` over `warmup_steps`, then:
    "constant" (stay at peak), "cosine" (decay to 0 at `total_steps`) or
    "step" (x0.1 at 50% and again at 75% of `total_steps`), or
    "cyclic": no warm-up, linear from 0 to `peak` over the first half of
    `total_steps` and back to 0 over the second (Wong et al. 2020's Fast-AT
    schedule: locuslab/fast_adversarial's `CyclicLR` with base 0 and
    step_size_up = step_size_down = half the steps).
    """

    def __init__(self, peak: float, total_steps: int, warmup_steps: int = 0,
                 kind: str = "cosine"):
        if kind not in SCHEDULES:
            raise ValueError(f"`kind` must be one of {SCHEDULES}. Received: kind={kind!r}")
        if total_steps < 1 or not 0 <= warmup_steps < total_steps:
            raise ValueError(
                "Need total_steps >= 1 and 0 <= warmup_steps < total_steps. "
                f"Received: total_steps={total_steps}, warmup_steps={warmup_steps}")
        if kind == "cyclic" and warmup_steps:
            raise ValueError("The cyclic schedule rises from 0 itself: `warmup_steps` must be 0. "
                             f"Received: warmup_steps={warmup_steps}")
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.kind = kind

    def __call__(self, step):
        step = ops.cast(step, "float32")
        if self.kind == "cyclic":
            half = self.total_steps / 2.0
            return self.peak * ops.clip(1.0 - ops.abs(step - half) / half, 0.0, 1.0)
        warmup = float(max(self.warmup_steps, 1))
        warm = self.peak * ops.minimum(1.0, (step + 1.0) / warmup)
        decay_steps = float(self.total_steps - self.warmup_steps)
        progress = ops.clip((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        if self.kind == "cosine":
            after = 0.5 * self.peak * (1.0 + ops.cos(math.pi * progress))
        elif self.kind == "step":
            after = self.peak * ops.where(progress < 0.5, 1.0, ops.where(progress < 0.75, 0.1, 0.01))
        else:
            after = ops.convert_to_tensor(self.peak)
        return ops.where(step < self.warmup_steps, warm, after)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "kind": self.kind}
