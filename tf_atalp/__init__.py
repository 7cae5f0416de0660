"""tf_atalp: adversarial training with Attention and Adversarial Logit Pairing.

Subpackages: `models` (ResNets with conv-group outputs), `attacks` (PGD/FGSM),
`losses` (CE, ALP, AT terms), `defenses` (the registry), `training` (the
Keras trainer), `data` (tf.data pipelines), `evaluation`, `export`.
"""

__version__ = "0.1.0"
