"""study_main.py's flags, turned once into a `StudyConfig`.

    --train_flags=--flagfile=configs/flowers17_cpu.flags   (repeatable: every run's flags)
    --defenses=none,pat,at_alp,pat_awp                      (Table 1's rows, in order)
    --entry_flags=pat_awp:--defense=pat                     (repeatable: LABEL:FLAG)
    --entry_flags=pat_awp:--awp_gamma=0.005
    --black_box=resnet18_none,resnet18_pat
    --entry_flags=resnet18_none:--defense=none --entry_flags=resnet18_none:--depth=18

An entry whose flags set no --defense trains the defense named by its label.
"""

from absl import flags

from tf_atalp.evaluation.flags import parse_numbers
from tf_atalp.protocol.settings import PAPER_SWEEP, STRONG_ITERATIONS
from tf_atalp.study.config import GRAY_BOX_MODES, Entry, StudyConfig


# Flags that say what to do with a study, not what it is: left out of its recorded flagfile.
ACTION_FLAGS = ("plan_only", "report_only")


def define_study_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Declares the study flags in `flag_values` (once)."""
    if "study_dir" in flag_values:
        return
    define = dict(flag_values=flag_values)
    flags.DEFINE_string("study_name", None, "The study's name (the report's title).", **define)
    flags.DEFINE_string("study_dir", None, "The folder the study writes: runs/, logs/ (never "
                        "committed) and report/ (committed). A rerun resumes.", **define)
    flags.DEFINE_multi_string("train_flags", [], "A train_main flag of every run (repeat "
                              "the flag; e.g. --train_flags=--flagfile=configs/x.flags).",
                              **define)
    flags.DEFINE_list("defenses", [], "The targets' entry labels (Table 1's rows), in order.",
                      **define)
    flags.DEFINE_multi_string("entry_flags", [], "LABEL:--flag=value, a train_main flag of "
                              "one entry (repeat the flag).", **define)
    flags.DEFINE_list("seeds", ["0", "1", "2"], "The targets' seeds.", **define)
    flags.DEFINE_enum("gray_box", "paired", list(GRAY_BOX_MODES), "paired: seed s is "
                      "attacked with images crafted on the same entry's next seed (the "
                      "paper's gray-box attacker); none: no gray-box threat model.", **define)
    flags.DEFINE_list("black_box", [], "Entry labels of the black-box sources (another "
                      "architecture), trained once with the first seed.", **define)
    flags.DEFINE_string("reference", "at_alp", "The entry compared with every other.",
                        **define)
    flags.DEFINE_list("epsilons", None, "Radii of the protocol and AutoAttack (default: "
                      "the training epsilon, 0.25 and 0.5).", **define)
    flags.DEFINE_list("paper_iterations", [str(k) for k in PAPER_SWEEP],
                      "The paper setting's scored PGD counts.", **define)
    flags.DEFINE_integer("strong_iterations", STRONG_ITERATIONS,
                         "The strong setting's PGD run length.", lower_bound=1, **define)
    flags.DEFINE_enum("autoattack_version", "standard", ["standard", "plus", "custom"],
                      "AutoAttack on deterministic targets (randomized ones: rand).", **define)
    flags.DEFINE_list("autoattack_attacks", [], "The attacks of --autoattack_version=custom "
                      "(e.g. apgd-ce,fab,square on 2 classes, where DLR is undefined).", **define)
    flags.DEFINE_list("rand_attacks", [], "The attacks of AutoAttack rand on randomized "
                      "targets (default: apgd-ce,apgd-dlr).", **define)
    flags.DEFINE_integer("autoattack_iterations", 100, "APGD and FAB steps in AutoAttack.",
                         lower_bound=1, **define)
    flags.DEFINE_integer("square_queries", 5000, "Square's queries in AutoAttack.",
                         lower_bound=1, **define)
    flags.DEFINE_integer("max_examples", None, "A class-balanced subset of the test split.",
                         lower_bound=1, **define)
    flags.DEFINE_integer("eval_batch_size", 64, "Evaluation batch size.", lower_bound=1,
                         **define)
    flags.DEFINE_integer("eot_samples", 10, "Randomized targets, white-box PGD: draws per "
                         "gradient and prediction.", lower_bound=1, **define)
    flags.DEFINE_integer("random_draws", 1, "Randomized targets, white-box PGD: repetitions.",
                         lower_bound=1, **define)
    flags.DEFINE_integer("figure_seed", None, "The seed whose targets the figures draw "
                         "(default: the first).", **define)
    flags.DEFINE_integer("bootstrap_samples", 2000, "Resamples of the bootstrap intervals.",
                         lower_bound=1, **define)
    flags.DEFINE_list("run_first", [], "Entries to train and evaluate before the others, in "
                      "this order (then the reference, then the rest): what a study cut "
                      "short has done first.", **define)
    flags.DEFINE_bool("plan_only", False, "Check everything, print the cells and the time "
                      "estimate, and stop.", **define)
    flags.DEFINE_bool("report_only", False, "Run no cell: rewrite the report folder from the "
                      "cells already recorded (e.g. after an update of the report's code), "
                      "and stop.", **define)


def _entry_flags(values: list[str], labels: list[str]) -> dict[str, list[str]]:
    by_label = {label: [] for label in labels}
    for text in values:
        label, separator, flag = text.partition(":")
        if not separator or not flag.startswith("--"):
            raise ValueError(f"`entry_flags` entries must be LABEL:--flag=value. Received: "
                             f"{text!r}")
        if label not in by_label:
            raise ValueError(f"`entry_flags` names {label!r}, which is not in --defenses or "
                             f"--black_box ({labels}).")
        by_label[label].append(flag)
    return by_label


def _entries(labels: list[str], by_label: dict[str, list[str]]) -> tuple[Entry, ...]:
    entries = []
    for label in labels:
        own = by_label[label]
        if not any(flag.startswith("--defense=") for flag in own):
            own = [f"--defense={label}", *own]
        entries.append(Entry(label, tuple(own)))
    return tuple(entries)


def study_config_from_flags(f: flags.FlagValues = flags.FLAGS) -> StudyConfig:
    """The `StudyConfig` of parsed flags; raises ValueError naming the first problem."""
    if not f.study_dir:
        raise ValueError("`study_dir` must be set.")
    labels = list(f.defenses) + list(f.black_box)
    by_label = _entry_flags(f.entry_flags, labels)
    seeds = parse_numbers("seeds", list(f.seeds), int)
    epsilons = parse_numbers("epsilons", list(f.epsilons), float) if f.epsilons else None
    return StudyConfig(
        name=f.study_name or f.study_dir.rstrip("/").split("/")[-1], study_dir=f.study_dir,
        train_flags=tuple(f.train_flags), entries=_entries(list(f.defenses), by_label),
        seeds=seeds, gray_box=f.gray_box, black_box=_entries(list(f.black_box), by_label),
        reference=f.reference, epsilons=epsilons,
        paper_iterations=parse_numbers("paper_iterations", list(f.paper_iterations), int),
        strong_iterations=f.strong_iterations, autoattack_version=f.autoattack_version,
        autoattack_iterations=f.autoattack_iterations, square_queries=f.square_queries,
        autoattack_attacks=tuple(f.autoattack_attacks), rand_attacks=tuple(f.rand_attacks),
        max_examples=f.max_examples, eval_batch_size=f.eval_batch_size,
        eot_samples=f.eot_samples, random_draws=f.random_draws, figure_seed=f.figure_seed,
        bootstrap_samples=f.bootstrap_samples, run_first=tuple(f.run_first))
