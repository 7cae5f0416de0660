"""Loss terms of AT+ALP, as plain functions of tensors.

All functions compute in float32 (inputs of other dtypes, e.g. bfloat16 feature
maps under `mixed_bfloat16`, are cast first) and return a float32 scalar for
`reduction="mean"` / `"sum"`, or a float32 [N] vector for `reduction="none"`.

Defaults, and why:
- `logit_pairing_loss` (ALP, eq. 3 of the paper, "L2 loss"): the mean squared
  difference over all logits, i.e. mean over the batch of
  `mean_k (clean_k - adv_k)^2`. This is the `mean_squared_error` Kannan et al.
  used in their ALP code; the paper says only "L2 loss".
- `attention_pairing_loss` (AT, eq. 4): for each group j,
  `Q = vec(F(A))` with `F(A) = mean_c |A_c|^attention_power`
  (Zagoruyko & Komodakis' attention map, power 2), each `Q` divided by its L2
  norm, then the `p`-norm (p = 2, as in the paper) of the difference; summed
  over the groups and averaged over the batch. Each group contributes a value
  in [0, 2] per example (a difference of two unit vectors).
"""

from collections.abc import Mapping, Sequence

import tensorflow as tf

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"`reduction` must be one of {_REDUCTIONS}. Received: reduction={reduction!r}")


def _reduce(per_example: tf.Tensor, reduction: str) -> tf.Tensor:
    """Reduces a float32 [N] vector as asked."""
    if reduction == "mean":
        return tf.reduce_mean(per_example)
    if reduction == "sum":
        return tf.reduce_sum(per_example)
    return per_example


def _safe_l2_norm(values: tf.Tensor) -> tf.Tensor:
    """Euclidean norm over the last axis, exactly 0 (with a 0 gradient) at 0."""
    squared = tf.reduce_sum(tf.square(values), axis=-1)
    positive = squared > 0
    return tf.where(positive, tf.sqrt(tf.where(positive, squared, 1.0)), 0.0)


def cross_entropy(labels: tf.Tensor, logits: tf.Tensor, reduction: str = "mean") -> tf.Tensor:
    """Softmax cross-entropy of integer labels.

    Args:
      labels: int [N], class indices in [0, K).
      logits: [N, K] unnormalised scores.
      reduction: "mean" (over the batch), "sum" or "none" ([N]).
    """
    _check_reduction(reduction)
    logits = tf.cast(logits, tf.float32)
    per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=logits)
    return _reduce(per_example, reduction)


def kl_divergence(reference_logits: tf.Tensor, logits: tf.Tensor,
                  reduction: str = "mean") -> tf.Tensor:
    """KL(p || q) = sum_k p_k (log p_k - log q_k), p = softmax(reference_logits),
    q = softmax(logits), per example (TRADES' and MART's robust term).

    Args:
      reference_logits: [N, K] logits of the reference distribution p (the
        clean prediction).
      logits: [N, K] logits of q (the adversarial prediction).
      reduction: "mean" (over the batch: PyTorch's "batchmean"), "sum" or
        "none" ([N]).
    Computed from log-softmaxes, so it is finite whatever the probabilities.
    """
    _check_reduction(reduction)
    log_p = tf.nn.log_softmax(tf.cast(reference_logits, tf.float32), axis=-1)
    log_q = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
    per_example = tf.reduce_sum(tf.exp(log_p) * (log_p - log_q), axis=-1)
    return _reduce(per_example, reduction)


def logit_pairing_loss(
        clean_logits: tf.Tensor,
        adv_logits: tf.Tensor,
        reduction: str = "mean",
        per_example: str = "mean_squared",
) -> tf.Tensor:
    """Adversarial logit pairing (ALP), eq. 3: L2 loss between paired logits.

    Args:
      clean_logits: [N, K] logits of the clean images.
      adv_logits: [N, K] logits of their adversarial twins.
      reduction: "mean" (over the batch), "sum" or "none" ([N]).
      per_example: how one pair is scored: "mean_squared" (mean over the K
        logits of the squared difference; the default, as Kannan et al.),
        "squared_l2" (sum of squares) or "l2" (Euclidean norm).
    """
    _check_reduction(reduction)
    clean_logits = tf.cast(clean_logits, tf.float32)
    adv_logits = tf.cast(adv_logits, tf.float32)
    squared = tf.square(clean_logits - adv_logits)
    if per_example == "mean_squared":
        scores = tf.reduce_mean(squared, axis=-1)
    elif per_example == "squared_l2":
        scores = tf.reduce_sum(squared, axis=-1)
    elif per_example == "l2":
        scores = _safe_l2_norm(clean_logits - adv_logits)
    else:
        raise ValueError(
            "`per_example` must be one of ('mean_squared', 'squared_l2', 'l2'). "
            f"Received: per_example={per_example!r}")
    return _reduce(scores, reduction)


