"""L-inf projected gradient descent (Madry et al.) and FGSM.

Composed from small parts, as in the deepmind adversarial-robustness code:
`random_start` (initialise), an objective (`cross_entropy_objective`,
`margin_objective`), `linf_step` (step) and `linf_project` (project onto the
epsilon-ball intersected with [0, 1]). Images are float in [0, 1] and epsilon
and step size are in the same pixel units (0.25 = 64/256).

Cost: `iterations` x (forward + input gradient); with a trace asked for
(`record_at`), one more forward pass scores the final iterate.
"""

import dataclasses
from collections.abc import Callable, Sequence

import tensorflow as tf

OBJECTIVES = ("cross_entropy", "margin")


@dataclasses.dataclass(frozen=True)
class PGDConfig:
    """An L-inf PGD attack.

    Attributes:
      epsilon: radius of the L-inf ball, pixel units in [0, 1].
      step_size: size of one signed-gradient step, pixel units.
      iterations: number of steps (>= 0; 0 returns the start point).
      random_start: start uniformly in the epsilon-ball (Madry) or at the image.
      objective: "cross_entropy" or "margin" (Carlini-Wagner: best other logit
        minus true logit).
      targeted: move towards `target_labels` instead of away from the labels.
      training: run the model in training mode (BatchNorm batch statistics)
        during the attack; inference mode by default.
      restarts: independent random starts; an example counts as robust only
        if it survives all of them (evaluation only).
    """

    epsilon: float
    step_size: float
    iterations: int
    random_start: bool = True
    objective: str = "cross_entropy"
    targeted: bool = False
    training: bool = False
    restarts: int = 1

    def __post_init__(self):
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"`epsilon` must be in [0, 1]. Received: epsilon={self.epsilon}")
        if not 0.0 < self.step_size <= 1.0:
            raise ValueError(
                f"`step_size` must be in (0, 1]. Received: step_size={self.step_size}")
        if self.iterations < 0:
            raise ValueError(
                f"`iterations` must be >= 0. Received: iterations={self.iterations}")
        if self.objective not in OBJECTIVES:
            raise ValueError(
                f"`objective` must be one of {OBJECTIVES}. Received: objective={self.objective!r}")
        if self.restarts < 1:
            raise ValueError(f"`restarts` must be >= 1. Received: restarts={self.restarts}")
        if self.restarts > 1 and not self.random_start:
            raise ValueError(
                "`restarts` > 1 needs `random_start=True` (every restart would be the same). "
                f"Received: restarts={self.restarts}, random_start=False")

    def describe(self) -> dict:
        """The attack's parameters as a JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class PGDTrace:
    """What one PGD run saw along the way.

    Attributes:
      adversarial_images: float32 [N, H, W, C], the last iterate.
      record_at: int32 [R], the iteration counts that were scored.
      correct_at: bool [R, N], whether iterate `record_at[r]` was classified
        correctly (iterate 0 is the start point).
      ever_misclassified: bool [N], whether any iterate 0..iterations was
        misclassified.
    """

    adversarial_images: tf.Tensor
    record_at: tf.Tensor
    correct_at: tf.Tensor
    ever_misclassified: tf.Tensor


def model_logits(model: Callable, images: tf.Tensor, training: bool = False) -> tf.Tensor:
    """float32 [N, K] logits of a model returning logits or a dict with "logits"."""
    outputs = model(images, training=training)
    if isinstance(outputs, dict):
        if "logits" not in outputs:
            raise ValueError(
                "A model returning a dict must have a 'logits' entry. "
                f"Received keys: {sorted(outputs)}")
        outputs = outputs["logits"]
    return tf.cast(outputs, tf.float32)


def cross_entropy_objective(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Per-example cross-entropy, float32 [N]; larger means more wrong."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def margin_objective(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Per-example CW margin max_{j != y} z_j - z_y, float32 [N]; > 0 means wrong."""
    classes = tf.range(tf.shape(logits)[-1], dtype=labels.dtype)
    true_mask = tf.equal(classes[None, :], labels[:, None])
    true_logit = tf.reduce_max(tf.where(true_mask, logits, -float("inf")), axis=-1)
    best_other = tf.reduce_max(tf.where(true_mask, -float("inf"), logits), axis=-1)
    return best_other - true_logit


def get_objective(name: str) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    if name == "cross_entropy":
        return cross_entropy_objective
    if name == "margin":
        return margin_objective
    raise ValueError(f"`objective` must be one of {OBJECTIVES}. Received: objective={name!r}")


