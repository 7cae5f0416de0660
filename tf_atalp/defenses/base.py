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
  over transformation and averages over draws; the export says so);
- how train_step makes and uses its adversarial batch (the step strategy,
  never a fork of train_step): `training_attack(attack)`, the attack it runs
  (TRADES changes the objective, Fast-AT the step); `free_replays()`, 0, or
  m for Free-AT (each minibatch trained on m times in a row, the perturbation
  carried from one replay to the next, no attack run); `weight_perturbation()`,
  AWP's gamma (0: off); and what follows from them for a run:
  `updates_per_batch()`, `epochs_to_run(epochs)`, `watches_overfitting()`.

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

    def training_attack(self, attack):
        """The attack train_step runs, made from the run's `attack` (default: `attack`)."""
        return attack

    def free_replays(self) -> int:
        """0: the training attack crafts each batch. m >= 2: Free-AT's m replays per batch."""
        return 0

    def weight_perturbation(self) -> float:
        """AWP's relative weight perturbation gamma before each update (0: none)."""
        return 0.0

    def updates_per_batch(self) -> int:
        """Optimizer updates per training batch (Free-AT: one per replay)."""
        return max(1, self.free_replays())

    def epochs_to_run(self, epochs: int) -> int:
        """The epochs a run trains when `epochs` are asked for (Free-AT divides by m)."""
        return epochs

    def watches_overfitting(self) -> bool:
        """Whether a run watches for catastrophic overfitting by default (single-step
        training: Fast-AT, Free-AT; Wong et al. 2020)."""
        return False

    def caveats(self) -> tuple[str, ...]:
        """Measured warnings about these settings, printed when a run starts (none here)."""
        return ()

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

