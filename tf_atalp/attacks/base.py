"""The `Attack` protocol: one call for every attack, and what it returns.

    result = attack.attack(model_fn, images, labels, seed=0)
    result.adversarial_images            # float32 [N, H, W, C] in [0, 1]

`model_fn` maps float32 images [N, H, W, C] in [0, 1] to float32 logits
[N, K] (see `tf_atalp.attacks.model_fns`: BatchNorm mode and randomness are
properties of the model function, not of the attack). Crafting is separate
from scoring: the adversarial images crafted on one model function can be
scored on any other (a transfer attack).

`describe()` returns the attack's settings as a JSON-ready dict, written
next to every number it produced. Attacks that run several steps can also
score their iterates on request (`record_at`), which gives the accuracy after
10, 20, ..., 200 steps from one 200-step run.

`AttackBase` is what the single attacks (PGD, FGSM, APGD, FAB, FAB-T,
Square: frozen dataclasses with an `epsilon` field) share: the epsilon
check, `get_config`/`from_config` and the XLA switch (`for_xla`).
"""

import dataclasses
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import tensorflow as tf

ModelFn = Callable[[tf.Tensor], tf.Tensor]


@dataclasses.dataclass(frozen=True)
class AttackResult:
    """What one attack run made, and (on request) what it saw along the way.

    Attributes:
      adversarial_images: float32 [N, H, W, C] in [0, 1].
      record_at: int32 [R], the iteration counts that were scored, or None.
      correct_at: bool [R, N], whether iterate `record_at[r]` was classified
        correctly by the attacked model function (untargeted: as its label;
        targeted: not as its target), or None. Iterate 0 is the start point.
    """

    adversarial_images: tf.Tensor
    record_at: tf.Tensor | None = None
    correct_at: tf.Tensor | None = None

    @property
    def ever_misclassified(self) -> tf.Tensor:
        """bool [N]: some recorded iterate was misclassified."""
        if self.correct_at is None:
            raise ValueError("This result has no trace: run the attack with `record_at`.")
        return tf.reduce_any(tf.logical_not(self.correct_at), axis=0)


@runtime_checkable
class Attack(Protocol):
    """An attack: `attack(model_fn, images, labels, *, seed, record_at) -> AttackResult`.

    `seed`: None (a fresh draw each call), an int, or an int [2] tensor (as
    inside a compiled train step) for reproducible randomness. `record_at`:
    None, or the iteration counts whose iterates are scored into the result
    (an attack that cannot trace raises ValueError).
    """

    def attack(self, model_fn: ModelFn, images: tf.Tensor, labels: tf.Tensor, *,
               seed=None, record_at: Sequence[int] | None = None) -> AttackResult:
        ...

    def describe(self) -> dict:
        ...


def check_epsilon(epsilon: float, *, zero_allowed: bool = False) -> None:
    """Raises ValueError unless `epsilon` is in (0, 1] (in [0, 1] when `zero_allowed`)."""
    above_zero = epsilon >= 0.0 if zero_allowed else epsilon > 0.0
    if not (above_zero and epsilon <= 1.0):
        interval = "[0, 1]" if zero_allowed else "(0, 1]"
        raise ValueError(f"`epsilon` must be in {interval}. Received: epsilon={epsilon}")


class AttackBase:
    """The shared part of the single attacks (each a frozen dataclass with `epsilon`).

    - `__post_init__` checks `epsilon` (pixel units in (0, 1]; in [0, 1]
      where the class sets `zero_epsilon_allowed`); a subclass's own
      `__post_init__` calls it first.
    - `get_config()` is the fields, `from_config(config)` the attack again
      (Keras serialization: `keras.saving.serialize_keras_object`).
    - `for_xla()`: the attack as it must run inside an XLA-compiled function;
      an attack with a `jit_compile` field gets it set (its loop unrolls).
    """

    zero_epsilon_allowed = False

    def __post_init__(self):
        check_epsilon(self.epsilon, zero_allowed=self.zero_epsilon_allowed)

    def get_config(self) -> dict:
        """The fields, JSON-ready."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def for_xla(self):
        """This attack with `jit_compile=True` if it has that field set to False, else itself."""
        if getattr(self, "jit_compile", True) is False:
            return dataclasses.replace(self, jit_compile=True)
        return self


def for_xla(attack):
    """`attack` as it must run inside an XLA-compiled function (a `jit_compile` train step).

    Attacks with a `jit_compile` field get it set, so their loops unroll;
    others are returned as they are.
    """
    return attack.for_xla() if isinstance(attack, AttackBase) else attack


def check_images(images: tf.Tensor) -> tf.Tensor:
    """`images` as a tensor; raises ValueError unless it is [N, H, W, C]."""
    images = tf.convert_to_tensor(images)
    if images.shape.rank != 4:
        raise ValueError(f"`images` must be [N, H, W, C]. Received shape: {images.shape}")
    return images


def correct_predictions(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """bool [N]: argmax of the logits equals the label."""
    return tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), tf.cast(labels, tf.int32))


def checked_record_at(record_at, longest: int, unit: str = "iterations") -> list[int] | None:
    """`record_at` as sorted distinct counts, each in [0, longest]; None stays None."""
    if record_at is None:
        return None
    counts = sorted({int(k) for k in record_at})
    if not counts or counts[0] < 0 or counts[-1] > longest:
        raise ValueError(f"`record_at` must lie in [0, {unit}={longest}]. "
                         f"Received: record_at={counts}")
    return counts