def linf_project(images: tf.Tensor, clean_images: tf.Tensor, epsilon) -> tf.Tensor:
    """Projects onto {x : |x - clean|_inf <= epsilon} intersected with [0, 1]."""
    images = tf.clip_by_value(images, clean_images - epsilon, clean_images + epsilon)
    return tf.clip_by_value(images, 0.0, 1.0)


def random_start(clean_images: tf.Tensor, epsilon, seed=None) -> tf.Tensor:
    """A uniform draw from the epsilon-ball around the images, clipped to [0, 1].

    `seed`: None for a fresh draw every call, or a shape-[2] int tensor for a
    stateless (reproducible) draw.
    """
    shape = tf.shape(clean_images)
    if seed is None:
        noise = tf.random.uniform(shape, -1.0, 1.0)
    else:
        noise = tf.random.stateless_uniform(shape, seed, -1.0, 1.0)
    return linf_project(clean_images + epsilon * noise, clean_images, epsilon)


def linf_step(images: tf.Tensor, gradient: tf.Tensor, step_size) -> tf.Tensor:
    """One signed-gradient ascent step (FGSM direction)."""
    return images + step_size * tf.sign(gradient)


def _objective_and_logits(model, images, labels, objective, sign, training):
    """Forward pass and input gradient of sum(sign * objective)."""
    with tf.GradientTape() as tape:
        tape.watch(images)
        logits = model_logits(model, images, training=training)
        total = tf.reduce_sum(sign * objective(logits, labels))
    gradient = tape.gradient(total, images)
    if gradient is None:
        raise ValueError(
            "The attack objective has no gradient with respect to the input images: "
            "the model's logits do not depend differentiably on its input.")
    return logits, gradient


def _correct(logits, labels, targeted):
    """bool [N]: the attack has not (yet) succeeded on this example."""
    predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
    if targeted:
        return tf.not_equal(predictions, labels)
    return tf.equal(predictions, labels)


def _pgd_loop(model, clean_images, labels, epsilon, step_size, iterations, record_at,
              *, random_init, objective, targeted, training, trace, seed):
    """The attack loop; `iterations` and `record_at` are tensors (no retrace)."""
    clean_images = tf.cast(clean_images, tf.float32)
    labels = tf.cast(labels, tf.int32)
    epsilon = tf.cast(epsilon, tf.float32)
    step_size = tf.cast(step_size, tf.float32)
    objective_fn = get_objective(objective)
    sign = -1.0 if targeted else 1.0
    if random_init:
        images = random_start(clean_images, epsilon, seed)
    else:
        images = clean_images
    batch = tf.shape(labels)[0]
    correct_at = tf.ones([tf.shape(record_at)[0], batch], tf.bool)
    ever_wrong = tf.zeros([batch], tf.bool)

    for i in tf.range(iterations):
        logits, gradient = _objective_and_logits(
            model, images, labels, objective_fn, sign, training)
        if trace:
            correct = _correct(logits, labels, targeted)
            ever_wrong = tf.logical_or(ever_wrong, tf.logical_not(correct))
            recorded_now = tf.equal(record_at, i)[:, None]
            correct_at = tf.where(recorded_now, correct[None, :], correct_at)
        images = linf_project(linf_step(images, gradient, step_size), clean_images, epsilon)
        images = tf.stop_gradient(images)

    if trace:
        correct = _correct(model_logits(model, images, training=training), labels, targeted)
        ever_wrong = tf.logical_or(ever_wrong, tf.logical_not(correct))
        correct_at = tf.where(tf.equal(record_at, iterations)[:, None], correct[None, :],
                              correct_at)
    return images, correct_at, ever_wrong


_compiled_loops: dict[bool, Callable] = {}


def _compiled_loop(jit_compile: bool) -> Callable:
    """One `tf.function` per XLA setting; it retraces per model and options only."""
    if jit_compile not in _compiled_loops:
        _compiled_loops[jit_compile] = tf.function(
            _pgd_loop, jit_compile=jit_compile, reduce_retracing=True)
    return _compiled_loops[jit_compile]


def _check_images(images):
    if images.shape.rank != 4:
        raise ValueError(f"`images` must be [N, H, W, C]. Received shape: {images.shape}")


def _seed_tensor(seed):
    """None, or the int64 [2] stateless seed of an int or of a [2] seed tensor."""
    if seed is None:
        return None
    if isinstance(seed, int):
        return tf.constant([seed, 0], tf.int64)
    seed = tf.cast(seed, tf.int64)
    if seed.shape.rank != 1 or seed.shape[0] != 2:
        raise ValueError(f"`seed` must be an int or a [2] tensor. Received shape: {seed.shape}")
    return seed


