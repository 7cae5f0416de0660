"""`Defense`: a training recipe that owns its hyperparameters, loss terms and model parts.

A defense is a frozen dataclass whose fields are its hyperparameters
(`get_config` / `from_config` round-trip them, so a run_config.json
rebuilds it). It says

- `loss_terms()`: the weighted terms summed into the training loss (the
  protocol in `terms.py`);
- `adversarial_training`: whether train_step crafts adversarial examples;
- `model_options()`: keyword arguments of `tf_atalp.models.build_resnet` it
  needs at build time (input noise, denoising blocks);
- `inference_model(network)`: the model that predicts at test time and is
  exported and attacked (the network itself unless the defense changes
  prediction, e.g. random resizing at inference);
- `randomization()`: None for a deterministic model, else a sentence saying
  what is drawn anew on every prediction (evaluation then uses expectation
  over transformation and averages over draws; the export says so).

Subclasses set the class attributes `name` and `description`.
"""

import dataclasses
from typing import ClassVar

import keras

from tf_atalp.defenses.terms import ADVERSARIAL, LossTerm


@dataclasses.dataclass(frozen=True)
class Defense:
    """The base of every defense; see the module docstring."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    adversarial_training: ClassVar[bool] = True

    def __post_init__(self):
        terms = self.loss_terms()
        if not terms:
            raise ValueError(f"Defense {self.name!r} has no loss terms.")
        names = [term.name for term in terms]
        if len(set(names)) != len(names):
            raise ValueError(f"Defense {self.name!r} has repeated loss-term names: {names}")
        if not all(isinstance(term, LossTerm) for term in terms):
            raise ValueError(f"Defense {self.name!r}: loss terms must be LossTerm objects.")
        if any(ADVERSARIAL in term.needs for term in terms) and not self.adversarial_training:
            raise ValueError(
                f"Defense {self.name!r} has a term on adversarial examples but "
                "`adversarial_training=False`.")

    def loss_terms(self) -> tuple[LossTerm, ...]:
        raise NotImplementedError

    def model_options(self) -> dict:
        """Keyword arguments of `build_resnet` this defense needs ({}: none)."""
        return {}

    def inference_model(self, network: keras.Model) -> keras.Model:
        """The model that predicts at test time (default: `network` itself)."""
        return network

    def randomization(self) -> str | None:
        """What is random at inference (a sentence), or None: the model is deterministic."""
        return None

    def uses(self, which: str) -> bool:
        """Whether any term needs the CLEAN or ADVERSARIAL forward pass."""
        return any(which in term.needs for term in self.loss_terms())

    @property
    def term_names(self) -> tuple[str, ...]:
        return tuple(term.name for term in self.loss_terms())

    def get_config(self) -> dict:
        """The hyperparameters, JSON-ready (tuples as lists)."""
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(self).items()}

    @classmethod
    def from_config(cls, config: dict) -> "Defense":
        values = {key: tuple(value) if isinstance(value, list) else value
                  for key, value in config.items()}
        return cls(**values)


def check_weight(name: str, value: float) -> None:
    """Raises ValueError unless the loss weight `value` is >= 0."""
    if not value >= 0:
        raise ValueError(f"`{name}` must be >= 0. Received: {name}={value}")

