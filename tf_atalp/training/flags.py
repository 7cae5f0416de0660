"""The train_main.py flags, turned once into a `RunConfig` (which checks them all).

`define_train_flags()` declares every training flag (single-flag validation
happens in the flag definitions); `run_config_from_flags()` builds the
`RunConfig`, whose `__post_init__` checks the rules between fields.
"""

from absl import flags

from tf_atalp.attacks.objectives import OBJECTIVES
from tf_atalp.attacks.pgd import PGD
from tf_atalp.data.config import DataConfig
from tf_atalp.data.images import RESIZE_MODES
from tf_atalp.defenses import CE_TARGETS, DEFAULT_ALPHA, DEFAULT_BETA, defense_names, get_defense
from tf_atalp.models import DEPTHS, GROUP_NAMES, MIN_IMAGE_SIZE, STEMS
from tf_atalp.defenses.ensemble_diversity import (
    DEFAULT_ENTROPY_WEIGHT, DEFAULT_LOG_DET_WEIGHT, DEFAULT_MEMBERS)
from tf_atalp.defenses.fast_training import DEFAULT_FGSM_STEP, DEFAULT_FREE_REPLAYS
from tf_atalp.defenses.gradient_regularization import DEFAULT_IGR_LAMBDA
from tf_atalp.defenses.mart import DEFAULT_MART_LAMBDA
from tf_atalp.defenses.randomized import DEFAULT_NOISE_DISTRIBUTION, DEFAULT_NOISE_SCALE
from tf_atalp.defenses.trades import DEFAULT_TRADES_BETA
from tf_atalp.defenses.weight_perturbation import DEFAULT_AWP_GAMMA
from tf_atalp.models.denoising import NONLOCAL_MODES
from tf_atalp.models.layers import NOISE_DISTRIBUTIONS
from tf_atalp.models.randomization import DEFAULT_SIZE_RATIO, INTERPOLATIONS
from tf_atalp.training.config import (
    ARCHITECTURES, OPTIMIZERS, ModelConfig, RunConfig, TrainConfig)
from tf_atalp.training.precision import AUTO, PRECISIONS
from tf_atalp.training.schedules import SCHEDULES
from tf_atalp.training.strategy import STRATEGIES