def pgd(model: Callable,
        images: tf.Tensor,
        labels: tf.Tensor,
        epsilon: float,
        step_size: float,
        iterations: int,
        random_start: bool = True,
        *,
        objective: str = "cross_entropy",
        targeted: bool = False,
        target_labels: tf.Tensor | None = None,
        training: bool = False,
        seed: int | None = None,
        jit_compile: bool = False) -> tf.Tensor:
    """L-inf PGD; returns float32 [N, H, W, C] adversarial images in [0, 1].

    Args:
      model: a callable (e.g. a Keras model) mapping [N, H, W, C] images in
        [0, 1] to [N, K] logits, or to a dict holding "logits".
      images: float [N, H, W, C] clean images in [0, 1].
      labels: int [N] true labels (untargeted: the attack moves away from them).
      epsilon, step_size: pixel units; iterations: number of steps.
      random_start: start from a uniform draw in the epsilon-ball.
      objective: "cross_entropy" or "margin".
      targeted: if True, move towards `target_labels` (int [N]).
      training: run the model in training mode during the attack.
      seed: an int (or an int [2] tensor, as inside a train step) for a
        reproducible random start; None draws a fresh one every call.
      jit_compile: compile the loop with XLA.
    """
    config = PGDConfig(epsilon, step_size, iterations, random_start, objective, targeted, training)
    return pgd_from_config(model, images, labels, config, target_labels=target_labels,
                           seed=seed, jit_compile=jit_compile)


def pgd_from_config(model, images, labels, config: PGDConfig, *, target_labels=None,
                    seed=None, jit_compile=False) -> tf.Tensor:
    """`pgd` with a `PGDConfig`; see `pgd`. Callable inside a `tf.function`."""
    images = tf.convert_to_tensor(images)
    _check_images(images)
    attack_labels = _attack_labels(labels, config.targeted, target_labels)
    adversarial, _, _ = _compiled_loop(jit_compile)(
        model, images, attack_labels, config.epsilon, config.step_size,
        tf.constant(config.iterations, tf.int32), tf.zeros([0], tf.int32),
        random_init=config.random_start, objective=config.objective,
        targeted=config.targeted, training=config.training, trace=False,
        seed=_seed_tensor(seed))
    return adversarial


def pgd_with_trace(model, images, labels, config: PGDConfig,
                   record_at: Sequence[int] | None = None, *, target_labels=None,
                   seed=None, jit_compile=False) -> PGDTrace:
    """PGD that also scores the iterates `record_at` (default: only the last).

    One run of `config.iterations` steps gives the accuracy after each count
    in `record_at` (e.g. 10, 20, ..., 200) and, per example, whether any
    iterate was misclassified.
    """
    images = tf.convert_to_tensor(images)
    _check_images(images)
    record_at = sorted(set(record_at)) if record_at else [config.iterations]
    if record_at[0] < 0 or record_at[-1] > config.iterations:
        raise ValueError(
            f"`record_at` must lie in [0, iterations={config.iterations}]. "
            f"Received: record_at={record_at}")
    attack_labels = _attack_labels(labels, config.targeted, target_labels)
    record_tensor = tf.constant(record_at, tf.int32)
    adversarial, correct_at, ever_wrong = _compiled_loop(jit_compile)(
        model, images, attack_labels, config.epsilon, config.step_size,
        tf.constant(config.iterations, tf.int32), record_tensor,
        random_init=config.random_start, objective=config.objective,
        targeted=config.targeted, training=config.training, trace=True,
        seed=_seed_tensor(seed))
    return PGDTrace(adversarial, record_tensor, correct_at, ever_wrong)


def fgsm(model, images, labels, epsilon: float, **kwargs) -> tf.Tensor:
    """FGSM (Goodfellow et al.): one step of size epsilon from the clean image."""
    return pgd(model, images, labels, epsilon, step_size=epsilon, iterations=1,
               random_start=False, **kwargs)


def _attack_labels(labels, targeted, target_labels):
    """The labels the objective is computed against."""
    if targeted:
        if target_labels is None:
            raise ValueError("A targeted attack needs `target_labels`.")
        return tf.cast(target_labels, tf.int32)
    if target_labels is not None:
        raise ValueError("`target_labels` were given, but the attack is untargeted.")
    return tf.cast(labels, tf.int32)
