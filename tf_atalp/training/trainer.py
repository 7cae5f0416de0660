"""`AdversarialTrainer`: a keras.Model whose train_step runs a defense.

It wraps any Keras model whose output is a dict holding the logits (under
`logits_key`) and, for attention pairing, feature maps [N, H, W, C]:

    network = tf_atalp.models.build_resnet(18, num_classes=10, image_size=32)
    trainer = AdversarialTrainer(network, get_defense("at_alp"),
                                 attack=PGDConfig(epsilon=8/255, step_size=2/255, iterations=7))
    trainer.compile(optimizer="adam")
    trainer.fit(dataset, epochs=10)

train_step: PGD examples are made outside the gradient tape (BatchNorm in
inference mode unless the attack config says otherwise), then the defense's
terms are summed, `L = sum_i weight_i * term_i`, and applied. When a defense
needs both the clean and the adversarial pass, both go through the network as
one concatenated batch (one forward, shared BatchNorm statistics).

Metrics: "loss", one per loss term ("ce", "alp", "at", ...), "clean_accuracy"
and "adversarial_accuracy" where the pass is made. test_step reports "loss"
(clean cross-entropy), "clean_accuracy", and "adversarial_accuracy" when an
`eval_attack` is set.
"""

import keras
import tensorflow as tf

from tf_atalp import losses
from tf_atalp.attacks.pgd import PGDConfig, pgd_from_config
from tf_atalp.defenses import Defense, get_defense
from tf_atalp.loss_terms import ADVERSARIAL, CLEAN, LossInputs


def _split_outputs(outputs: dict, sizes) -> tuple[dict, dict]:
    """Splits a dict of batch-concatenated outputs into (first, second)."""
    first, second = {}, {}
    for key, value in outputs.items():
        first[key], second[key] = tf.split(value, sizes, axis=0)
    return first, second


def _as_dict(outputs, logits_key: str) -> dict:
    if isinstance(outputs, dict):
        if logits_key not in outputs:
            raise ValueError(
                f"The network's output dict has no {logits_key!r} entry. "
                f"Received keys: {sorted(outputs)}")
        return dict(outputs)
    return {logits_key: outputs}


