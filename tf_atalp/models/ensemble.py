"""`build_ensemble`: M classifiers on one input, predicting with their mean probabilities.

The ensemble of ADP (Pang et al. 2019, "Improving Adversarial Robustness via
Promoting Ensemble Diversity"): the members see the same image, and the
ensemble predicts F(x) = (1/M) sum_m softmax(z_m(x)). Its "logits" are
log F(x), so softmax(logits) = F(x) and every attack and metric that reads
logits sees the ensemble's prediction; each member's own logits z_m are the
"members" role (`tf_atalp.models.outputs.MEMBERS`), and each member's feature
maps are the ensemble's "features", named "<member>_<feature>" (for the
attention-map callback and figures).
"""

from collections.abc import Sequence

import keras
from keras import ops

from tf_atalp.models.outputs import FEATURES, LOGITS, MEMBERS, as_roles


def mean_probability_logits(member_logits: Sequence) -> object:
    """log((1/M) sum_m softmax(z_m)), [N, K] float32, from M logits [N, K] (log-sum-exp form)."""
    log_probabilities = ops.stack([ops.log_softmax(ops.cast(z, "float32"), axis=-1)
                                   for z in member_logits], axis=0)
    return ops.logsumexp(log_probabilities, axis=0) - ops.log(float(len(member_logits)))


def build_ensemble(members: Sequence[keras.Model], name: str = "ensemble") -> keras.Model:
    """A functional model whose members share its input.

    Args:
      members: M >= 2 functional models with the same input shape, each
        returning logits [N, K] or a dict holding them (other outputs, such as
        feature maps, are not passed on).
      name: the model name.

    Returns:
      A keras.Model from images [N, ...] to {"logits": [N, K] (log of the mean
      member probabilities), "members": {member name: [N, K] logits}}, plus
      "features": {"<member>_<name>": map} when the members have feature maps.
    """
    if len(members) < 2:
        raise ValueError(f"An ensemble needs >= 2 members. Received: {len(members)}")
    names = [member.name for member in members]
    if len(set(names)) != len(names):
        raise ValueError(f"Ensemble members need distinct names. Received: {names}")
    shapes = {tuple(member.inputs[0].shape[1:]) for member in members}
    if len(shapes) != 1:
        raise ValueError(f"Ensemble members must take one input shape. Received: {shapes}")
    inputs = keras.Input(shapes.pop(), name="images")
    member_logits, features = {}, {}
    for member in members:
        outputs = as_roles(member(inputs))
        member_logits[member.name] = outputs[LOGITS]
        for feature, value in outputs.get(FEATURES, {}).items():
            features[f"{member.name}_{feature}"] = value
    outputs = {LOGITS: mean_probability_logits(list(member_logits.values())),
               MEMBERS: member_logits}
    if features:
        outputs[FEATURES] = features
    return keras.Model(inputs, outputs, name=name)
