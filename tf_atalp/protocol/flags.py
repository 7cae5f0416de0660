"""eval_main.py's `--protocol=paper` flags, turned once into a `ProtocolConfig`.

The evaluation flags shared with a single evaluation keep their meaning:
--epsilons (default here: the paper's 0.25 and 0.5), --iterations (the
paper setting's scored counts; default here 10, 20, ..., 200), --step_size
(the paper setting's step), --batch_size, --max_examples, --seed,
--drop_broken, --dataset, --data_dir, --eot_samples, --random_draws.
"""

from absl import flags

from tf_atalp.evaluation.config import PAPER_EPSILONS
from tf_atalp.evaluation.flags import parse_numbers
from tf_atalp.protocol.settings import (
    PAPER_SWEEP, STRONG_ITERATIONS, STRONG_STEP_FACTOR, ProtocolConfig, paper_setting,
    strong_setting)

PROTOCOLS = ("none", "paper")


def define_protocol_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Declares the protocol flags in `flag_values` (once)."""
    if "protocol" in flag_values:
        return
    define = dict(flag_values=flag_values)
    flags.DEFINE_enum("protocol", "none", list(PROTOCOLS),
                      "paper: the paper's experiments over --targets and the sources, into "
                      "--output_dir (Table 1, Figures 3, 4, 6, Table 2, report.md); none: "
                      "evaluate --model_dir.", **define)
    flags.DEFINE_list("targets", [], "Protocol: the defended model_dirs (Table 1's rows).",
                      **define)
    flags.DEFINE_list("gray_box_sources", [], "Protocol: model_dirs of the targets' "
                      "architecture, trained separately (e.g. undefended, another seed).",
                      **define)
    flags.DEFINE_list("black_box_sources", [], "Protocol: model_dirs of another (deeper) "
                      "architecture.", **define)
    flags.DEFINE_list("same_defense_sources", [], "Protocol: gray-box sources scored only "
                      "on the targets trained with the same defense.", **define)
    flags.DEFINE_list("paired_sources", [], "Protocol: TARGET_DIR:SOURCE_DIR pairs; the "
                      "source (the target's architecture and defense, other weights: the "
                      "paper's gray-box attacker) is scored on that target only.", **define)
    flags.DEFINE_list("figure_targets", [], "Protocol: the targets (folder names) drawn in "
                      "Figures 3, 4 and 6 (default: all).", **define)
    flags.DEFINE_string("output_dir", None, "Protocol: where cells, tables, figures and "
                        "report.md go (a rerun resumes the finished cells).", **define)
    flags.DEFINE_bool("paper_random_start", False,
                      "Protocol: start the paper setting's PGD at a random point of the ball.",
                      **define)
    flags.DEFINE_integer("strong_iterations", STRONG_ITERATIONS,
                         "Protocol: the strong setting's run length.", **define)
    flags.DEFINE_float("strong_step_factor", STRONG_STEP_FACTOR,
                       "Protocol: strong step = factor x epsilon / iterations.", **define)
    flags.DEFINE_integer("strong_restarts", 1, "Protocol: the strong setting's white-box "
                         "restarts.", **define)
    flags.DEFINE_integer("figure_images", 4, "Protocol: test images drawn in Figure 4.",
                         **define)
    flags.DEFINE_float("figure_epsilon", 0.25, "Protocol: Figure 4's attack radius.", **define)
    flags.DEFINE_integer("landscape_grid", 21, "Protocol: Figure 6's points per axis (0: "
                         "none).", **define)
    flags.DEFINE_float("landscape_radius", None, "Protocol: Figure 6's half-width; default: "
                       "the smallest epsilon.", **define)
    flags.DEFINE_string("masks_dir", None, "Protocol: key-region masks mirroring the image "
                        "folder (Table 2).", **define)


def _pair(text: str) -> tuple[str, str]:
    """"TARGET_DIR:SOURCE_DIR" -> (target, source)."""
    target, separator, source = text.partition(":")
    if not separator or not target or not source:
        raise ValueError("`paired_sources` entries must be TARGET_DIR:SOURCE_DIR. "
                         f"Received: {text!r}")
    return target, source


def protocol_config_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> ProtocolConfig:
    """The `ProtocolConfig` of parsed flags (checks every field; raises ValueError)."""
    f = flag_values
    if not f.output_dir:
        raise ValueError("`output_dir` must be set with --protocol=paper.")
    iterations = (parse_numbers("iterations", f.iterations, int)
                  if f["iterations"].present else PAPER_SWEEP)
    epsilons = (parse_numbers("epsilons", f.epsilons, float)
                if f.epsilons is not None else PAPER_EPSILONS)
    settings = (paper_setting(iterations, f.step_size, f.paper_random_start),
                strong_setting(f.strong_iterations, f.strong_step_factor, f.strong_restarts))
    return ProtocolConfig(
        targets=tuple(f.targets), output_dir=f.output_dir,
        gray_box_sources=tuple(f.gray_box_sources), black_box_sources=tuple(f.black_box_sources),
        same_defense_sources=tuple(f.same_defense_sources),
        paired_sources=tuple(_pair(text) for text in f.paired_sources),
        figure_targets=tuple(f.figure_targets) or None, epsilons=epsilons,
        settings=settings, max_examples=f.max_examples, batch_size=f.batch_size, seed=f.seed,
        drop_broken=f.drop_broken, dataset=f.dataset, data_dir=f.data_dir,
        eot_samples=f.eot_samples, random_draws=f.random_draws,
        figure_images=f.figure_images, figure_epsilon=f.figure_epsilon,
        landscape_grid=f.landscape_grid, landscape_radius=f.landscape_radius,
        masks_dir=f.masks_dir)
