"""The training run configuration: frozen dataclasses, checked across fields.

`tf_atalp.training.flags` turns the train_main.py flags into a `RunConfig`
once; `RunConfig.__post_init__` checks the rules between fields, so every
error is raised before any work starts. `save_run_config` /
`load_run_config` keep the resolved config beside the model
(`<model_dir>/run_config.json`); the defense and the attack are stored as
their own configs (`defense_config`, `PGD.get_config`).
"""

import dataclasses
import json
import os

from tf_atalp.attacks.pgd import PGD
from tf_atalp.data.config import DataConfig
from tf_atalp.defenses import AttentionPairingTerm, Defense, defense_config, defense_from_config
from tf_atalp.io_utils import atomic_write_text
from tf_atalp.model_dir import RUN_CONFIG_FILE
from tf_atalp.models import APPLICATIONS_DEPTHS, DEPTHS, GROUP_NAMES, STEMS
from tf_atalp.training.precision import AUTO, PRECISIONS
from tf_atalp.training.schedules import SCHEDULES
from tf_atalp.training.strategy import STRATEGIES
from tf_atalp.validation import check

ARCHITECTURES = ("resnet", "applications")
OPTIMIZERS = ("sgd", "adam", "adamw")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Which network to build (see `tf_atalp.models`).

    `num_classes` comes from the dataset; `weights_path` is only for the
    keras.applications backbones.
    """

    architecture: str = "resnet"
    depth: int = 18
    width: int = 64
    stem: str = "auto"
    num_classes: int = 10
    image_size: int = 32
    weights_path: str | None = None

    def __post_init__(self):
        check(self.architecture in ARCHITECTURES,
               f"`architecture` must be one of {ARCHITECTURES}. "
               f"Received: architecture={self.architecture!r}")
        depths = DEPTHS if self.architecture == "resnet" else APPLICATIONS_DEPTHS
        check(self.depth in depths,
               f"`depth` must be one of {depths} for architecture={self.architecture!r}. "
               f"Received: depth={self.depth}")
        check(self.width >= 1, f"`width` must be >= 1. Received: width={self.width}")
        check(self.stem in STEMS,
               f"`stem` must be one of {STEMS}. Received: stem={self.stem!r}")
        check(self.num_classes >= 2,
               f"`num_classes` must be >= 2. Received: num_classes={self.num_classes}")
        check(self.weights_path is None or self.architecture == "applications",
               "`weights_path` is only used with architecture='applications'. "
               f"Received: weights_path={self.weights_path!r}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to optimise and where to write.

    learning_rate is the peak rate; "cosine" decays it to 0 over the run,
    "step" multiplies it by 0.1 at 50% and 75% of the run; `warmup_epochs`
    ramps it linearly from 0 first; "cyclic" (Fast-AT) rises from 0 to the
    peak at half the run and falls back to 0, with no warm-up.
    `overfitting_check`: watch for catastrophic overfitting after every
    epoch (`tf_atalp.training.overfitting`); None: as the defense says (on
    for single-step training: fast_at, free_at).
    """

    model_dir: str
    epochs: int = 10
    optimizer: str = "sgd"
    learning_rate: float = 0.1
    lr_schedule: str = "cosine"
    warmup_epochs: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    mixed_precision: str = AUTO
    jit_compile: bool = False
    attack_batchnorm_training: bool = False
    strategy: str = "default"
    tpu: str = ""
    steps_per_execution: int = 1
    steps_per_epoch: int | None = None
    eval_pgd_iterations: int = 0
    robust_accuracy_every: int = 5  # and the last epoch; every epoch cost ~24% (flowers17_cpu)
    robust_accuracy_examples: int = 256
    robust_accuracy_iterations: int = 10
    attention_maps_every: int = 1
    attention_map_images: int = 8
    export_saved_model: bool = True
    overfitting_check: bool | None = None

    def __post_init__(self):
        check(bool(self.model_dir), "`model_dir` must be set. Received: model_dir=''")
        check(self.epochs >= 1, f"`epochs` must be >= 1. Received: epochs={self.epochs}")
        check(self.optimizer in OPTIMIZERS,
               f"`optimizer` must be one of {OPTIMIZERS}. Received: optimizer={self.optimizer!r}")
        check(self.learning_rate > 0,
               f"`learning_rate` must be > 0. Received: learning_rate={self.learning_rate}")
        check(self.lr_schedule in SCHEDULES,
               f"`lr_schedule` must be one of {SCHEDULES}. "
               f"Received: lr_schedule={self.lr_schedule!r}")
        check(0 <= self.warmup_epochs < self.epochs,
               f"`warmup_epochs` must be in [0, epochs={self.epochs}). "
               f"Received: warmup_epochs={self.warmup_epochs}")
        check(self.lr_schedule != "cyclic" or self.warmup_epochs == 0,
               "The cyclic schedule rises from 0 itself: `warmup_epochs` must be 0. "
               f"Received: warmup_epochs={self.warmup_epochs}")
        check(0 <= self.momentum < 1,
               f"`momentum` must be in [0, 1). Received: momentum={self.momentum}")
        check(self.weight_decay >= 0,
               f"`weight_decay` must be >= 0. Received: weight_decay={self.weight_decay}")
        check(self.seed >= 0, f"`seed` must be >= 0. Received: seed={self.seed}")
        check(self.mixed_precision in PRECISIONS,
               f"`mixed_precision` must be one of {PRECISIONS}. "
               f"Received: mixed_precision={self.mixed_precision!r}")
        check(self.strategy in STRATEGIES,
               f"`strategy` must be one of {STRATEGIES}. Received: strategy={self.strategy!r}")
        check(self.steps_per_execution >= 1,
               "`steps_per_execution` must be >= 1. "
               f"Received: steps_per_execution={self.steps_per_execution}")
        check(self.steps_per_epoch is None or self.steps_per_epoch >= 1,
               f"`steps_per_epoch` must be >= 1. Received: steps_per_epoch={self.steps_per_epoch}")
        for name in ("robust_accuracy_every", "attention_maps_every"):
            check(getattr(self, name) >= 0,
                  f"`{name}` must be >= 0 (0: off). Received: {name}={getattr(self, name)}")
        for name in ("robust_accuracy_examples", "robust_accuracy_iterations",
                     "attention_map_images"):
            check(getattr(self, name) >= 1,
                  f"`{name}` must be >= 1. Received: {name}={getattr(self, name)}")
        check(self.eval_pgd_iterations >= 0,
               "`eval_pgd_iterations` must be >= 0. "
               f"Received: eval_pgd_iterations={self.eval_pgd_iterations}")


