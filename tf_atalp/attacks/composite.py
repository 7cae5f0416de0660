"""Attacks made of attacks: restarts, and the worst case per example over several attacks.

An example counts as robust only if it survives every restart and every
attack (as AutoAttack scores its ensemble). Both wrappers are `Attack`s:

    Restarts(PGD(0.25, 1 / 256, 200), 5)
    WorstCase([PGD(0.25, 1 / 256, 200), PGD(0.25, 1 / 256, 200, objective="margin")])

With `record_at`, every run attacks every example and iterate k counts as
correct only if it is correct in every run (restart or member): the callers
that score every iterate (`evaluate_robustness`) need all of them. Without
it, each run attacks only the examples no earlier run fooled (as the
reference AutoAttack restarts only the points still robust), and each
example keeps the adversarial images of the first run that fooled
`model_fn` (else the last run's): the same outcome per example as attacking
all of them every time, for the cost of the survivors only.
"""

from collections.abc import Sequence

import keras
import tensorflow as tf

from tf_atalp.attacks.base import AttackResult, correct_predictions
from tf_atalp.seeds import derive_seed


def restart_seed(seed, restart: int):
    """The seed of restart `restart`: the seed itself for restart 0, else one derived from it.

    So `Restarts(attack, 1)` draws exactly what `attack` draws. None stays None
    (fresh draws); an int gives an int, an int [2] tensor a [2] tensor.
    """
    if seed is None or restart == 0:
        return seed
    if isinstance(seed, int):
        return derive_seed(seed, "restart", restart)
    return tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), restart)


def _fooled(model_fn, images, labels, targeted, target_labels):
    """bool [N]: `images` fool `model_fn` (untargeted: wrong label; targeted: the target)."""
    logits = model_fn(images)
    if targeted:
        return correct_predictions(logits, target_labels)
    return tf.logical_not(correct_predictions(logits, labels))


def _combine(runs: list[AttackResult], fooled: list[tf.Tensor]) -> AttackResult:
    """One result: per example the first fooling run's images; iterates correct in every run."""
    chosen = runs[-1].adversarial_images
    for result, run_fooled in reversed(list(zip(runs[:-1], fooled[:-1]))):
        chosen = tf.where(run_fooled[:, None, None, None], result.adversarial_images, chosen)
    if runs[0].correct_at is None:
        return AttackResult(chosen)
    correct_at = runs[0].correct_at
    for result in runs[1:]:
        correct_at = tf.logical_and(correct_at, result.correct_at)
    return AttackResult(chosen, runs[0].record_at, correct_at)


def _run_all(attacks_and_seeds, model_fn, images, labels, record_at, target_labels):
    """Every run on every example; the result combines them (`_combine`)."""
    runs, fooled = [], []
    targeted = target_labels is not None
    for attack, seed in attacks_and_seeds:
        kwargs = {"target_labels": target_labels} if targeted else {}
        result = attack.attack(model_fn, images, labels, seed=seed, record_at=record_at,
                               **kwargs)
        runs.append(result)
        fooled.append(_fooled(model_fn, result.adversarial_images, labels, targeted,
                              target_labels))
    return _combine(runs, fooled)


def _run_on_survivors(attacks_and_seeds, model_fn, images, labels, target_labels):
    """Each run only on the examples no earlier run fooled; per example the first fooling
    run's images (else the last run's)."""
    images = tf.convert_to_tensor(images)
    labels = tf.convert_to_tensor(labels)
    targeted = target_labels is not None
    chosen = None
    alive = tf.range(tf.shape(labels)[0])  # int32 [A]: the examples not fooled yet
    for attack, seed in attacks_and_seeds:
        if chosen is not None and tf.executing_eagerly() and int(tf.size(alive)) == 0:
            break  # (in a graph the remaining runs get empty batches)
        run_labels = tf.gather(labels, alive)
        run_targets = None if not targeted else tf.gather(target_labels, alive)
        kwargs = {"target_labels": run_targets} if targeted else {}
        found = attack.attack(model_fn, tf.gather(images, alive), run_labels, seed=seed,
                              **kwargs).adversarial_images
        chosen = found if chosen is None else tf.tensor_scatter_nd_update(
            chosen, alive[:, None], tf.cast(found, chosen.dtype))
        fooled = _fooled(model_fn, found, run_labels, targeted, run_targets)
        alive = tf.boolean_mask(alive, tf.logical_not(fooled))
    return AttackResult(chosen)


