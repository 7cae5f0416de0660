"""What a trained network attends to and how its loss looks around an input.

Tensors and numbers only (NumPy, TensorFlow); nothing here draws.

- `key_regions.py`: Table 2's mean max-normalised attention inside per-image
  key-region masks.
- `attention_maps.py`: each conv group's attention map; Figure 4's maps,
  clean and adversarial, per network.
- `loss_landscape.py`: Figure 6's loss along the gradient sign and a
  Rademacher direction.
"""
