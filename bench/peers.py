"""The peers, called as their documentation says, on the same Keras network (bench-only packages).

- cleverhans 4: `cleverhans.tf2.attacks.projected_gradient_descent` (eager
  Python loop; its gradient is a `tf.function`), and the same wrapped in a
  `tf.function` by the user (the loop unrolled into one graph).
- ART 1.20: `ProjectedGradientDescent` on a `TensorFlowV2Classifier`
  (numpy in, numpy out, eager gradients) and `AdversarialTrainerMadryPGD`.

Each peer is imported only when asked for, so the comparisons can say
"skipped: <package> not installed" in the project's own environment.
"""

import functools

import keras
import numpy as np
import tensorflow as tf

CLEVERHANS = "cleverhans"
ART = "art"
PACKAGE_NAMES = {CLEVERHANS: "cleverhans", ART: "adversarial-robustness-toolbox"}


def cleverhans_pgd(logits_model, epsilon, step_size, iterations, compiled: bool = False):
    """images, labels -> adversarial images by cleverhans' PGD (random start, CE on labels)."""
    from cleverhans.tf2.attacks.projected_gradient_descent import projected_gradient_descent

    def model_fn(images):
        return logits_model(images, training=False)

    def attack(images, labels):
        return projected_gradient_descent(
            model_fn, images, epsilon, step_size, iterations, np.inf, clip_min=0.0,
            clip_max=1.0, y=labels, rand_init=True, rand_minmax=epsilon, sanity_checks=False)

    return tf.function(attack) if compiled else attack


def art_classifier(logits_model, num_classes, image_size, optimizer=None):
    """ART's `TensorFlowV2Classifier` around the logits model (pixels in [0, 1])."""
    from art.estimators.classification import TensorFlowV2Classifier

    return TensorFlowV2Classifier(
        model=logits_model, nb_classes=num_classes, input_shape=(image_size, image_size, 3),
        loss_object=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=optimizer, clip_values=(0.0, 1.0))


def art_pgd(classifier, epsilon, step_size, iterations, batch_size):
    """numpy images, labels -> adversarial images by ART's PGD (one random start)."""
    from art.attacks.evasion import ProjectedGradientDescent

    attack = ProjectedGradientDescent(
        classifier, norm=np.inf, eps=epsilon, eps_step=step_size, max_iter=iterations,
        num_random_init=1, batch_size=batch_size, verbose=False)

    def run(images, labels):
        labels = np.asarray(labels)
        one_hot = np.eye(classifier.nb_classes, dtype=np.float32)[labels]
        return attack.generate(np.asarray(images), y=one_hot)

    return run


def art_madry_trainer(classifier, epsilon, step_size, iterations, batch_size):
    """ART's `AdversarialTrainerMadryPGD` for one epoch per `fit`."""
    import tqdm.auto
    from art.defences.trainer import AdversarialTrainerMadryPGD
    from art.defences.trainer import adversarial_trainer

    # Its training loop draws tqdm bars whatever `verbose` says; they would break the table.
    adversarial_trainer.trange = functools.partial(tqdm.auto.trange, disable=True)
    adversarial_trainer.tqdm = functools.partial(tqdm.auto.tqdm, disable=True)

    trainer = AdversarialTrainerMadryPGD(
        classifier, nb_epochs=1, batch_size=batch_size, eps=epsilon, eps_step=step_size,
        max_iter=iterations, num_random_init=1)

    def fit(images, labels):
        one_hot = np.eye(classifier.nb_classes, dtype=np.float32)[np.asarray(labels)]
        trainer.fit(np.asarray(images), one_hot)

    return fit
