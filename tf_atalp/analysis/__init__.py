"""What a trained network attends to and how its loss looks around an input.

- `key_regions.py`: Table 2's mean max-normalised attention inside per-image
  key-region masks.
- `attention_figure.py`: Figure 4's attention maps, clean and adversarial,
  per network (and to TensorBoard).
- `loss_landscape.py`: Figure 6's loss along the gradient sign and a
  Rademacher direction.
"""