def define_train_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Declares the training flags in `flag_values` (once; default: absl's FLAGS)."""
    if "defense" in flag_values:
        return
    define = dict(flag_values=flag_values)
    # Data.
    flags.DEFINE_string("dataset", "synthetic",
                        "synthetic, flowers17, imagenet4, dogs_vs_cats, folder or tfds:<name>.", **define)
    flags.DEFINE_string("data_dir", None, "Image folder (folder source) or TFDS data_dir.", **define)
    flags.DEFINE_enum("data_source", "auto", ["auto", "folder", "tfds"],
                      "Where the images come from; auto: folder unless dataset is tfds:*.", **define)
    flags.DEFINE_string("manual_dir", None, "TFDS manual_dir for our own builders.", **define)
    flags.DEFINE_integer("image_size", 32, "Side of the square input images, pixels.",
                         lower_bound=MIN_IMAGE_SIZE, **define)
    flags.DEFINE_enum("resize", "squash", list(RESIZE_MODES),
                      "squash: resize every image to image_size x image_size; keep_aspect: "
                      "resize the short side, then crop (random in training, centre in test).", **define)
    flags.DEFINE_bool("augment", True, "Random crop and flip on training images.", **define)
    flags.DEFINE_bool("cache", True, "Cache decoded images in memory.", **define)
    flags.DEFINE_bool("skip_corrupt", False, "Skip undecodable image files (with a warning).", **define)
    flags.DEFINE_bool("data_autotune", False,
                      "tf.data autotuning (off: on 2 CPU cores it made fit wait idle after "
                      "some epochs).", **define)
    flags.DEFINE_integer("synthetic_train_size", 2048, "Synthetic training examples.",
                         lower_bound=1, **define)
    flags.DEFINE_integer("synthetic_test_size", 512, "Synthetic test examples.", lower_bound=1, **define)
    flags.DEFINE_integer("synthetic_num_classes", 4, "Synthetic classes.", lower_bound=2,
                         upper_bound=16, **define)
    # Model.
    flags.DEFINE_enum("architecture", "resnet", list(ARCHITECTURES),
                      "resnet: our builder; applications: keras.applications ResNet50/101/152.", **define)
    flags.DEFINE_integer("depth", 18, f"ResNet depth, one of {DEPTHS}.", **define)
    flags.DEFINE_integer("width", 64, "Channels of conv2_x (64 in the standard ResNet).",
                         lower_bound=1, **define)
    flags.DEFINE_enum("stem", "auto", list(STEMS),
                      "ResNet stem; auto: cifar (3x3, no pool) below 96 px.", **define)
    flags.DEFINE_string("weights_path", None,
                        "Local backbone weights for architecture=applications.", **define)
    # Defense.
    flags.DEFINE_enum("defense", "at_alp", list(defense_names()), "The training defense.", **define)
    flags.DEFINE_float("alpha", DEFAULT_ALPHA, "Weight of the logit-pairing loss (ALP).",
                       lower_bound=0.0, **define)
    flags.DEFINE_float("beta", DEFAULT_BETA, "Weight of the attention-pairing loss (AT).",
                       lower_bound=0.0, **define)
    flags.DEFINE_list("attention_groups", list(GROUP_NAMES), "Conv groups paired by AT.", **define)
    flags.DEFINE_float("attention_p", 2.0, "Norm of the attention-map difference (eq. 4).", **define)
    flags.DEFINE_enum("ce_on", "adversarial", list(CE_TARGETS),
                      "Cross-entropy on adversarial, clean, or both (mixed) batches.", **define)
    flags.DEFINE_list("denoise_groups", list(GROUP_NAMES),
                      "fd: the conv groups followed by a non-local denoising block.", **define)
    flags.DEFINE_enum("denoise_mode", "embedded_gaussian", list(NONLOCAL_MODES),
                      "fd: the denoising blocks' affinity (Xie et al.'s code: embedded_gaussian).", **define)
    flags.DEFINE_float("igr_lambda", DEFAULT_IGR_LAMBDA,
                       "igr: weight of the squared input-gradient norm (Ross & Doshi-Velez's "
                       "MNIST choice, converted to a per-example mean).", lower_bound=0.0, **define)
    flags.DEFINE_enum("noise_distribution", DEFAULT_NOISE_DISTRIBUTION, list(NOISE_DISTRIBUTIONS),
                      "rat: the input noise, drawn at training and inference.", **define)
    flags.DEFINE_float("noise_scale", DEFAULT_NOISE_SCALE,
                       "rat: noise stddev (gaussian), scale (laplace) or half-width (uniform), "
                       "pixel units.", lower_bound=0.0, upper_bound=1.0, **define)
    flags.DEFINE_float("size_ratio", DEFAULT_SIZE_RATIO,
                       "randomization: padded size / image size (Xie et al.: 331/299).", **define)
    flags.DEFINE_enum("resize_interpolation", "nearest", list(INTERPOLATIONS),
                      "randomization: how the image is resized (Xie et al.: nearest).", **define)
    flags.DEFINE_integer("members", DEFAULT_MEMBERS, "adp: ensemble members.", lower_bound=2, **define)
    flags.DEFINE_float("adp_alpha", DEFAULT_ENTROPY_WEIGHT,
                       "adp: weight of the ensemble entropy (Pang et al.'s code: 2).",
                       lower_bound=0.0, **define)
    flags.DEFINE_float("adp_beta", DEFAULT_LOG_DET_WEIGHT,
                       "adp: weight of the log-determinant (Pang et al.'s code: 0.5).",
                       lower_bound=0.0, **define)
    flags.DEFINE_float("trades_beta", DEFAULT_TRADES_BETA,
                       "trades: weight of KL(clean || adversarial) (Zhang et al.'s code: 6).",
                       lower_bound=0.0, **define)
    flags.DEFINE_float("mart_lambda", DEFAULT_MART_LAMBDA,
                       "mart: weight of the misclassification-weighted KL (Wang et al.'s "
                       "ResNet-18 script: 5).", lower_bound=0.0, **define)
    flags.DEFINE_float("fgsm_step", DEFAULT_FGSM_STEP,
                       "fast_at: the FGSM step as a multiple of epsilon (Wong et al.: 1.25).", **define)
    flags.DEFINE_float("grad_align_lambda", 0.0,
                       "fast_at: weight of GradAlign (Andriushchenko & Flammarion: 0.2 at "
                       "8/255), which prevents catastrophic overfitting. 0: off.",
                       lower_bound=0.0, **define)
    flags.DEFINE_integer("free_replays", DEFAULT_FREE_REPLAYS,
                         "free_at: replays m of each minibatch (Shafahi et al.: 8); the run "
                         "trains ceil(epochs / m) epochs.", lower_bound=2, **define)
    flags.DEFINE_float("awp_gamma", 0.0,
                       "Adversarial weight perturbation (Wu et al.) of this relative size "
                       f"around any adversarially trained defense ({DEFAULT_AWP_GAMMA:g} is the "
                       "authors'). 0: off.", lower_bound=0.0, upper_bound=1.0, **define)
    # Training attack (PGD).
    flags.DEFINE_float("epsilon", 8 / 255, "L-inf radius of training PGD, pixel units [0, 1].",
                       lower_bound=0.0, upper_bound=1.0, **define)
    flags.DEFINE_float("step_size", 2 / 255, "PGD step size, pixel units.", lower_bound=0.0,
                       upper_bound=1.0, **define)
    flags.DEFINE_integer("pgd_iterations", 7, "PGD steps per training batch.", lower_bound=0, **define)
    flags.DEFINE_bool("random_start", True, "PGD starts at a random point of the ball.", **define)
    flags.DEFINE_enum("pgd_objective", "cross_entropy", list(OBJECTIVES),
                      "What training PGD maximises.", **define)
    flags.DEFINE_bool("attack_batchnorm_training", False,
                      "Run training PGD with BatchNorm in training mode.", **define)
    flags.DEFINE_integer("eval_pgd_iterations", 0,
                         "If > 0, PGD steps of a validation attack after each epoch.",
                         lower_bound=0, **define)
    flags.DEFINE_integer("robust_accuracy_every", 5,
                         "Every N epochs and after the last, white-box PGD accuracy on "
                         "held-out test images (val_robust_accuracy in the logs, nan in "
                         "history.csv on the other epochs; the training epsilon and step). "
                         "1: every epoch (about 24% of a 17 Flowers epoch at the defaults). "
                         "0: off.", lower_bound=0, **define)
    flags.DEFINE_integer("robust_accuracy_examples", 256,
                         "Test images the robust accuracy is measured on: a class-balanced "
                         "subset of the test split, chosen once.", lower_bound=1, **define)
    flags.DEFINE_integer("robust_accuracy_iterations", 10,
                         "PGD steps of the robust-accuracy attack.", lower_bound=1, **define)
    flags.DEFINE_bool("overfitting_check", None,
                      "After every epoch, PGD accuracy on a held-out class-balanced batch; a "
                      "drop of more than 0.2 from the previous epoch is reported as "
                      "catastrophic overfitting (log and train_results.json). Default: on for "
                      "single-step defenses (fast_at, free_at).", **define)
    flags.DEFINE_integer("attention_maps_every", 1,
                         "Every N epochs, clean and adversarial attention maps of a few test "
                         "images to TensorBoard (logs/attention). 0: off.", lower_bound=0,
                         **define)
    flags.DEFINE_integer("attention_map_images", 8,
                         "Test images drawn by attention maps: classes take turns, so N "
                         "different classes where there are N or more.", lower_bound=1,
                         **define)
    # Optimisation.
    flags.DEFINE_integer("epochs", 10, "Training epochs.", lower_bound=1, **define)
    flags.DEFINE_integer("batch_size", 64, "Global batch size.", lower_bound=1, **define)
    flags.DEFINE_integer("steps_per_epoch", None, "Limit the steps of each epoch.",
                         lower_bound=1, **define)
    flags.DEFINE_enum("optimizer", "sgd", list(OPTIMIZERS), "The optimizer.", **define)
    flags.DEFINE_float("learning_rate", 0.1, "Peak learning rate.", **define)
    flags.DEFINE_enum("lr_schedule", "cosine", list(SCHEDULES), "Learning-rate schedule.", **define)
    flags.DEFINE_float("warmup_epochs", 0.0, "Linear warm-up, epochs.", lower_bound=0.0, **define)
    flags.DEFINE_float("momentum", 0.9, "SGD momentum.", **define)
    flags.DEFINE_float("weight_decay", 5e-4, "Decoupled weight decay (0: none).",
                       lower_bound=0.0, **define)
    flags.DEFINE_integer("seed", 0, "Random seed of weights, data order and attacks.",
                         lower_bound=0, **define)
    # Execution.
    flags.DEFINE_enum("mixed_precision", AUTO, list(PRECISIONS),
                      "Compute dtype policy; losses stay float32. auto: mixed_bfloat16 where "
                      "the hardware computes bf16 natively (TPU, GPU >= 8.0, CPU with AMX or "
                      "AVX512-BF16), else float32.", **define)
    flags.DEFINE_bool("jit_compile", False, "Compile the train step with XLA.", **define)
    flags.DEFINE_bool("attack_jit_compile", False, "Compile the PGD loop with XLA.", **define)
    flags.DEFINE_enum("strategy", "default", list(STRATEGIES), "tf.distribute strategy.", **define)
    flags.DEFINE_string("tpu", "", "TPU name or address for strategy=tpu.", **define)
    flags.DEFINE_integer("steps_per_execution", 1, "Train steps per tf.function call.",
                         lower_bound=1, **define)
    flags.DEFINE_string("model_dir", None, "Where checkpoints, logs and models go.", **define)
    flags.DEFINE_bool("export_saved_model", True, "Write a SavedModel for serving.", **define)
    flags.mark_flag_as_required("model_dir", **define)


def run_config_from_flags(values=None) -> RunConfig:
    """Builds and checks the `RunConfig` from parsed flags (default: absl's FLAGS).

    `num_classes` is left at its default here; `tf_atalp.training.run` fills it
    in from the dataset.
    """
    f = values or flags.FLAGS
    data = DataConfig(
        dataset=f.dataset, data_dir=f.data_dir, source=f.data_source, image_size=f.image_size,
        resize=f.resize,
        batch_size=f.batch_size, augment=f.augment, cache=f.cache, skip_corrupt=f.skip_corrupt,
        seed=f.seed, manual_dir=f.manual_dir, synthetic_train_size=f.synthetic_train_size,
        synthetic_test_size=f.synthetic_test_size,
        synthetic_num_classes=f.synthetic_num_classes, autotune=f.data_autotune)
    model = ModelConfig(architecture=f.architecture, depth=f.depth, width=f.width, stem=f.stem,
                        image_size=f.image_size, weights_path=f.weights_path)
    defense = get_defense(f.defense, alpha=f.alpha, beta=f.beta,
                          attention_groups=tuple(f.attention_groups), p=f.attention_p,
                          ce_on=f.ce_on, denoise_groups=tuple(f.denoise_groups),
                          denoise_mode=f.denoise_mode, igr_lambda=f.igr_lambda,
                          noise_distribution=f.noise_distribution, noise_scale=f.noise_scale,
                          size_ratio=f.size_ratio, interpolation=f.resize_interpolation,
                          members=f.members, entropy_weight=f.adp_alpha,
                          log_det_weight=f.adp_beta, trades_beta=f.trades_beta,
                          mart_lambda=f.mart_lambda, fgsm_step=f.fgsm_step,
                          grad_align_lambda=f.grad_align_lambda, replays=f.free_replays,
                          awp_gamma=f.awp_gamma)
    attack = PGD(epsilon=f.epsilon, step_size=f.step_size, iterations=f.pgd_iterations,
                 random_start=f.random_start, objective=f.pgd_objective,
                 jit_compile=f.attack_jit_compile)
    train = TrainConfig(
        # Free-AT trains ceil(epochs / m) epochs of m replays: the work of `epochs` clean ones.
        model_dir=f.model_dir, epochs=defense.epochs_to_run(f.epochs), optimizer=f.optimizer,
        learning_rate=f.learning_rate, lr_schedule=f.lr_schedule,
        warmup_epochs=f.warmup_epochs, momentum=f.momentum, weight_decay=f.weight_decay,
        seed=f.seed, mixed_precision=f.mixed_precision, jit_compile=f.jit_compile,
        attack_batchnorm_training=f.attack_batchnorm_training, strategy=f.strategy, tpu=f.tpu,
        steps_per_execution=f.steps_per_execution, steps_per_epoch=f.steps_per_epoch,
        eval_pgd_iterations=f.eval_pgd_iterations,
        robust_accuracy_every=f.robust_accuracy_every,
        robust_accuracy_examples=f.robust_accuracy_examples,
        robust_accuracy_iterations=f.robust_accuracy_iterations,
        attention_maps_every=f.attention_maps_every,
        attention_map_images=f.attention_map_images, export_saved_model=f.export_saved_model,
        overfitting_check=f.overfitting_check)
    return RunConfig(data=data, model=model, defense=defense, attack=attack, train=train)
