"""`AdversarialTrainer`: a keras.Model whose train_step runs a defense.

It wraps any Keras model whose output is the logits or a dict of roles
(`tf_atalp.models.outputs`: "logits", "features", ...); for attention
pairing, tap feature maps with `with_feature_outputs`:

    network = tf_atalp.models.build_resnet(18, num_classes=10, image_size=32)
    trainer = AdversarialTrainer(network, get_defense("at_alp"),
                                 attack=PGD(epsilon=8/255, step_size=2/255, iterations=7))
    trainer.compile(optimizer="adam", metrics=["sparse_categorical_accuracy"])
    trainer.fit(dataset, epochs=10)

train_step crafts the adversarial batch outside the gradient tape (the
attack gets the network as a model function, BatchNorm in inference mode
unless `attack_batchnorm_training`), runs the passes the defense's terms
need (clean and adversarial as one concatenated batch when both are needed:
one forward, shared BatchNorm statistics), and hands over to Keras:
`compute_loss` sums the defense's weighted terms, `L = sum_i weight_i *
term_i`, scaled for the replicas; loss scaling (mixed precision) and
`compile(metrics=...)` are Keras', the "loss" tracker is the trainer's own
(`loss_tracker`, in place of Keras' in `metrics`), as the trackers of
keras/src/distillation/distiller.py are: only Keras' public API is used,
except `_maybe_symbolic_build` (keras-team/keras#20585, below).

The defense chooses the step strategy, not a branch of train_step: the
attack it runs (`defense.training_attack(attack)`: TRADES' KL objective,
Fast-AT's single FGSM step), Free-AT's replays (`defense.free_replays()`:
m updates on each minibatch, each one forward and backward pass whose input
gradient moves the perturbation for the next; no attack), and AWP
(`defense.weight_perturbation()`: the weights perturbed towards a higher
loss before the update and restored after it, BatchNorm statistics
untouched by the perturbing pass).

Metrics: "loss", one per loss term ("ce", "alp", "at", ...),
"clean_accuracy" and "adversarial_accuracy" where that pass is made, and the
compiled metrics, which see the logits of the examples trained on
(adversarial ones when the defense trains adversarially, clean ones
otherwise). test_step reports "loss" (clean cross-entropy),
"clean_accuracy", the compiled metrics on clean logits, and
"adversarial_accuracy" when an `eval_attack` is set.
"""

import keras
import tensorflow as tf

from tf_atalp import losses
from tf_atalp.attacks.base import for_xla
from tf_atalp.attacks.model_fns import inference_logits, training_logits
from tf_atalp.attacks.pgd import linf_project, linf_step
from tf_atalp.defenses.base import Defense
from tf_atalp.defenses.registry import defense_config, defense_from_config, get_defense
from tf_atalp.defenses.terms import ADVERSARIAL, CLEAN, LossInputs
from tf_atalp.defenses.weight_perturbation import perturbed_weights, relative_perturbation
from tf_atalp.models.outputs import as_roles, logits_of


def _split_outputs(outputs: dict, sizes) -> tuple[dict, dict]:
    """Splits a (nested) dict of batch-concatenated outputs into (first, second)."""
    pairs = [tf.split(value, sizes, axis=0) for value in tf.nest.flatten(outputs)]
    return (tf.nest.pack_sequence_as(outputs, [pair[0] for pair in pairs]),
            tf.nest.pack_sequence_as(outputs, [pair[1] for pair in pairs]))


def _replicas() -> int:
    return tf.distribute.get_strategy().num_replicas_in_sync


def _sum_over_replicas(gradients: list) -> list:
    """The gradients summed over the replicas (None stays None; no-op on one replica)."""
    present = [index for index, gradient in enumerate(gradients) if gradient is not None]
    context = tf.distribute.get_replica_context()
    if context is None or not present or _replicas() == 1:
        return list(gradients)
    reduced = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                 [gradients[index] for index in present])
    summed = list(gradients)
    for index, gradient in zip(present, reduced):
        summed[index] = gradient
    return summed


