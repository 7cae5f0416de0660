"""AutoAttack (Croce & Hein 2020): a fixed ensemble of attacks, each run on the points still robust.

    result = AutoAttack(model_fn, epsilon=8 / 255, version="standard")(images, labels)
    result.robust            # bool [N]: survived every attack
    result.broken_by         # per example: the attack that broke it ("clean" if misclassified)

Versions (as the reference code, fra31/auto-attack):
- "standard": APGD-CE (100 steps), APGD-T (targeted DLR, 9 targets x 100
  steps), FAB-T (9 targets x 100 steps), Square (5000 queries, p halved at fixed
  query counts: the reference's resc_schedule=False); one
  restart each.
- "plus": APGD-CE and APGD-DLR (5 restarts each), untargeted FAB (5
  restarts), Square (5000 queries, 1 restart), APGD-T and FAB-T (9 targets,
  1 restart each), in that order.
- "rand" (randomized defenses): APGD-CE and APGD-DLR, or the attacks named
  in `attacks`, each gradient and prediction the mean over 20 draws (EoT).
- "custom": the attacks named in `attacks`, in that order, one restart each.
DLR needs at least 3 classes and targeted DLR (APGD-T) at least 4
(`MIN_CLASSES`): a 2-class task runs e.g. version "custom" with APGD-CE,
FAB, Square, or "rand" with APGD-CE; another choice is refused before any
attack runs.
Every later attack runs only on the points the earlier ones left robust, so
robust accuracy after each attack is non-increasing and the total is the
worst case per example over all of them; with `batch_size`, the points
still robust in the whole set are attacked in equal chunks of at most that
many (the reference's batching), and `attack_model_fn` can be a faster form
of the model function for the attacks to run on (`fold_batchnorm`).

`masking_flags` are the warnings AutoAttack and Carlini et al. 2019 ask
for, computed on every run.
"""

import dataclasses
import time
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from tf_atalp.attacks.apgd import APGD
from tf_atalp.attacks.base import check_epsilon, check_images, correct_predictions
from tf_atalp.attacks.composite import Restarts
from tf_atalp.attacks.fab import FAB, FABTargeted
from tf_atalp.attacks.model_fns import ExpectationOverTransformation
from tf_atalp.attacks.square import Square
from tf_atalp.seeds import derive_seed

VERSIONS = ("standard", "plus", "rand", "custom")
COMPONENTS = ("apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square")
GRADIENT_FREE = ("square",)
RAND_COMPONENTS = ("apgd-ce", "apgd-dlr")  # version "rand" without `attacks`
# The fewest classes a component's loss is defined for (others: 2). DLR divides
# by the gap from the largest to the third largest logit; targeted DLR by the
# gap to the mean of the third and fourth.
MIN_CLASSES = {"apgd-dlr": 3, "apgd-t": 4}
RAND_EOT_SAMPLES = 20
TARGET_CLASSES = 9  # APGD-T's and FAB-T's targets in every version
# The reference's "plus" version restarts these 5 times (the others once).
PLUS_RESTARTS = {"apgd-ce": 5, "apgd-dlr": 5, "fab": 5}
SATURATION = 1 - 1e-6  # a softmax probability this close to 1 counts as saturated
FLAG_SHARE = 0.5  # a flag on zero gradients / saturation needs this share of examples


def build_component(name: str, epsilon: float, iterations: int = 100,
                    queries: int = 5000, restarts: int = 1, *, random_start: bool = True,
                    rescale_schedule: bool = False):
    """The attack called `name` (one of COMPONENTS) at `epsilon`, with the reference defaults.

    The one builder of APGD, FAB and Square, for AutoAttack and for the
    single attacks of `eval_main.py --attack=NAME` alike. The two settings in
    which a single attack differs from AutoAttack's component on purpose:

    - `random_start`: APGD's start at the reference's random point (True, as
      AutoAttack) or at the image (`--norandom_start`). FAB and FAB-T start
      their first run at the image whatever it says; Square at its stripes.
    - `rescale_schedule`: Square's p schedule of 10000 queries stretched over
      `queries` (True: the Square paper's code, a single Square run) or
      halved at fixed query counts (False: AutoAttack's `resc_schedule=False`).

    `restarts` > 1: FAB and FAB-T restart themselves (the first run from the
    image, the others from random points); the others run inside `Restarts`.
    """
    if name == "fab":
        return FAB(epsilon, iterations, restarts=restarts)
    if name == "fab-t":
        return FABTargeted(epsilon, iterations, target_classes=TARGET_CLASSES,
                           restarts=restarts)
    if name == "apgd-ce":
        attack = APGD(epsilon, iterations, loss="cross_entropy", random_start=random_start)
    elif name == "apgd-dlr":
        attack = APGD(epsilon, iterations, loss="dlr", random_start=random_start)
    elif name == "apgd-t":
        attack = APGD(epsilon, iterations, target_classes=TARGET_CLASSES,
                      random_start=random_start)
    elif name == "square":
        attack = Square(epsilon, queries=queries, rescale_schedule=rescale_schedule)
    else:
        raise ValueError(f"Unknown AutoAttack component {name!r}; choose from {COMPONENTS}.")
    return attack if restarts == 1 else Restarts(attack, restarts)


