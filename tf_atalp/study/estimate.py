"""A study's time, estimated before it starts from steps measured on this machine.

Two costs are measured, each on the study's own networks and batch sizes:
- one training step of each entry still to train (its defense, attack and
  precision, as train_main runs it), timed over a few steps after tracing;
- one forward + input-gradient pass of each network to attack, on an
  evaluation batch: the unit of every PGD, APGD and FAB step.
Cell estimates multiply these by the work of the cell (steps, iterations,
batches); what attacks do on their own (stop on broken images, run later
attacks on fewer images) is guessed with the shares below, so the estimate
is rough, and the runner replaces it with measured seconds as cells finish.
"""

import math
import time

import keras
import numpy as np
import tensorflow as tf

from tf_atalp.attacks.model_fns import inference_logits
from tf_atalp.attacks.pgd import PGD
from tf_atalp.training.precision import resolve_precision
from tf_atalp.training.run import build_network, make_optimizer
from tf_atalp.training.trainer import AdversarialTrainer

TIMED_STEPS = 3
START_SECONDS = 25.0  # a train_main process: imports, data scan, model build, tracing
# Share of images still attacked, on average over a run, once broken ones are dropped
# (white-box PGD) or left out by later attacks (AutoAttack): at the training radius about
# the robust share; far beyond it almost none.
ALIVE_AT_TRAINING_RADIUS = 0.3
ALIVE_BEYOND = 0.05
FORWARD_SHARE = 0.5  # a forward pass costs about half a forward + input-gradient pass
ATTACK_START_SECONDS = 3.0  # tracing one attack's compiled loop (per attack and epsilon)


def _median_seconds(function, repeats: int = TIMED_STEPS) -> float:
    function()  # traces
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def measure_train_step(run_config, steps_per_epoch: int) -> float:
    """Seconds of one training step of `run_config` on random images (its precision)."""
    precision = resolve_precision(run_config.train.mixed_precision, run_config.train.strategy)
    keras.mixed_precision.set_global_policy(precision.policy)
    try:
        network = build_network(run_config)
        trainer = AdversarialTrainer(network, run_config.defense, attack=run_config.attack,
                                     seed=run_config.train.seed)
        trainer.compile(optimizer=make_optimizer(run_config, steps_per_epoch),
                        jit_compile=run_config.train.jit_compile)
        size, batch = run_config.model.image_size, run_config.data.batch_size
        rng = np.random.default_rng(0)
        images = tf.constant(rng.random((batch, size, size, 3)), tf.float32)
        labels = tf.constant(rng.integers(0, run_config.model.num_classes, batch), tf.int32)
        return _median_seconds(lambda: trainer.train_on_batch(images, labels))
    finally:
        keras.mixed_precision.set_global_policy("float32")
        keras.backend.clear_session()


def measure_gradient_pass(run_config, batch_size: int) -> float:
    """Seconds of one forward + input-gradient pass of `run_config`'s network (float32)."""
    try:
        network = build_network(run_config)
        size = run_config.model.image_size
        rng = np.random.default_rng(0)
        images = tf.constant(rng.random((batch_size, size, size, 3)), tf.float32)
        labels = tf.constant(rng.integers(0, run_config.model.num_classes, batch_size), tf.int32)
        attack = PGD(epsilon=0.03, step_size=0.01, iterations=1, random_start=False)
        model_fn = inference_logits(network)
        return _median_seconds(lambda: attack.attack(model_fn, images, labels, seed=0))
    finally:
        keras.backend.clear_session()


def training_seconds(run_config, steps_per_epoch: int, step: float, gradient_pass: float,
                     evaluation_batch: int = 64) -> float:
    """A train_main run: its steps, plus the RobustAccuracy PGD (every n epochs and the
    last), plus start-up."""
    train = run_config.train
    epochs = train.epochs
    watching = 0.0
    if run_config.robust_accuracy_attack is not None and train.robust_accuracy_every:
        batches = math.ceil(train.robust_accuracy_examples / evaluation_batch)
        measured = math.ceil(epochs / train.robust_accuracy_every)  # and the last epoch
        watching = measured * batches * train.robust_accuracy_iterations * gradient_pass
    return START_SECONDS + epochs * steps_per_epoch * step + watching


def _alive(epsilon: float, training_epsilon: float) -> float:
    return ALIVE_AT_TRAINING_RADIUS if epsilon <= training_epsilon * 1.01 else ALIVE_BEYOND


def white_box_seconds(batches: int, gradient_pass: float, epsilons, training_epsilon: float,
                      run_lengths, eot: int = 1) -> float:
    """The protocol's white-box cells of one target (dropping broken images) and its FGSM."""
    steps = sum(length * _alive(e, training_epsilon) for e in epsilons for length in run_lengths)
    return (steps + len(epsilons)) * batches * gradient_pass * eot


def transfer_seconds(batches: int, gradient_pass: float, epsilons, run_lengths,
                     scored_counts: int, targets: int, crafted: bool = True) -> float:
    """One source's transfer cells: full runs on the source (unless `crafted` is False: its
    iterates are cached), each scored iterate on each target."""
    crafting = sum(run_lengths) * len(epsilons) * batches * gradient_pass * crafted
    scoring = scored_counts * len(epsilons) * batches * targets * gradient_pass * FORWARD_SHARE
    return crafting + scoring


def autoattack_seconds(batches: int, gradient_pass: float, epsilons, training_epsilon: float,
                       iterations: int = 100, targets: int = 9, queries: int = 5000,
                       eot: int = 1) -> float:
    """AutoAttack on one target. Standard (eot 1): APGD-CE on all images, then APGD-T, FAB-T
    and Square on the rest; rand (eot > 1): APGD-CE and APGD-DLR through EoT."""
    total = 4 * ATTACK_START_SECONDS * len(epsilons)
    for epsilon in epsilons:
        alive = _alive(epsilon, training_epsilon)
        if eot > 1:
            passes = (iterations + alive * iterations) * eot
        else:
            passes = iterations + alive * (targets * iterations * 3) + \
                alive * queries * FORWARD_SHARE
        total += passes * batches * gradient_pass
    return total


def format_seconds(seconds: float) -> str:
    """"2 h 05 min", "14 min", "40 s"."""
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"
