"""The run configuration: absl flags, turned once into frozen dataclasses.

`define_train_flags()` declares every training flag (single-flag validation
happens in the flag definitions); `run_config_from_flags()` builds a
`RunConfig`, whose `__post_init__` checks the rules between fields, so every
error is raised before any work starts. `save_run_config` / `load_run_config`
keep the resolved config beside the model (`<model_dir>/run_config.json`).
"""

import dataclasses
import json
import os

from absl import flags

from tf_atalp.attacks.pgd import OBJECTIVES, PGDConfig
from tf_atalp.data.config import DataConfig
from tf_atalp.defenses import DEFAULT_ALPHA, DEFAULT_BETA, defense_names, get_defense
from tf_atalp.io_utils import atomic_write_text
from tf_atalp.loss_terms import CE_TARGETS
from tf_atalp.model_dir import RUN_CONFIG_FILE
from tf_atalp.training.precision import AUTO, PRECISIONS
from tf_atalp.validation import check

ARCHITECTURES = ("resnet", "applications")
DEPTHS = (10, 18, 34, 50, 101, 152)
APPLICATION_DEPTHS = (50, 101, 152)
GROUPS = ("conv2_x", "conv3_x", "conv4_x", "conv5_x")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "step")
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")



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
        depths = DEPTHS if self.architecture == "resnet" else APPLICATION_DEPTHS
        check(self.depth in depths,
               f"`depth` must be one of {depths} for architecture={self.architecture!r}. "
               f"Received: depth={self.depth}")
        check(self.width >= 1, f"`width` must be >= 1. Received: width={self.width}")
        check(self.stem in ("auto", "imagenet", "cifar"),
               f"`stem` must be one of ('auto', 'imagenet', 'cifar'). Received: stem={self.stem!r}")
        check(self.num_classes >= 2,
               f"`num_classes` must be >= 2. Received: num_classes={self.num_classes}")
        check(self.weights_path is None or self.architecture == "applications",
               "`weights_path` is only used with architecture='applications'. "
               f"Received: weights_path={self.weights_path!r}")


