"""The study's evaluation cells: the paper protocol per entry, and AutoAttack per target.

Both run in the study's process through the same library calls as
eval_main.py, and each is recorded with the eval_main command that
reproduces it:

- the protocol of one entry (`eval_main.py --protocol=paper` on that
  entry's targets): white-box PGD (paper and strong settings) and FGSM on
  each of its seeds; gray-box PGD crafted on each target's paired source
  (the same entry, the next seed) and scored on that target; black-box PGD
  crafted on each black-box source and scored on the entry's targets. It
  needs only that entry's models and the black-box sources, so a study cut
  short keeps every entry it finished, even where its trained models are
  gone (a new machine). Its own cells resume inside it, in
  `protocol/<entry>/`.
- AutoAttack (`eval_main.py --attack=autoattack`) on each target at every
  epsilon: "standard" (APGD-CE on every image, then APGD-T, FAB-T and Square
  only on the images still robust) for deterministic targets, "rand" (EoT)
  for randomized ones.
"""

import os
import shlex

from tf_atalp.evaluation.config import EvalConfig
from tf_atalp.evaluation.preparation import prepare_evaluation
from tf_atalp.evaluation.run import run_evaluation
from tf_atalp.protocol.runner import RESULTS_FILE, prepare_protocol, run_protocol
from tf_atalp.protocol.settings import ProtocolConfig, paper_setting, strong_setting
from tf_atalp.study.config import StudyConfig
from tf_atalp.study.train_cells import BLACK_BOX, TARGET, TrainCell

PROTOCOL_DIR = "protocol"  # in the report folder
AUTOATTACK_DIR = "autoattack"  # in the report folder: one eval_main results file per target
EVAL_MAIN = "eval_main.py"
PROTOCOL_PREFIX = "protocol__"


def study_epsilons(config: StudyConfig, training_epsilon: float) -> tuple[float, ...]:
    """The study's radii: as configured, else the training radius, 0.25 and 0.5."""
    if config.epsilons is not None:
        return config.epsilons
    return tuple(sorted({training_epsilon, 0.25, 0.5}))


def protocol_key(label: str) -> str:
    """The study cell of entry `label`'s protocol."""
    return f"{PROTOCOL_PREFIX}{label}"


def protocol_config(config: StudyConfig, cells: list[TrainCell], epsilons: tuple[float, ...],
                    label: str) -> ProtocolConfig:
    """The protocol over entry `label`'s targets (paired gray-box sources, black-box sources),
    into the report's protocol/<label>/ folder."""
    targets = [c for c in cells if c.role == TARGET and c.label == label]
    by_seed = {c.seed: c for c in targets}
    pairs = ()
    if config.gray_box == "paired":
        pairs = tuple((c.model_dir, by_seed[config.source_seed(c.seed)].model_dir)
                      for c in targets)
    figure_seed = config.figure_seed if config.figure_seed is not None else config.seeds[0]
    return ProtocolConfig(
        targets=tuple(c.model_dir for c in targets),
        black_box_sources=tuple(c.model_dir for c in cells if c.role == BLACK_BOX),
        paired_sources=pairs,
        output_dir=os.path.join(config.report_dir, PROTOCOL_DIR, label), epsilons=epsilons,
        settings=(paper_setting(config.paper_iterations),
                  strong_setting(config.strong_iterations)),
        max_examples=config.max_examples, batch_size=config.eval_batch_size,
        eot_samples=config.eot_samples, random_draws=config.random_draws,
        figure_targets=tuple(c.name for c in targets if c.seed == figure_seed))


def protocol_command(protocol: ProtocolConfig) -> str:
    """The eval_main command that runs the same protocol."""
    setting, strong = protocol.settings
    argv = [EVAL_MAIN, "--protocol=paper", f"--targets={','.join(protocol.targets)}"]
    if protocol.black_box_sources:
        argv.append(f"--black_box_sources={','.join(protocol.black_box_sources)}")
    if protocol.paired_sources:
        argv.append("--paired_sources=" + ",".join(f"{t}:{s}" for t, s in
                                                    protocol.paired_sources))
    argv += [f"--epsilons={','.join(f'{e:g}' for e in protocol.epsilons)}",
             f"--iterations={','.join(map(str, setting.record_at))}",
             f"--strong_iterations={strong.iterations}",
             f"--batch_size={protocol.batch_size}",
             f"--eot_samples={protocol.eot_samples}", f"--random_draws={protocol.random_draws}",
             f"--figure_targets={','.join(protocol.figure_targets)}",
             f"--output_dir={protocol.output_dir}"]
    if protocol.max_examples is not None:
        argv.append(f"--max_examples={protocol.max_examples}")
    return "python " + shlex.join(argv)


