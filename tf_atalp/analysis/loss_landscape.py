"""Figure 6 of the paper: the loss around one input along the gradient sign and a random sign.

z(a, b) = CE(clip(x + a * r1 + b * r2, 0, 1), y), with r1 = sign(grad_x CE(x, y))
and r2 a Rademacher vector (each entry +1 or -1 with probability 0.5), for a
and b on a grid over [-radius, radius] (pixel units). The clip keeps every
point a valid image (the paper does not say; without it most of the grid
lies outside what the model was trained on). A smooth bowl around (0, 0)
means the gradient predicts the loss; a bumpy surface, or a loss that
drops near the input, is what gradient masking looks like (Kannan et al.;
Engstrom et al. 2018).
"""

import numpy as np
import tensorflow as tf

from tf_atalp.attacks.model_fns import inference_logits

CHUNK = 64  # grid points per forward pass


def _cross_entropy(model_fn, images, labels) -> tf.Tensor:
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels, model_fn(images))


@tf.function(reduce_retracing=True)
def _gradient_sign(model_fn, x, y):
    """sign(d CE / d x) (traced: the eager conv backward pass of some shapes crashes oneDNN)."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = _cross_entropy(model_fn, x, y)
    return tf.sign(tape.gradient(loss, x))


def loss_landscape(model, image, label: int, radius: float, grid: int = 21,
                   seed: int = 0) -> dict:
    """The loss surface around one image.

    Args:
      model: images [N, S, S, 3] in [0, 1] -> logits (or a dict holding them).
      image: float [S, S, 3] in [0, 1].
      label: its class.
      radius: the largest |a| and |b|, pixel units.
      grid: points per axis (odd puts (0, 0) on the grid).
      seed: the Rademacher draw.

    Returns:
      {"a": [grid] (along sign of the gradient), "b": [grid] (random sign),
       "loss": [grid, grid] with loss[i, j] at (a[i], b[j]), "radius", "label"}.
    """
    if grid < 2 or radius <= 0:
        raise ValueError(f"`grid` must be >= 2 and `radius` > 0. Received: grid={grid}, "
                         f"radius={radius}")
    model_fn = inference_logits(model)
    x = tf.convert_to_tensor(image, tf.float32)[None]
    y = tf.constant([label], tf.int32)
    r1 = _gradient_sign(model_fn, x, y)
    r2 = tf.cast(2 * tf.random.stateless_uniform(x.shape, [seed, 0], 0, 2, tf.int32) - 1,
                 tf.float32)
    steps = np.linspace(-radius, radius, grid).astype(np.float32)
    a, b = np.meshgrid(steps, steps, indexing="ij")
    coefficients = np.stack([a.ravel(), b.ravel()], axis=1)
    losses = []
    for start in range(0, len(coefficients), CHUNK):
        chunk = tf.constant(coefficients[start:start + CHUNK])
        points = tf.clip_by_value(x + chunk[:, 0, None, None, None] * r1
                                  + chunk[:, 1, None, None, None] * r2, 0.0, 1.0)
        labels = tf.fill([tf.shape(points)[0]], tf.constant(label, tf.int32))
        losses.append(_cross_entropy(model_fn, points, labels).numpy())
    return {"a": steps.tolist(), "b": steps.tolist(),
            "loss": np.concatenate(losses).reshape(grid, grid).tolist(),
            "radius": float(radius), "label": int(label)}
