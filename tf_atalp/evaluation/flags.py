"""The eval_main.py flags, turned once into an `EvalConfig` (which checks them all)."""

from absl import flags

from tf_atalp.attacks.objectives import OBJECTIVES
from tf_atalp.data.config import SOURCES
from tf_atalp.data.datasets import SPLITS
from tf_atalp.evaluation.config import (
    ATTACKS, AUTOATTACK_COMPONENTS, AUTOATTACK_VERSIONS, PAPER_ITERATIONS, PAPER_STEP_SIZE,
    EvalConfig)
from tf_atalp.model_dir import EVAL_RESULTS_FILE


def define_eval_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Declares the evaluation flags in `flag_values` (once)."""
    if "epsilons" in flag_values:
        return
    define = dict(flag_values=flag_values)
    flags.DEFINE_string(
        "model_dir", None,
        "A training model_dir, a SavedModel folder or a .keras file.", **define)
    flags.DEFINE_string(
        "dataset", None, "The dataset (see train_main --dataset); default: the one the model "
        "was trained on, from run_config.json.", **define)
    flags.DEFINE_string("data_dir", None, "Image folder or TFDS data_dir; default: from "
                        "run_config.json unless --dataset is given.", **define)
    flags.DEFINE_enum("data_source", None, list(SOURCES),
                      "Where the images come from; default: from run_config.json or auto.",
                      **define)
    flags.DEFINE_enum("split", "test", list(SPLITS), "The split evaluated.", **define)
    flags.DEFINE_list("epsilons", None,
                      "L-inf radii, pixel units in [0, 1]; default: the paper's 0.25 and 0.5 "
                      "and the model's training epsilon.", **define)
    flags.DEFINE_list("iterations", [str(k) for k in PAPER_ITERATIONS],
                      "PGD step counts reported; one run of the largest.", **define)
    flags.DEFINE_float("step_size", PAPER_STEP_SIZE,
                       "PGD step, pixel units (the paper: 1/256).", **define)
    flags.DEFINE_integer("restarts", 1, "Random restarts per example (fab, fab-t: runs, the "
                         "first from the image).", **define)
    flags.DEFINE_bool("random_start", True, "Start PGD at a random point of the ball.",
                      **define)
    flags.DEFINE_enum("objective", "cross_entropy", list(OBJECTIVES),
                      "What PGD maximises.", **define)
    flags.DEFINE_enum("attack", "pgd", list(ATTACKS),
                      "The attack per epsilon: pgd; APGD (adaptive step) with the "
                      "cross-entropy, DLR or targeted-DLR (9 target classes) loss; FAB "
                      "(minimal perturbation counted within epsilon), untargeted (fab) or "
                      "towards 9 target classes (fab-t); square (gradient-free, --iterations "
                      "= queries); or autoattack (--version).", **define)
    flags.DEFINE_enum("version", "standard", list(AUTOATTACK_VERSIONS),
                      "AutoAttack's version: standard (APGD-CE, APGD-T, FAB-T, Square), plus "
                      "(APGD-CE, APGD-DLR, FAB with 5 restarts each, Square, APGD-T, FAB-T), "
                      "rand (APGD-CE, APGD-DLR with EoT; randomized models; "
                      "--autoattack_attacks replaces them) or custom (--autoattack_attacks).",
                      **define)
    flags.DEFINE_list("autoattack_attacks", [], "The custom version's attacks, or rand's "
                      "instead of APGD-CE and APGD-DLR, in order "
                      f"({', '.join(AUTOATTACK_COMPONENTS)}).", **define)
    flags.DEFINE_integer("autoattack_iterations", 100, "APGD and FAB steps in AutoAttack.",
                         **define)
    flags.DEFINE_integer("square_queries", 5000, "Square's queries in AutoAttack.", **define)
    flags.DEFINE_string("transfer_results", None,
                        "With --attack=autoattack: the protocol_results.json of a "
                        "--protocol=paper run in which this model is a target; flags every "
                        "epsilon where a transfer attack there beats white-box AutoAttack.",
                        **define)
    flags.DEFINE_integer("batch_size", 64, "Examples per batch.", **define)
    flags.DEFINE_integer("max_examples", None,
                         "Evaluate N examples of the split: a class-balanced subset (classes "
                         "take turns, in split order).", **define)
    flags.DEFINE_integer("seed", 0, "Seed of the random starts.", **define)
    flags.DEFINE_bool("drop_broken", True,
                      "Stop attacking an example once PGD has fooled the model (worst-iterate "
                      "and robust accuracy unchanged, faster; accuracy after k steps then "
                      "equals worst-iterate accuracy).", **define)
    flags.DEFINE_bool("jit_compile", False, "Compile the PGD loop with XLA.", **define)
    flags.DEFINE_integer("eot_samples", None,
                         "Draws averaged per gradient and prediction (EoT) for a randomized "
                         "model; default: 1, or 30 (Athalye et al.) when the model is "
                         "randomized.", **define)
    flags.DEFINE_integer("random_draws", None,
                         "Repeat the evaluation this many times with new random draws and "
                         "report mean and spread; default: 1, or 3 for a randomized model.",
                         **define)
    flags.DEFINE_string("transfer_from", None,
                        "Craft the PGD images on this model (a model_dir, SavedModel or .keras "
                        "file) and score them on --model_dir: gray-box if it has the same "
                        "architecture, black-box otherwise.", **define)
    flags.DEFINE_string("results_file", None, "The results JSON; default: "
                        f"<model_dir>/{EVAL_RESULTS_FILE} for a training model_dir.", **define)


def check_model_dir_given(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """--model_dir is required for a single evaluation (a protocol names its models)."""
    if flag_values.model_dir is None:
        raise ValueError("`model_dir` must be set (or use --protocol=paper with --targets).")


def parse_numbers(name: str, values: list[str], kind) -> tuple:
    try:
        return tuple(kind(v) for v in values)
    except ValueError:
        raise ValueError(
            f"`{name}` must be a comma-separated list of {kind.__name__} values. "
            f"Received: {name}={','.join(values)}") from None


def eval_config_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> EvalConfig:
    """Builds (and so checks, fields only) the `EvalConfig` from parsed flags; raises ValueError."""
    f = flag_values
    check_model_dir_given(f)
    return EvalConfig(
        model_dir=f.model_dir, dataset=f.dataset, data_dir=f.data_dir,
        data_source=f.data_source, split=f.split,
        epsilons=None if f.epsilons is None else parse_numbers("epsilons", f.epsilons, float),
        iterations=parse_numbers("iterations", f.iterations, int), step_size=f.step_size,
        restarts=f.restarts, random_start=f.random_start, objective=f.objective,
        attack=f.attack, autoattack_version=f.version,
        autoattack_attacks=tuple(f.autoattack_attacks),
        autoattack_iterations=f.autoattack_iterations, square_queries=f.square_queries,
        batch_size=f.batch_size, max_examples=f.max_examples, seed=f.seed,
        drop_broken=f.drop_broken,
        jit_compile=f.jit_compile, eot_samples=f.eot_samples, random_draws=f.random_draws,
        transfer_from=f.transfer_from, transfer_results=f.transfer_results,
        results_file=f.results_file)