def _check_attention_groups(defense: Defense) -> None:
    """Our ResNet builders have the feature maps GROUP_NAMES: pairing must name some of them."""
    for term in defense.loss_terms():
        if isinstance(term, AttentionPairingTerm) and term.groups is not None:
            check(len(term.groups) >= 1 and set(term.groups) <= set(GROUP_NAMES),
                  f"`attention_groups` must be a non-empty subset of {GROUP_NAMES}. "
                  f"Received: attention_groups={list(term.groups)}")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything one training run needs, checked across fields.

    `defense` is a `Defense` (its hyperparameters are its fields); `attack` is
    the training `PGD` (with `jit_compile` saying how it runs).
    """

    data: DataConfig
    model: ModelConfig
    defense: Defense
    attack: PGD
    train: TrainConfig

    def __post_init__(self):
        check(self.model.image_size == self.data.image_size,
               "The model and data image sizes differ: "
               f"{self.model.image_size} and {self.data.image_size}")
        check(self.attack.step_size <= self.attack.epsilon or self.attack.epsilon == 0,
               f"`step_size` must be <= `epsilon`. Received: step_size={self.attack.step_size}, "
               f"epsilon={self.attack.epsilon}")
        if self.defense.adversarial_training:
            check(self.attack.iterations >= 1 and self.attack.epsilon > 0,
                   f"Defense {self.defense.name!r} trains on PGD examples: `pgd_iterations` "
                   f"and `epsilon` must be > 0. Received: pgd_iterations="
                   f"{self.attack.iterations}, epsilon={self.attack.epsilon}")
        _check_attention_groups(self.defense)
        check(not (self.train.mixed_precision == "mixed_float16"
                    and self.train.strategy == "tpu"),
               "`mixed_float16` is not supported on TPU; use mixed_bfloat16.")

    @property
    def robust_accuracy_attack(self) -> PGD | None:
        """The PGD of the RobustAccuracy callback (training epsilon and step), or None when
        it is off or the run has no attack radius."""
        if not self.train.robust_accuracy_every or self.attack.epsilon == 0:
            return None
        return dataclasses.replace(self.attack, iterations=self.train.robust_accuracy_iterations)

    @property
    def checks_overfitting(self) -> bool:
        """Whether the run watches for catastrophic overfitting (the flag, else the defense)."""
        if self.attack.epsilon == 0:
            return False
        if self.train.overfitting_check is not None:
            return self.train.overfitting_check
        return self.defense.watches_overfitting()

    @property
    def eval_attack(self) -> PGD | None:
        """The PGD run on the validation set after each epoch, if any."""
        if not self.train.eval_pgd_iterations:
            return None
        return dataclasses.replace(self.attack, iterations=self.train.eval_pgd_iterations)

    def to_dict(self) -> dict:
        return {"data": dataclasses.asdict(self.data), "model": dataclasses.asdict(self.model),
                "defense": defense_config(self.defense), "attack": self.attack.get_config(),
                "train": dataclasses.asdict(self.train)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict) -> "RunConfig":
        """The config of `to_dict` (run_config.json files of earlier versions included)."""
        attack, train = dict(values["attack"]), dict(values["train"])
        # Earlier versions: BatchNorm mode and XLA were attack/train fields; restarts was 1.
        if "training" in attack:
            train.setdefault("attack_batchnorm_training", attack.pop("training"))
        attack.pop("restarts", None)
        if "attack_jit_compile" in train:
            attack.setdefault("jit_compile", train.pop("attack_jit_compile"))
        return cls(data=DataConfig(**values["data"]), model=ModelConfig(**values["model"]),
                   defense=defense_from_config(values["defense"]), attack=PGD(**attack),
                   train=TrainConfig(**train))


def save_run_config(config: RunConfig, model_dir: str) -> str:
    """Writes `<model_dir>/run_config.json` atomically; returns its path."""
    path = os.path.join(model_dir, RUN_CONFIG_FILE)
    atomic_write_text(path, config.to_json() + "\n")
    return path


def load_run_config(model_dir: str) -> RunConfig:
    """Reads the config a training run left in `model_dir`."""
    path = os.path.join(model_dir, RUN_CONFIG_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No {RUN_CONFIG_FILE} in {model_dir!r}: is it the model_dir of a train_main run?")
    try:
        with open(path) as f:
            return RunConfig.from_dict(json.load(f))
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is corrupt or from another version: {error}") from error