@keras.saving.register_keras_serializable(package="tf_atalp")
class AdversarialTrainer(keras.Model):
    """Trains `network` with a `Defense` (default: the paper's at_alp).

    Args:
      network: a Keras model mapping float images [N, H, W, C] in [0, 1] to
        logits [N, K] or a dict of roles holding them (then only defenses
        without attention pairing apply to logits alone).
      defense: a `Defense` or a registry name.
      attack: the `Attack` (e.g. `PGD`) from which the defense makes its
        training attack (`defense.training_attack(attack)`); required when
        the defense trains adversarially.
      eval_attack: the attack run in `test_step` (`evaluate`, validation), or
        None for clean metrics only.
      attack_batchnorm_training: craft training examples with BatchNorm in
        training mode (batch statistics); inference mode by default.
      seed: makes the training attack's random starts a function of (seed,
        optimizer step, replica), so a resumed run draws what an
        uninterrupted one would; None draws from TensorFlow's global
        generator.
    """

    def __init__(self, network: keras.Model, defense: Defense | str = "at_alp",
                 attack=None, eval_attack=None, attack_batchnorm_training: bool = False,
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(defense, str):
            defense = get_defense(defense)
        if defense.adversarial_training and attack is None:
            raise ValueError(
                f"Defense {defense.name!r} trains on adversarial examples: pass "
                "`attack=PGD(...)` (or another Attack).")
        self.network = network
        self.defense = defense
        self.attack = attack
        self.eval_attack = eval_attack
        self.attack_batchnorm_training = bool(attack_batchnorm_training)
        self.seed = seed
        self._training_attack = None if attack is None else defense.training_attack(attack)
        self._free_replays = defense.free_replays()
        self._awp_gamma = defense.weight_perturbation()
        if self._free_replays and not hasattr(attack, "epsilon"):
            raise ValueError(f"Defense {defense.name!r} moves its perturbation by the attack's "
                             "epsilon: pass an attack with one (PGD).")
        self._terms = defense.loss_terms()
        self._uses_clean = defense.uses(CLEAN)
        self._uses_adversarial = defense.uses(ADVERSARIAL)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.term_trackers = {t.name: keras.metrics.Mean(name=t.name) for t in self._terms}
        self.clean_accuracy = keras.metrics.SparseCategoricalAccuracy(name="clean_accuracy")
        self.adversarial_accuracy = keras.metrics.SparseCategoricalAccuracy(
            name="adversarial_accuracy")
        self.built = network.built  # no weights of its own: built when the network is

    def call(self, inputs, training=False):
        """Logits [N, K] of the wrapped network."""
        return logits_of(self.network(inputs, training=training))

    def _network_outputs(self, images, training) -> dict:
        return as_roles(self.network(images, training=training))

    def make_adversarial(self, images, labels, attack, seed=None, training=False) -> tf.Tensor:
        """Adversarial examples of a batch, with no gradient path to the weights.

        In a step compiled with XLA (`compile(jit_compile=True)`) the attack's
        loop is unrolled (`attacks.for_xla`).
        """
        if getattr(self, "jit_compile", False) is True:
            attack = for_xla(attack)
        model_fn = training_logits(self.network) if training else inference_logits(self.network)
        return tf.stop_gradient(attack.attack(model_fn, images, labels, seed=seed)
                                .adversarial_images)

    def _step_seed(self):
        """int64 [2] stateless seed of this update: (seed, replica), optimizer step; or None."""
        if self.seed is None:
            return None
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        return tf.stack([tf.constant(self.seed, tf.int64) * 1024 + tf.cast(replica, tf.int64),
                         tf.cast(self.optimizer.iterations, tf.int64)])

    def _forward_pair(self, images, adversarial, training) -> dict:
        """{CLEAN: outputs or None, ADVERSARIAL: outputs or None} for one batch."""
        if self._uses_clean and self._uses_adversarial:
            batch = tf.shape(images)[0]
            joint = self._network_outputs(tf.concat([images, adversarial], axis=0), training)
            clean, adv = _split_outputs(joint, [batch, batch])
            return {CLEAN: clean, ADVERSARIAL: adv}
        if self._uses_clean:
            return {CLEAN: self._network_outputs(images, training), ADVERSARIAL: None}
        return {CLEAN: None, ADVERSARIAL: self._network_outputs(adversarial, training)}

    def _defense_loss(self, x, y, y_pred, training) -> tuple[tf.Tensor, dict]:
        """(sum of the weighted terms, {term name: value}) for one batch; updates nothing."""
        inputs = LossInputs(
            labels=y, clean=y_pred[CLEAN], adversarial=y_pred[ADVERSARIAL], images=x[CLEAN],
            adversarial_images=x[ADVERSARIAL],
            network=lambda images: self._network_outputs(images, training),
            epsilon=getattr(self._training_attack, "epsilon", None), seed=self._step_seed())
        values = {term.name: term(inputs) for term in self._terms}
        return tf.add_n([term.weight * values[term.name] for term in self._terms]), values

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The defense's loss: sum of weighted terms, scaled for the replicas.

        x: {CLEAN: images, ADVERSARIAL: images or None}; y: int labels [N];
        y_pred: `_forward_pair`'s outputs. Updates the per-term trackers.
        """
        if sample_weight is not None:
            raise ValueError("AdversarialTrainer does not support sample weights "
                             "(nor class_weight).")
        total, values = self._defense_loss(x, y, y_pred, training)
        for name, value in values.items():
            self.term_trackers[name].update_state(value)
        # Gradients are summed over replicas, so each replica's loss is scaled down.
        return total / _replicas()

    def train_step(self, data):
        images, labels = data[0], data[1]
        sample_weight = data[2] if len(data) > 2 else None
        images = tf.cast(images, tf.float32)
        labels = tf.cast(labels, tf.int32)
        if self._free_replays:
            # Free-AT: the perturbation starts at 0 and each replay's input gradient moves it.
            epsilon = tf.constant(self._training_attack.epsilon, tf.float32)
            adversarial = images
            for _ in range(self._free_replays):
                outputs, input_gradient = self._update(images, adversarial, labels,
                                                       sample_weight, watch_adversarial=True)
                adversarial = tf.stop_gradient(linf_project(
                    linf_step(adversarial, input_gradient, epsilon), images, epsilon))
        else:
            adversarial = None
            if self._uses_adversarial:
                adversarial = self.make_adversarial(images, labels, self._training_attack,
                                                    seed=self._step_seed(),
                                                    training=self.attack_batchnorm_training)
            outputs, _ = self._update(images, adversarial, labels, sample_weight)
        trained_on = outputs[ADVERSARIAL] if self.defense.adversarial_training else outputs[CLEAN]
        results = self.compute_metrics({CLEAN: images, ADVERSARIAL: adversarial}, labels,
                                       logits_of(trained_on))
        return self._select(results, terms=True, clean=outputs[CLEAN] is not None,
                            adversarial=outputs[ADVERSARIAL] is not None)

    def _update(self, images, adversarial, labels, sample_weight, watch_adversarial=False):
        """One optimizer update on the batch (under AWP, at the perturbed weights).

        Returns the outputs of the passes and, with `watch_adversarial`, the
        gradient of the (scaled) loss with respect to the adversarial images.
        Updates the loss, term and accuracy trackers.
        """
        x = {CLEAN: images, ADVERSARIAL: adversarial}
        perturbation = self._perturb_weights(x, labels) if self._awp_gamma else None
        with tf.GradientTape() as tape:
            if watch_adversarial:
                tape.watch(adversarial)
            outputs = self._forward_pair(images, adversarial, training=True)
            loss = self.compute_loss(x=x, y=labels, y_pred=outputs, sample_weight=sample_weight,
                                     training=True)
            self.loss_tracker.update_state(loss * _replicas(),
                                            sample_weight=tf.shape(images)[0])
            scaled = self.optimizer.scale_loss(loss)
        variables = self.trainable_variables
        sources = variables + [adversarial] if watch_adversarial else variables
        gradients = tape.gradient(scaled, sources)
        self.optimizer.apply_gradients(zip(gradients[:len(variables)], variables))
        if perturbation is not None:
            self._remove_weight_perturbation(*perturbation)
        if outputs[CLEAN] is not None:
            self.clean_accuracy.update_state(labels, logits_of(outputs[CLEAN]))
        if outputs[ADVERSARIAL] is not None:
            self.adversarial_accuracy.update_state(labels, logits_of(outputs[ADVERSARIAL]))
        return outputs, gradients[-1] if watch_adversarial else None

    def _perturb_weights(self, x, labels) -> tuple[list, list, list]:
        """AWP: moves the kernels to w + v, v the ascent step of the defense's loss.

        The loss is taken with the network in training mode; the BatchNorm
        statistics (every non-trainable variable) are put back afterwards.
        Returns (kernels, their values w, the perturbed values w + v).
        """
        kernels = perturbed_weights(self.network.trainable_variables)
        statistics = self.network.non_trainable_variables
        saved_statistics = [tf.identity(variable) for variable in statistics]
        with tf.GradientTape() as tape:
            outputs = self._forward_pair(x[CLEAN], x[ADVERSARIAL], training=True)
            loss, _ = self._defense_loss(x, labels, outputs, training=True)
        gradients = _sum_over_replicas(tape.gradient(loss, kernels))
        for variable, value in zip(statistics, saved_statistics):
            variable.assign(value)
        saved = [tf.identity(kernel) for kernel in kernels]
        perturbed = [value + step for value, step in
                     zip(saved, relative_perturbation(saved, gradients, self._awp_gamma))]
        for kernel, value in zip(kernels, perturbed):
            kernel.assign(value)
        return kernels, saved, perturbed

    @staticmethod
    def _remove_weight_perturbation(kernels, saved, perturbed) -> None:
        """w + (the update's change of w + v): exactly w when the update changed nothing."""
        for kernel, value, at_perturbed in zip(kernels, saved, perturbed):
            kernel.assign(value + (tf.convert_to_tensor(kernel) - at_perturbed))

    def test_step(self, data):
        images, labels = data[0], data[1]
        images = tf.cast(images, tf.float32)
        labels = tf.cast(labels, tf.int32)
        logits = self(images, training=False)
        self.loss_tracker.update_state(losses.cross_entropy(labels, logits),
                                        sample_weight=tf.shape(images)[0])
        self.clean_accuracy.update_state(labels, logits)
        if self.eval_attack is not None:
            adversarial = self.make_adversarial(images, labels, self.eval_attack)
            self.adversarial_accuracy.update_state(labels, self(adversarial, training=False))
        results = self.compute_metrics(images, labels, logits)
        return self._select(results, terms=False, clean=True,
                            adversarial=self.eval_attack is not None)

    @property
    def metrics(self) -> list:
        """Keras' metrics, with `loss_tracker` first in place of Keras' own "loss" tracker."""
        return [self.loss_tracker] + [metric for metric in super().metrics
                                      if metric.name != self.loss_tracker.name]

    def _select(self, results: dict, *, terms: bool, clean: bool, adversarial: bool) -> dict:
        """The metric results that this step measured (others are left out of the logs)."""
        left_out = set() if terms else set(self.term_trackers)
        if not clean:
            left_out.add(self.clean_accuracy.name)
        if not adversarial:
            left_out.add(self.adversarial_accuracy.name)
        results = {name: value for name, value in results.items() if name not in left_out}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras 3 averages step results over workers along axis 0, which a scalar lacks.
            results = {name: tf.reshape(value, [1]) for name, value in results.items()}
        return results

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Keras' symbolic build, from this worker's first replica batch.

        Keras 3 averages a distributed batch with `strategy.reduce`, which
        MultiWorkerMirroredStrategy cannot do eagerly, so `fit` fails under it
        (keras-team/keras#20585); tests/training_multi_worker_test.py runs two
        workers through this.
        """
        strategy = self._distribute_strategy
        if iterator is not None and strategy is not None:
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(
                    lambda value: (strategy.experimental_local_results(value)[0]
                                   if isinstance(value, tf.distribute.DistributedValues)
                                   else value), next(batches))
                break
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def get_config(self) -> dict:
        serialize = keras.saving.serialize_keras_object
        return {**super().get_config(),
                "network": serialize(self.network),
                "defense": defense_config(self.defense),
                "attack": None if self.attack is None else serialize(self.attack),
                "eval_attack": None if self.eval_attack is None else serialize(self.eval_attack),
                "attack_batchnorm_training": self.attack_batchnorm_training,
                "seed": self.seed}

    @classmethod
    def from_config(cls, config: dict) -> "AdversarialTrainer":
        config = dict(config)
        deserialize = keras.saving.deserialize_keras_object
        network = deserialize(config.pop("network"))
        defense = defense_from_config(config.pop("defense"))
        attack, eval_attack = (None if config.get(key) is None else deserialize(config[key])
                               for key in ("attack", "eval_attack"))
        config.pop("attack", None)
        config.pop("eval_attack", None)
        return cls(network, defense, attack=attack, eval_attack=eval_attack, **config)