def protocol_fingerprint(protocol: ProtocolConfig, target_digests: dict[str, str],
                         black_box_configs: dict[str, str]) -> dict:
    """What an entry's protocol numbers depend on: its settings, its targets' weights and the
    black-box sources' training configs.

    A black-box source is known by its config, not its weights: retrained on
    another machine (runs/ lost between sessions, other weights to the last
    bits), it is the same attacker, and the entries it attacked before stay
    done; each cell records the weights it was crafted with
    (`run_protocol_cell`), and the report says when they differ.
    """
    return {"targets": [os.path.basename(t) for t in protocol.targets],
            "paired_sources": [[os.path.basename(t), os.path.basename(s)]
                               for t, s in protocol.paired_sources],
            "black_box_sources": black_box_configs,
            "epsilons": list(protocol.epsilons),
            "settings": [s.describe() for s in protocol.settings],
            "max_examples": protocol.max_examples, "batch_size": protocol.batch_size,
            "eot": [protocol.eot_samples, protocol.random_draws], "weights": target_digests}


def run_protocol_cell(protocol_settings: ProtocolConfig, black_box_digests: dict[str, str],
                      on_cell=None, iterate_cache=None) -> dict:
    """Runs (resuming) one entry's protocol; returns where its results are, what it took and
    the black-box sources' weights digests it was crafted with.

    `iterate_cache`: an `IterateCache` the study's entries share (the
    black-box images are crafted once, kept in the study's `iterates/`
    folder, and scored on every entry, also by a resumed process).
    """
    protocol = prepare_protocol(protocol_settings, iterate_cache=iterate_cache)
    document = run_protocol(protocol, command=shlex.split(protocol_command(protocol_settings)),
                            on_cell=on_cell)
    folder = os.path.basename(os.path.normpath(protocol_settings.output_dir))
    return {"results": os.path.join(PROTOCOL_DIR, folder, RESULTS_FILE),
            "cell_seconds": document["cell_seconds"],
            "sanity_checks": document["sanity_checks"],
            "black_box_weights": dict(black_box_digests)}


def autoattack_key(cell: TrainCell) -> str:
    return f"autoattack__{cell.name}"


def autoattack_config(config: StudyConfig, cell: TrainCell, epsilons: tuple[float, ...],
                      randomized: bool) -> EvalConfig:
    """AutoAttack on one target at every epsilon, into the report's autoattack/ folder."""
    return EvalConfig(
        model_dir=cell.model_dir, attack="autoattack",
        autoattack_version="rand" if randomized else config.autoattack_version,
        autoattack_attacks=config.rand_attacks if randomized else config.autoattack_attacks,
        autoattack_iterations=config.autoattack_iterations,
        square_queries=config.square_queries, epsilons=epsilons,
        max_examples=config.max_examples, batch_size=config.eval_batch_size,
        eot_samples=config.eot_samples if randomized else None,
        results_file=os.path.join(config.report_dir, AUTOATTACK_DIR, f"{cell.name}.json"))


def autoattack_command(evaluation: EvalConfig) -> str:
    """The eval_main command that runs the same AutoAttack."""
    argv = [EVAL_MAIN, f"--model_dir={evaluation.model_dir}", "--attack=autoattack",
            f"--version={evaluation.autoattack_version}",
            *([f"--autoattack_attacks={','.join(evaluation.autoattack_attacks)}"]
              if evaluation.autoattack_attacks else []),
            f"--epsilons={','.join(f'{e:g}' for e in evaluation.epsilons)}",
            f"--autoattack_iterations={evaluation.autoattack_iterations}",
            f"--square_queries={evaluation.square_queries}",
            f"--batch_size={evaluation.batch_size}",
            f"--results_file={evaluation.results_file}"]
    if evaluation.eot_samples is not None:
        argv.append(f"--eot_samples={evaluation.eot_samples}")
    if evaluation.max_examples is not None:
        argv.append(f"--max_examples={evaluation.max_examples}")
    return "python " + shlex.join(argv)


def autoattack_fingerprint(evaluation: EvalConfig, digest: str) -> dict:
    return {"version": evaluation.autoattack_version, "epsilons": list(evaluation.epsilons),
            "attacks": list(evaluation.autoattack_attacks),
            "iterations": evaluation.autoattack_iterations,
            "queries": evaluation.square_queries, "max_examples": evaluation.max_examples,
            "batch_size": evaluation.batch_size, "seed": evaluation.seed,
            "eot_samples": evaluation.eot_samples, "weights": digest}


def run_autoattack_cell(evaluation: EvalConfig) -> dict:
    """Runs AutoAttack as eval_main would (results file, model card); returns its summary."""
    prepared = prepare_evaluation(evaluation)
    document = run_evaluation(prepared, command=shlex.split(autoattack_command(evaluation)))
    return {"results": os.path.relpath(prepared.results_path,
                                       os.path.dirname(os.path.dirname(prepared.results_path))),
            "robust_accuracy": {f"{e['epsilon']:g}": e["robust_accuracy"]
                                for e in document["robust_accuracy"]},
            "clean_accuracy": document["clean_accuracy"], "seconds": document["seconds"]}