def version_components(version: str, attacks: Sequence[str] = ()) -> tuple[str, ...]:
    """The attack names a version runs, in order (`attacks`: custom's, or rand's instead of its default)."""
    if version not in VERSIONS:
        raise ValueError(f"`version` must be one of {VERSIONS}. Received: version={version!r}")
    if attacks and version not in ("custom", "rand"):
        raise ValueError(f"`attacks` names the attacks of version 'custom' or 'rand'; "
                         f"version={version!r} runs its own. Received: attacks={list(attacks)}")
    if (version == "custom" and not attacks) or any(a not in COMPONENTS for a in attacks):
        raise ValueError(f"`attacks` must name attacks from {COMPONENTS} for "
                         f"version={version!r}. Received: attacks={list(attacks)}")
    if version == "standard":
        return ("apgd-ce", "apgd-t", "fab-t", "square")
    if version == "plus":
        return ("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t")
    if version == "rand" and not attacks:
        return RAND_COMPONENTS
    return tuple(attacks)


def check_num_classes(names: Sequence[str], num_classes: int) -> None:
    """Raises ValueError, in one line, when an attack in `names` cannot work with `num_classes`."""
    for name in names:
        needed = MIN_CLASSES.get(name, 2)
        if num_classes < needed:
            raise ValueError(
                f"AutoAttack's {name} needs at least {needed} classes; the model has "
                f"{num_classes}: choose attacks that work with it (e.g. version='custom' with attacks=('apgd-ce', "
                "'fab', 'square'), or version='rand' with attacks=('apgd-ce',)). "
                f"Received: attacks={list(names)}, num_classes={num_classes}")


def component_restarts(version: str, name: str) -> int:
    """How many restarts `version` gives the attack `name` (the reference's settings)."""
    return PLUS_RESTARTS.get(name, 1) if version == "plus" else 1


@dataclasses.dataclass
class AutoAttackResult:
    """What one AutoAttack run found.

    Attributes:
      adversarial_images: float32 [N, ...]: the breaking point of each broken
        example, the image itself otherwise.
      clean_correct: bool [N].
      robust: bool [N]: correct on the image and after every attack.
      broken_by: [N] str: "clean" (misclassified already), the attack that
        broke it, or "" (robust).
      robust_after: {attack: robust accuracy after it and every earlier one}.
      seconds: {attack: wall time}.
      flags: `masking_flags`' list of (name, message) pairs raised.
    """

    adversarial_images: tf.Tensor
    clean_correct: np.ndarray
    robust: np.ndarray
    broken_by: list
    robust_after: dict
    seconds: dict
    flags: list


class AutoAttack:
    """An ensemble attack on `model_fn` (images in [0, 1] -> logits) at L-inf `epsilon`.

    `attack_model_fn`: the model function the attacks run on, when it is a
    faster form of the same function (`fold_batchnorm`'s copy, say); every
    prediction that scores (clean, fooled, the flags) is `model_fn`'s.
    """

    def __init__(self, model_fn: Callable, epsilon: float, version: str = "standard",
                 attacks: Sequence[str] = (), iterations: int = 100, queries: int = 5000,
                 eot_samples: int = RAND_EOT_SAMPLES, seed: int = 0,
                 attack_model_fn: Callable | None = None):
        self.names = version_components(version, attacks)
        check_epsilon(epsilon)
        self.version = version
        self.epsilon = epsilon
        self.seed = seed
        def with_eot(function):
            return (ExpectationOverTransformation(function, eot_samples)
                    if version == "rand" else function)
        self.model_fn = with_eot(model_fn)
        self.attack_model_fn = (self.model_fn if attack_model_fn is None
                                else with_eot(attack_model_fn))
        self.eot_samples = eot_samples if version == "rand" else 1
        self.attacks = {name: build_component(name, epsilon, iterations, queries,
                                              component_restarts(version, name))
                        for name in self.names}

    def describe(self) -> dict:
        return {"attack": "autoattack", "version": self.version, "norm": "linf",
                "epsilon": self.epsilon, "eot_samples": self.eot_samples, "seed": self.seed,
                "restarts": {name: component_restarts(self.version, name)
                             for name in self.names},
                "components": [a.describe() for a in self.attacks.values()]}

    def __call__(self, images, labels, batch_size: int | None = None) -> AutoAttackResult:
        """Every attack in turn on the examples still robust.

        `batch_size`: at most this many examples per attack call (None: all
        at once). The points still robust are split into equal chunks, so a
        later attack runs on the survivors of the whole set together, as the
        reference does, rather than on a few per data batch.
        """
        if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
            raise ValueError(f"`batch_size` must be None or >= 1. Received: {batch_size!r}")
        images = tf.cast(check_images(images), tf.float32)
        labels = tf.cast(labels, tf.int32)
        count = int(labels.shape[0])
        correct = np.zeros(count, bool)
        for chunk in _chunks(np.arange(count), batch_size):
            logits = self.model_fn(tf.gather(images, chunk))
            correct[chunk] = correct_predictions(logits, tf.gather(labels, chunk)).numpy()
        if count:  # before any attack runs
            check_num_classes(self.names, int(logits.shape[-1]))
        robust = correct.copy()
        broken_by = ["" if c else "clean" for c in correct]
        adversarial = images.numpy().copy()
        robust_after, seconds, broken_per_attack = {}, {}, {}
        for index, (name, attack) in enumerate(self.attacks.items()):
            started = time.time()
            broken_per_attack[name] = 0
            for part, alive in enumerate(_chunks(np.flatnonzero(robust), batch_size)):
                alive_labels = tf.gather(labels, alive)
                result = attack.attack(self.attack_model_fn, tf.gather(images, alive),
                                       alive_labels,
                                       seed=self.seed + index if part == 0 else
                                       derive_seed(self.seed + index, "chunk", part))
                found = result.adversarial_images
                fooled = ~correct_predictions(self.model_fn(found), alive_labels).numpy()
                broken = alive[fooled]
                robust[broken] = False
                for example in broken:
                    broken_by[example] = name
                adversarial[broken] = tf.boolean_mask(found, fooled).numpy()
                broken_per_attack[name] += int(fooled.sum())
            robust_after[name] = float(robust.mean()) if count else 0.0
            seconds[name] = round(time.time() - started, 2)
        flags = masking_flags(self.model_fn, images, labels, broken_per_attack,
                              randomized_probe=self.version != "rand", batch_size=batch_size)
        return AutoAttackResult(tf.constant(adversarial), correct, robust, broken_by,
                                robust_after, seconds, flags)


