"""What an attack is given: a model function `images -> logits`, and wrappers around it.

A model function maps float32 images [N, H, W, C] in [0, 1] to float32
logits [N, K]. How the network runs (BatchNorm in inference or training
mode, randomness averaged over draws) is a property of the model function,
never of the attack:

    inference_logits(model)   BatchNorm statistics frozen (the default)
    training_logits(model)    BatchNorm batch statistics, as in training
    ExpectationOverTransformation(model_fn, samples)
                              for randomized models: the gradient of the
                              objective is averaged over `samples` draws
    expectation_over_transformation(model, samples)
                              the same around inference_logits(model),
                              one instance per (model, samples)
    BackwardPassDifferentiableApproximation(model_fn, transform)
                              for a non-differentiable input transform
                              (quantization, JPEG, ...): the forward pass
                              applies it, the backward pass treats it as the
                              identity (or as a given smooth approximation)

Gradient attacks ask `objective_and_gradient(model_fn, objective, ...)` for
the input gradient; a wrapper that defines its own gradient (EoT, BPDA)
implements `objective_and_gradient` itself. The two compose:
`ExpectationOverTransformation(BackwardPassDifferentiableApproximation(...), n)`.
"""

import weakref
from collections.abc import Callable

import tensorflow as tf

from tf_atalp.models.outputs import logits_of

_wrapped: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


class ModelLogits:
    """`model(images, training=training)` as logits: a model function.

    One instance per (model, mode) (see `inference_logits`), so compiled
    attacks that take it as an argument trace once per model, not per call.
    """

    def __init__(self, model: Callable, training: bool):
        self.model = model
        self.training = bool(training)

    def __call__(self, images: tf.Tensor) -> tf.Tensor:
        return logits_of(self.model(images, training=self.training))

    def __repr__(self):
        mode = "training" if self.training else "inference"
        return f"ModelLogits({getattr(self.model, 'name', self.model)!r}, {mode} mode)"


def one_per_model(model: Callable, key, make: Callable):
    """`make()`, built once per (model, key) and reused (compiled attacks then trace once)."""
    try:
        per_model = _wrapped.setdefault(model, {})
    except TypeError:  # not weak-referenceable: a fresh wrapper (traced per call)
        return make()
    if key not in per_model:
        per_model[key] = make()
    return per_model[key]


def _model_logits(model: Callable, training: bool) -> ModelLogits:
    return one_per_model(model, training, lambda: ModelLogits(model, training))


def inference_logits(model: Callable) -> ModelLogits:
    """The model function of `model` in inference mode (frozen BatchNorm statistics)."""
    return _model_logits(model, training=False)


def training_logits(model: Callable) -> ModelLogits:
    """The model function of `model` in training mode (BatchNorm batch statistics, updated)."""
    return _model_logits(model, training=True)


def defines_own_gradient(model_fn: Callable) -> bool:
    """True for a model function that computes its own input gradient (EoT, BPDA).

    Attacks may take a shortcut through the plain gradient of the others
    (one Jacobian instead of one gradient per class: `objectives_and_jacobian`).
    """
    return getattr(model_fn, "objective_and_gradient", None) is not None


def _checked(gradient):
    if gradient is None:
        raise ValueError(
            "The attack objective has no gradient with respect to the input images: "
            "the model's logits do not depend differentiably on its input.")
    return gradient


