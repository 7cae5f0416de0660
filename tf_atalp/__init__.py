"""tf_atalp: adversarial training with Attention and Adversarial Logit Pairing.

Subpackages: `models` (ResNets with conv-group outputs, output roles,
`with_feature_outputs`), `attacks` (the `Attack` protocol: PGD, FGSM,
Restarts, WorstCase, model wrappers), `losses` (CE, ALP, AT as functions),
`defenses` (defense classes, their loss terms, the registry), `training` (the
Keras trainer, its config and flags), `data` (tf.data pipelines),
`evaluation`, `export`.

Importing `tf_atalp` registers every custom Keras object of the package, so
`keras.models.load_model("model.keras")` works after a plain `import tf_atalp`.
"""

__version__ = "0.1.0"

# Registers the custom layers (ImageNormalization, NonLocalDenoising, ...) with Keras.
from tf_atalp import models  # noqa: E402,F401  (imported for its side effect)
from tf_atalp.training import schedules  # noqa: E402,F401  (registers WarmupSchedule)