def _run(attacks_and_seeds, model_fn, images, labels, record_at, target_labels):
    """`_run_all` with `record_at` (every example's iterates), else `_run_on_survivors`."""
    if record_at is None:
        return _run_on_survivors(attacks_and_seeds, model_fn, images, labels, target_labels)
    return _run_all(attacks_and_seeds, model_fn, images, labels, record_at, target_labels)


@keras.saving.register_keras_serializable(package="tf_atalp")
class Restarts:
    """`attack` run `restarts` times from independent random starts; worst case per example.

    Restart 0 uses the given seed, restart r > 0 a seed derived from (seed, r).
    Without `record_at`, restart r attacks only the examples restarts 0..r-1
    left unfooled (module docstring).
    """

    def __init__(self, attack, restarts: int):
        if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 1:
            raise ValueError(f"`restarts` must be an int >= 1. Received: restarts={restarts!r}")
        if restarts > 1 and not attack.describe().get("random_start", True):
            raise ValueError(
                "`restarts` > 1 needs `random_start=True` (every restart would be the same). "
                f"Received: restarts={restarts}, random_start=False")
        self.inner = attack
        self.restarts = restarts

    def attack(self, model_fn, images, labels, *, seed=None, record_at=None,
               target_labels=None) -> AttackResult:
        kwargs = {} if target_labels is None else {"target_labels": target_labels}
        if self.restarts == 1:
            return self.inner.attack(model_fn, images, labels, seed=seed, record_at=record_at,
                                     **kwargs)
        return _run([(self.inner, restart_seed(seed, r)) for r in range(self.restarts)],
                    model_fn, images, labels, record_at, target_labels)

    def describe(self) -> dict:
        return {**self.inner.describe(), "restarts": self.restarts}

    def get_config(self) -> dict:
        return {"attack": keras.saving.serialize_keras_object(self.inner),
                "restarts": self.restarts}

    @classmethod
    def from_config(cls, config: dict) -> "Restarts":
        return cls(keras.saving.deserialize_keras_object(config["attack"]), config["restarts"])


@keras.saving.register_keras_serializable(package="tf_atalp")
class WorstCase:
    """Several attacks on the same examples; an example is robust only if it survives all.

    Every member gets the same seed (each draws from its own settings).
    Without `record_at`, each member attacks only the examples the earlier
    ones left unfooled (module docstring).
    """

    def __init__(self, attacks: Sequence):
        attacks = list(attacks)
        if not attacks:
            raise ValueError("`attacks` must be a non-empty list of attacks. Received: []")
        self.attacks = attacks

    def attack(self, model_fn, images, labels, *, seed=None, record_at=None,
               target_labels=None) -> AttackResult:
        return _run([(attack, seed) for attack in self.attacks], model_fn, images, labels,
                    record_at, target_labels)

    def describe(self) -> dict:
        members = [attack.describe() for attack in self.attacks]
        shared = {key: value for key, value in members[0].items()
                  if all(member.get(key) == value for member in members)}
        return {**shared, "attack": "worst_case", "attacks": members}

    def get_config(self) -> dict:
        return {"attacks": [keras.saving.serialize_keras_object(a) for a in self.attacks]}

    @classmethod
    def from_config(cls, config: dict) -> "WorstCase":
        return cls([keras.saving.deserialize_keras_object(a) for a in config["attacks"]])