def _chunks(indices: np.ndarray, batch_size: int | None) -> list[np.ndarray]:
    """`indices` in equal consecutive chunks of at most `batch_size` (none when empty)."""
    if indices.size == 0:
        return []
    parts = 1 if batch_size is None else -(-indices.size // batch_size)
    return np.array_split(indices, parts)


def masking_flags(model_fn, images, labels, broken_per_attack: dict,
                  randomized_probe: bool = True,
                  batch_size: int | None = None) -> list[tuple[str, str]]:
    """The raised gradient-masking flags, each (name, message).

    - "randomized": two forward passes on the same images disagree (the
      model draws randomness; attack it with version="rand" / EoT);
    - "zero_gradients": at least FLAG_SHARE of the examples have an input
      gradient of the cross-entropy that is exactly zero;
    - "square_after_gradient_attacks": Square broke points that every
      gradient attack before it left robust;
    - "saturated_softmax": at least FLAG_SHARE of the examples have a top
      softmax probability above SATURATION (vanishing gradients).

    The images are probed `batch_size` at a time (None: all at once); the
    shares are over all of them.
    """
    flags = []
    images = tf.convert_to_tensor(images, tf.float32)
    labels = tf.convert_to_tensor(labels, tf.int32)
    randomized, zero, saturated = False, 0, 0
    chunks = _chunks(np.arange(int(images.shape[0])), batch_size)
    for chunk in chunks:
        chunk_images, chunk_labels = tf.gather(images, chunk), tf.gather(labels, chunk)
        with tf.GradientTape() as tape:
            tape.watch(chunk_images)
            logits = tf.cast(model_fn(chunk_images), tf.float32)
            loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=chunk_labels,
                                                                  logits=logits)
        gradient = tape.gradient(loss, chunk_images)
        randomized = randomized or (randomized_probe and not np.allclose(
            logits.numpy(), tf.cast(model_fn(chunk_images), tf.float32).numpy(), atol=1e-5))
        flat = np.zeros([chunk.size, 1]) if gradient is None else \
            tf.reshape(gradient, [chunk.size, -1]).numpy()
        zero += int(np.sum(np.all(flat == 0, axis=1)))
        saturated += int(np.sum(tf.reduce_max(tf.nn.softmax(logits), axis=-1).numpy()
                                > SATURATION))
    examples = max(int(images.shape[0]), 1)
    if randomized:
        flags.append(("randomized", "the model's output changes between two passes on the "
                      "same images: attack it with expectation over transformation "
                      "(version='rand')"))
    zero_share = zero / examples
    if zero_share >= FLAG_SHARE:
        flags.append(("zero_gradients", f"{zero_share:.0%} of the examples have an input "
                      "gradient of exactly zero: gradient attacks cannot move them"))
    names = list(broken_per_attack)
    for position, name in enumerate(names):
        earlier_gradient = [n for n in names[:position] if n not in GRADIENT_FREE]
        if name in GRADIENT_FREE and earlier_gradient and broken_per_attack[name] > 0:
            flags.append(("square_after_gradient_attacks",
                          f"{name} (no gradients) broke {broken_per_attack[name]} example(s) "
                          f"that {', '.join(earlier_gradient)} left robust: the gradients "
                          "mislead"))
    saturated_share = saturated / examples
    if saturated_share >= FLAG_SHARE:
        flags.append(("saturated_softmax", f"{saturated_share:.0%} of the examples have a top "
                      f"probability above {SATURATION}: the loss gradient may vanish"))
    return flags