def attention_map(features: tf.Tensor, attention_power: float = 2.0) -> tf.Tensor:
    """Spatial attention map F(A) = mean over channels of |A|^attention_power.

    Args:
      features: [N, H, W, C] activations.
      attention_power: the exponent (2 in Zagoruyko & Komodakis).

    Returns:
      float32 [N, H, W].
    """
    features = tf.cast(features, tf.float32)
    if features.shape.rank != 4:
        raise ValueError(
            f"Attention features must be [N, H, W, C]. Received shape: {features.shape}")
    return tf.reduce_mean(tf.pow(tf.abs(features), attention_power), axis=-1)


def normalized_attention(features: tf.Tensor, attention_power: float = 2.0) -> tf.Tensor:
    """Q / ||Q||_2 with Q = vec(F(A)); float32 [N, H*W]."""
    maps = attention_map(features, attention_power)
    flat = tf.reshape(maps, [tf.shape(maps)[0], -1])
    return tf.math.l2_normalize(flat, axis=-1, epsilon=1e-12)


def _as_feature_list(clean_features, adv_features) -> list[tuple[tf.Tensor, tf.Tensor]]:
    """Pairs up dicts (by key) or sequences (by position) of feature maps."""
    if isinstance(clean_features, Mapping):
        if not isinstance(adv_features, Mapping) or set(clean_features) != set(adv_features):
            raise ValueError(
                "`clean_features` and `adv_features` must be dicts with the same keys. "
                f"Received keys: {sorted(clean_features)} and "
                f"{sorted(adv_features) if isinstance(adv_features, Mapping) else adv_features}")
        keys = sorted(clean_features)
        return [(clean_features[k], adv_features[k]) for k in keys]
    if isinstance(clean_features, Sequence) and isinstance(adv_features, Sequence):
        if len(clean_features) != len(adv_features):
            raise ValueError(
                "`clean_features` and `adv_features` must have the same length. "
                f"Received: {len(clean_features)} and {len(adv_features)}")
        return list(zip(clean_features, adv_features))
    raise TypeError(
        "Features must be dicts or lists of [N, H, W, C] tensors. "
        f"Received: {type(clean_features).__name__} and {type(adv_features).__name__}")


def attention_pairing_loss(
        clean_features,
        adv_features,
        p: float = 2.0,
        attention_power: float = 2.0,
        reduction: str = "mean",
) -> tf.Tensor:
    """Attention pairing (AT), eq. 4 of the paper.

    sum_j || Q_adv^j / ||Q_adv^j||_2 - Q_clean^j / ||Q_clean^j||_2 ||_p,
    with Q^j = vec(F(A^j)) and F the channel-wise attention map.

    Args:
      clean_features: dict (name -> tensor) or list of [N, H, W, C] feature
        maps of the clean images, one per selected group.
      adv_features: the same groups for the adversarial images.
      p: the norm of the difference (the paper's p; 2).
      attention_power: the exponent in F(A) = mean_c |A_c|^power (2).
      reduction: "mean" (over the batch), "sum" or "none" ([N]).
    """
    _check_reduction(reduction)
    if p <= 0:
        raise ValueError(f"`p` must be > 0. Received: p={p}")
    pairs = _as_feature_list(clean_features, adv_features)
    if not pairs:
        raise ValueError("`attention_pairing_loss` needs at least one pair of feature maps.")
    per_example = 0.0
    for clean, adv in pairs:
        difference = (normalized_attention(adv, attention_power)
                      - normalized_attention(clean, attention_power))
        if p == 2:
            norm = _safe_l2_norm(difference)  # finite gradient where the maps agree
        else:
            norm = tf.norm(difference, ord=p, axis=-1)
        per_example += norm
    return _reduce(per_example, reduction)