@dataclasses.dataclass(frozen=True)
class DefenseConfig:
    """Which defense, with its weights (see `tf_atalp.defenses`)."""

    name: str = "at_alp"
    alpha: float = DEFAULT_ALPHA
    beta: float = DEFAULT_BETA
    attention_groups: tuple[str, ...] = GROUPS
    attention_p: float = 2.0
    ce_on: str = "adversarial"

    def __post_init__(self):
        check(self.name in defense_names(),
               f"`defense` must be one of {defense_names()}. Received: defense={self.name!r}")
        check(self.alpha >= 0, f"`alpha` must be >= 0. Received: alpha={self.alpha}")
        check(self.beta >= 0, f"`beta` must be >= 0. Received: beta={self.beta}")
        check(len(self.attention_groups) >= 1 and set(self.attention_groups) <= set(GROUPS),
               f"`attention_groups` must be a non-empty subset of {GROUPS}. "
               f"Received: attention_groups={self.attention_groups}")
        check(self.attention_p > 0,
               f"`attention_p` must be > 0. Received: attention_p={self.attention_p}")
        check(self.ce_on in CE_TARGETS,
               f"`ce_on` must be one of {CE_TARGETS}. Received: ce_on={self.ce_on!r}")

    def build(self):
        """The `Defense` object of the registry."""
        return get_defense(self.name, alpha=self.alpha, beta=self.beta, ce_on=self.ce_on,
                           attention_groups=tuple(self.attention_groups), p=self.attention_p)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to optimise and where to write.

    learning_rate is the peak rate; "cosine" decays it to 0 over the run,
    "step" multiplies it by 0.1 at 50% and 75% of the run; `warmup_epochs`
    ramps it linearly from 0 first.
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
    attack_jit_compile: bool = False
    strategy: str = "default"
    tpu: str = ""
    steps_per_execution: int = 1
    steps_per_epoch: int | None = None
    eval_pgd_iterations: int = 0
    export_saved_model: bool = True

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
        check(self.eval_pgd_iterations >= 0,
               "`eval_pgd_iterations` must be >= 0. "
               f"Received: eval_pgd_iterations={self.eval_pgd_iterations}")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything one training run needs, checked across fields."""

    data: DataConfig
    model: ModelConfig
    defense: DefenseConfig
    attack: PGDConfig
    train: TrainConfig

    def __post_init__(self):
        check(self.model.image_size == self.data.image_size,
               "The model and data image sizes differ: "
               f"{self.model.image_size} and {self.data.image_size}")
        check(self.attack.step_size <= self.attack.epsilon or self.attack.epsilon == 0,
               f"`step_size` must be <= `epsilon`. Received: step_size={self.attack.step_size}, "
               f"epsilon={self.attack.epsilon}")
        if self.defense.build().adversarial_training:
            check(self.attack.iterations >= 1 and self.attack.epsilon > 0,
                   f"Defense {self.defense.name!r} trains on PGD examples: `pgd_iterations` "
                   f"and `epsilon` must be > 0. Received: pgd_iterations="
                   f"{self.attack.iterations}, epsilon={self.attack.epsilon}")
        check(self.attack.restarts == 1,
               f"Training uses one PGD start. Received: restarts={self.attack.restarts}")
        check(not (self.train.mixed_precision == "mixed_float16"
                    and self.train.strategy == "tpu"),
               "`mixed_float16` is not supported on TPU; use mixed_bfloat16.")

    @property
    def eval_attack(self) -> PGDConfig | None:
        """The PGD run on the validation set after each epoch, if any."""
        if not self.train.eval_pgd_iterations:
            return None
        return dataclasses.replace(self.attack, iterations=self.train.eval_pgd_iterations,
                                   training=False)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict) -> "RunConfig":
        defense = dict(values["defense"])
        defense["attention_groups"] = tuple(defense["attention_groups"])
        return cls(data=DataConfig(**values["data"]), model=ModelConfig(**values["model"]),
                   defense=DefenseConfig(**defense), attack=PGDConfig(**values["attack"]),
                   train=TrainConfig(**values["train"]))


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


# ---------------------------------------------------------------- flags


def define_train_flags() -> None:
    """Declares the training flags (once per process)."""
    if "defense" in flags.FLAGS:
        return
    # Data.
    flags.DEFINE_string("dataset", "synthetic",
                        "synthetic, flowers17, imagenet4, dogs_vs_cats, folder or tfds:<name>.")
    flags.DEFINE_string("data_dir", None, "Image folder (folder source) or TFDS data_dir.")
    flags.DEFINE_enum("data_source", "auto", ["auto", "folder", "tfds"],
                      "Where the images come from; auto: folder unless dataset is tfds:*.")
    flags.DEFINE_string("manual_dir", None, "TFDS manual_dir for our own builders.")
    flags.DEFINE_integer("image_size", 32, "Side of the square input images, pixels.",
                         lower_bound=32)
    flags.DEFINE_bool("augment", True, "Random crop and flip on training images.")
    flags.DEFINE_bool("cache", True, "Cache decoded images in memory.")
    flags.DEFINE_bool("skip_corrupt", False, "Skip undecodable image files (with a warning).")
    flags.DEFINE_integer("synthetic_train_size", 2048, "Synthetic training examples.",
                         lower_bound=1)
    flags.DEFINE_integer("synthetic_test_size", 512, "Synthetic test examples.", lower_bound=1)
    flags.DEFINE_integer("synthetic_num_classes", 4, "Synthetic classes.", lower_bound=2,
                         upper_bound=16)
    # Model.
    flags.DEFINE_enum("architecture", "resnet", list(ARCHITECTURES),
                      "resnet: our builder; applications: keras.applications ResNet50/101/152.")
    flags.DEFINE_integer("depth", 18, f"ResNet depth, one of {DEPTHS}.")
    flags.DEFINE_integer("width", 64, "Channels of conv2_x (64 in the standard ResNet).",
                         lower_bound=1)
    flags.DEFINE_enum("stem", "auto", ["auto", "imagenet", "cifar"],
                      "ResNet stem; auto: cifar (3x3, no pool) below 96 px.")
    flags.DEFINE_string("weights_path", None,
                        "Local backbone weights for architecture=applications.")
    # Defense.
    flags.DEFINE_enum("defense", "at_alp", list(defense_names()), "The training defense.")
    flags.DEFINE_float("alpha", DEFAULT_ALPHA, "Weight of the logit-pairing loss (ALP).",
                       lower_bound=0.0)
    flags.DEFINE_float("beta", DEFAULT_BETA, "Weight of the attention-pairing loss (AT).",
                       lower_bound=0.0)
    flags.DEFINE_list("attention_groups", list(GROUPS), "Conv groups paired by AT.")
    flags.DEFINE_float("attention_p", 2.0, "Norm of the attention-map difference (eq. 4).")
    flags.DEFINE_enum("ce_on", "adversarial", list(CE_TARGETS),
                      "Cross-entropy on adversarial, clean, or both (mixed) batches.")
    # Training attack (PGD).
    flags.DEFINE_float("epsilon", 8 / 255, "L-inf radius of training PGD, pixel units [0, 1].",
                       lower_bound=0.0, upper_bound=1.0)
    flags.DEFINE_float("step_size", 2 / 255, "PGD step size, pixel units.", lower_bound=0.0,
                       upper_bound=1.0)
    flags.DEFINE_integer("pgd_iterations", 7, "PGD steps per training batch.", lower_bound=0)
    flags.DEFINE_bool("random_start", True, "PGD starts at a random point of the ball.")
    flags.DEFINE_enum("pgd_objective", "cross_entropy", list(OBJECTIVES),
                      "What training PGD maximises.")
    flags.DEFINE_bool("attack_batchnorm_training", False,
                      "Run training PGD with BatchNorm in training mode.")
    flags.DEFINE_integer("eval_pgd_iterations", 0,
                         "If > 0, PGD steps of a validation attack after each epoch.",
                         lower_bound=0)
    # Optimisation.
    flags.DEFINE_integer("epochs", 10, "Training epochs.", lower_bound=1)
    flags.DEFINE_integer("batch_size", 64, "Global batch size.", lower_bound=1)
    flags.DEFINE_integer("steps_per_epoch", None, "Limit the steps of each epoch.",
                         lower_bound=1)
    flags.DEFINE_enum("optimizer", "sgd", list(OPTIMIZERS), "The optimizer.")
    flags.DEFINE_float("learning_rate", 0.1, "Peak learning rate.")
    flags.DEFINE_enum("lr_schedule", "cosine", list(SCHEDULES), "Learning-rate schedule.")
    flags.DEFINE_float("warmup_epochs", 0.0, "Linear warm-up, epochs.", lower_bound=0.0)
    flags.DEFINE_float("momentum", 0.9, "SGD momentum.")
    flags.DEFINE_float("weight_decay", 5e-4, "Decoupled weight decay (0: none).",
                       lower_bound=0.0)
    flags.DEFINE_integer("seed", 0, "Random seed of weights, data order and attacks.",
                         lower_bound=0)
    # Execution.
    flags.DEFINE_enum("mixed_precision", AUTO, list(PRECISIONS),
                      "Compute dtype policy; losses stay float32. auto: mixed_bfloat16 where "
                      "the hardware computes bf16 natively (TPU, GPU >= 8.0, CPU with AMX or "
                      "AVX512-BF16), else float32.")
    flags.DEFINE_bool("jit_compile", False, "Compile the train step with XLA.")
    flags.DEFINE_bool("attack_jit_compile", False, "Compile the PGD loop with XLA.")
    flags.DEFINE_enum("strategy", "default", list(STRATEGIES), "tf.distribute strategy.")
    flags.DEFINE_string("tpu", "", "TPU name or address for strategy=tpu.")
    flags.DEFINE_integer("steps_per_execution", 1, "Train steps per tf.function call.",
                         lower_bound=1)
    flags.DEFINE_string("model_dir", None, "Where checkpoints, logs and models go.")
    flags.DEFINE_bool("export_saved_model", True, "Write a SavedModel for serving.")
    flags.mark_flag_as_required("model_dir")


def run_config_from_flags(values=None) -> RunConfig:
    """Builds and checks the `RunConfig` from parsed flags (default: absl's FLAGS).

    `num_classes` is left at its default here; `tf_atalp.training.run` fills it
    in from the dataset.
    """
    f = values or flags.FLAGS
    data = DataConfig(
        dataset=f.dataset, data_dir=f.data_dir, source=f.data_source, image_size=f.image_size,
        batch_size=f.batch_size, augment=f.augment, cache=f.cache, skip_corrupt=f.skip_corrupt,
        seed=f.seed, manual_dir=f.manual_dir, synthetic_train_size=f.synthetic_train_size,
        synthetic_test_size=f.synthetic_test_size,
        synthetic_num_classes=f.synthetic_num_classes)
    model = ModelConfig(architecture=f.architecture, depth=f.depth, width=f.width, stem=f.stem,
                        image_size=f.image_size, weights_path=f.weights_path)
    defense = DefenseConfig(name=f.defense, alpha=f.alpha, beta=f.beta,
                            attention_groups=tuple(f.attention_groups),
                            attention_p=f.attention_p, ce_on=f.ce_on)
    attack = PGDConfig(epsilon=f.epsilon, step_size=f.step_size, iterations=f.pgd_iterations,
                       random_start=f.random_start, objective=f.pgd_objective,
                       training=f.attack_batchnorm_training)
    train = TrainConfig(
        model_dir=f.model_dir, epochs=f.epochs, optimizer=f.optimizer,
        learning_rate=f.learning_rate, lr_schedule=f.lr_schedule,
        warmup_epochs=f.warmup_epochs, momentum=f.momentum, weight_decay=f.weight_decay,
        seed=f.seed, mixed_precision=f.mixed_precision, jit_compile=f.jit_compile,
        attack_jit_compile=f.attack_jit_compile, strategy=f.strategy, tpu=f.tpu,
        steps_per_execution=f.steps_per_execution, steps_per_epoch=f.steps_per_epoch,
        eval_pgd_iterations=f.eval_pgd_iterations, export_saved_model=f.export_saved_model)
    return RunConfig(data=data, model=model, defense=defense, attack=attack, train=train)
