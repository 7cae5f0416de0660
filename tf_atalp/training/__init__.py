"""Training: the `AdversarialTrainer` keras.Model."""

from tf_atalp.training.trainer import AdversarialTrainer

__all__ = ["AdversarialTrainer"]