class AdversarialTrainer(keras.Model):
    """Trains `network` with a `Defense` (default: the paper's at_alp).

    Args:
      network: a Keras model mapping float images [N, H, W, C] in [0, 1] to a
        dict with `logits_key` ([N, K]) and feature maps, or to logits alone
        (then only defenses without attention pairing apply).
      defense: a `Defense` or a registry name.
      attack: the PGD used to make training examples; required when the
        defense trains adversarially.
      eval_attack: the PGD run in `test_step` (`evaluate`, validation), or
        None for clean metrics only.
      logits_key: the logits' key in the network's output dict.
      attack_jit_compile: compile the PGD loop with XLA.
      seed: makes the training attack's random starts a function of (seed,
        optimizer step, replica), so a resumed run draws what an
        uninterrupted one would; None draws from TensorFlow's global
        generator.
    """

    def __init__(self, network: keras.Model, defense: Defense | str = "at_alp",
                 attack: PGDConfig | None = None, eval_attack: PGDConfig | None = None,
                 logits_key: str = "logits", attack_jit_compile: bool = False,
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(defense, str):
            defense = get_defense(defense)
        if defense.adversarial_training and attack is None:
            raise ValueError(
                f"Defense {defense.name!r} trains on adversarial examples: pass `attack=PGDConfig(...)`.")
        self.network = network
        self.defense = defense
        self.attack = attack
        self.eval_attack = eval_attack
        self.logits_key = logits_key
        self.attack_jit_compile = attack_jit_compile
        self.seed = seed
        self._uses_clean = defense.uses(CLEAN)
        self._uses_adversarial = defense.uses(ADVERSARIAL)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.term_trackers = {t.name: keras.metrics.Mean(name=t.name) for t in defense.loss_terms}
        self.clean_accuracy = keras.metrics.SparseCategoricalAccuracy(name="clean_accuracy")
        self.adversarial_accuracy = keras.metrics.SparseCategoricalAccuracy(
            name="adversarial_accuracy")

    @property
    def metrics(self):
        return [self.loss_tracker, *self.term_trackers.values(), self.clean_accuracy,
                self.adversarial_accuracy]

    def call(self, inputs, training=False):
        """Logits [N, K] of the wrapped network."""
        return self._network_outputs(inputs, training)[self.logits_key]

    def _network_outputs(self, images, training) -> dict:
        return _as_dict(self.network(images, training=training), self.logits_key)

    def make_adversarial(self, images, labels, attack: PGDConfig, seed=None) -> tf.Tensor:
        """PGD examples of a batch, with no gradient path to the weights."""
        return tf.stop_gradient(pgd_from_config(
            self.network, images, labels, attack, seed=seed,
            jit_compile=self.attack_jit_compile))

    def _training_attack_seed(self):
        """int64 [2] stateless seed of this step's attack: (seed, replica), step; or None."""
        if self.seed is None:
            return None
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        return tf.stack([tf.constant(self.seed, tf.int64) * 1024 + tf.cast(replica, tf.int64),
                         tf.cast(self.optimizer.iterations, tf.int64)])

    def _forward_pair(self, images, adversarial, training):
        """(clean outputs or None, adversarial outputs or None) for one batch."""
        if self._uses_clean and self._uses_adversarial:
            batch = tf.shape(images)[0]
            joint = self._network_outputs(tf.concat([images, adversarial], axis=0), training)
            return _split_outputs(joint, [batch, batch])
        if self._uses_clean:
            return self._network_outputs(images, training), None
        return None, self._network_outputs(adversarial, training)

    def train_step(self, data):
        images, labels = data[0], data[1]
        images = tf.cast(images, tf.float32)
        labels = tf.cast(labels, tf.int32)
        adversarial = None
        if self._uses_adversarial:
            adversarial = self.make_adversarial(images, labels, self.attack,
                                                seed=self._training_attack_seed())

        with tf.GradientTape() as tape:
            clean, adv = self._forward_pair(images, adversarial, training=True)
            inputs = LossInputs(labels, clean, adv, self.logits_key)
            term_values = {t.name: t(inputs) for t in self.defense.loss_terms}
            total = tf.add_n([t.weight * term_values[t.name] for t in self.defense.loss_terms])
            # Gradients are summed over replicas, so each replica's loss is scaled down.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled = self.optimizer.scale_loss(total / replicas)

        variables = self.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))

        logs = {"loss": total, **term_values}
        for name, value in logs.items():
            (self.loss_tracker if name == "loss" else self.term_trackers[name]).update_state(value)
        if clean is not None:
            self.clean_accuracy.update_state(labels, clean[self.logits_key])
        if adv is not None:
            self.adversarial_accuracy.update_state(labels, adv[self.logits_key])
        return self._results(["loss", *term_values], clean is not None, adv is not None)

    def test_step(self, data):
        images, labels = data[0], data[1]
        images = tf.cast(images, tf.float32)
        labels = tf.cast(labels, tf.int32)
        logits = self(images, training=False)
        self.loss_tracker.update_state(losses.cross_entropy(labels, logits))
        self.clean_accuracy.update_state(labels, logits)
        if self.eval_attack is not None:
            adversarial = self.make_adversarial(images, labels, self.eval_attack)
            self.adversarial_accuracy.update_state(labels, self(adversarial, training=False))
        return self._results(["loss"], True, self.eval_attack is not None)

    def _results(self, names, clean: bool, adversarial: bool) -> dict:
        trackers = {"loss": self.loss_tracker, **self.term_trackers}
        results = {name: trackers[name].result() for name in names}
        if clean:
            results["clean_accuracy"] = self.clean_accuracy.result()
        if adversarial:
            results["adversarial_accuracy"] = self.adversarial_accuracy.result()
        return results