def objective_and_gradient(model_fn: Callable, objective: Callable, images: tf.Tensor,
                           labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(logits [N, K], d sum(objective(logits, labels)) / d images [N, H, W, C]).

    Raises ValueError if the objective has no gradient with respect to the images.
    """
    if defines_own_gradient(model_fn):
        logits, gradient = model_fn.objective_and_gradient(objective, images, labels)
    else:
        with tf.GradientTape() as tape:
            tape.watch(images)
            logits = model_fn(images)
            total = tf.reduce_sum(objective(logits, labels))
        gradient = tape.gradient(total, images)
    return logits, _checked(gradient)


def objectives_and_jacobian(model_fn: Callable, objectives: Callable, images: tf.Tensor,
                            labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(objectives(logits, labels) [N, C], their input gradients [N, C, H, W, C_in]).

    One forward pass and one vectorized backward pass for all C objectives
    (`GradientTape.batch_jacobian`): the same gradients as C calls of
    `objective_and_gradient`, for model functions that do not define their
    own gradient (for those, raises ValueError: call `objective_and_gradient`
    per objective). Raises ValueError if there is no gradient.
    """
    if defines_own_gradient(model_fn):
        raise ValueError(f"{model_fn!r} defines its own gradient: take one "
                         "`objective_and_gradient` per objective instead.")
    with tf.GradientTape() as tape:
        tape.watch(images)
        values = objectives(model_fn(images), labels)
    return values, _checked(tape.batch_jacobian(values, images))


class ExpectationOverTransformation:
    """A randomized model function whose gradient is averaged over `samples` draws.

    Athalye et al. 2018 (EoT): against a model that draws randomness on each
    call (input noise, random resizing), the attack follows
    E_draws[d objective / d x], estimated as the mean over `samples` calls.
    Calling it returns the logits averaged over `samples` draws.

    Args:
      model_fn: a model function whose output is random from call to call.
      samples: draws per gradient (>= 1).
    """

    def __init__(self, model_fn: Callable, samples: int):
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ValueError(f"`samples` must be an int >= 1. Received: samples={samples!r}")
        self.model_fn = model_fn
        self.samples = samples

    def __call__(self, images: tf.Tensor) -> tf.Tensor:
        return tf.add_n([self.model_fn(images) for _ in range(self.samples)]) / self.samples

    def objective_and_gradient(self, objective, images, labels):
        """(mean logits, mean input gradient of the objective) over `samples` draws."""
        logits, gradients = [], []
        for _ in range(self.samples):
            draw_logits, gradient = objective_and_gradient(self.model_fn, objective, images,
                                                           labels)
            logits.append(draw_logits)
            gradients.append(gradient)
        return tf.add_n(logits) / self.samples, tf.add_n(gradients) / self.samples

    def describe(self) -> dict:
        return {"wrapper": "expectation_over_transformation", "samples": self.samples}


def expectation_over_transformation(model: Callable, samples: int
                                    ) -> ExpectationOverTransformation:
    """`ExpectationOverTransformation(inference_logits(model), samples)`, one per (model, samples).

    Reusing the instance lets compiled attacks reuse their trace (an EoT
    graph holds `samples` unrolled passes, so tracing it is slow).
    """
    return one_per_model(
        model, ("eot", samples),
        lambda: ExpectationOverTransformation(inference_logits(model), samples))


class BackwardPassDifferentiableApproximation:
    """`model_fn(transform(x))` whose gradient passes `transform` as if it were `approximation`.

    Athalye et al. 2018 (BPDA): a defense that puts a non-differentiable (or
    gradient-shattering) transform in front of the network, such as
    quantization, gives attacks zero or useless gradients. BPDA keeps the
    transform in the forward pass and uses the gradient of `approximation`
    (default: the identity, g(x) ~ x) on the backward pass, via
    x_hat = a(x) + stop_gradient(t(x) - a(x)).

    Args:
      model_fn: a model function (images in [0, 1] -> logits).
      transform: the input transform, images -> images of the same shape.
      approximation: a differentiable function close to `transform`, or
        None for the identity.
    """

    def __init__(self, model_fn: Callable, transform: Callable,
                 approximation: Callable | None = None):
        if not callable(transform):
            raise ValueError(f"`transform` must be callable. Received: {transform!r}")
        self.model_fn = model_fn
        self.transform = transform
        self.approximation = approximation

    def _straight_through(self, images: tf.Tensor) -> tf.Tensor:
        smooth = images if self.approximation is None else self.approximation(images)
        return smooth + tf.stop_gradient(self.transform(images) - smooth)

    def __call__(self, images: tf.Tensor) -> tf.Tensor:
        return self.model_fn(self.transform(images))

    def objective_and_gradient(self, objective, images, labels):
        """(logits of the transformed images, the input gradient through the approximation)."""
        with tf.GradientTape() as tape:
            tape.watch(images)
            transformed = self._straight_through(images)
        logits, gradient = objective_and_gradient(self.model_fn, objective, transformed, labels)
        return logits, tape.gradient(transformed, images, output_gradients=gradient)

    def describe(self) -> dict:
        return {"wrapper": "bpda",
                "approximation": "identity" if self.approximation is None else
                getattr(self.approximation, "__name__", repr(self.approximation))}
