"""`prepare_study` (every check, nothing written) and `run_study` (the cells, then the report).

Cells, each recorded under `<study_dir>/report/cells/` when it finishes with
a fingerprint of what it depends on (a rerun skips a cell whose fingerprint
is unchanged and recomputes one whose settings or inputs changed):

  train__<entry>_seed<s>  one train_main run (a child process; resumes itself)
  train__<black-box>      one black-box source
  protocol__<entry>       the paper protocol on one entry's targets, with their
                          paired sources and the black-box sources (resumes its
                          own cells)
  autoattack__<target>    white-box AutoAttack at every epsilon on one target

The black-box sources train first; then entry by entry, its seeds train and
its evaluation cells run, so an entry is finished before the next starts.
The trained models (runs/) are not kept with the report: a study cut short
and resumed on another machine retrains only the black-box sources and the
entries it had not finished.

An evaluation cell's fingerprint holds the weights digest of the targets it
reads, so a retrained target (another machine, other weights) recomputes
exactly the cells that read it; black-box sources count by their training
config (see `eval_cells.protocol_fingerprint`). Before anything runs the
study prints its cells and an estimate of its time from steps measured
here; while it runs, a line per cell says which one runs, how many are done
and the time left.
"""

import dataclasses
import hashlib
import json
import os
import time

from tf_atalp.evaluation.iterate_cache import IterateCache
from tf_atalp.io_utils import atomic_write_json
from tf_atalp.machine import machine_summary
from tf_atalp.output_checks import check_output_dir
from tf_atalp.run_lock import RunLock
from tf_atalp.protocol.cells import CellStore
from tf_atalp.reporting import report
from tf_atalp.study import estimate
from tf_atalp.study.config import StudyConfig
from tf_atalp.study.eval_cells import (
    autoattack_command, autoattack_config, autoattack_fingerprint, autoattack_key,
    protocol_command, protocol_config, protocol_fingerprint, protocol_key, run_autoattack_cell,
    run_protocol_cell, study_epsilons)
from tf_atalp.study.processes import run_logged
from tf_atalp.study.report import REPORT_FILE, write_study_report
from tf_atalp.study.train_cells import (
    TARGET, TrainCell, is_trained, plan_train_cells, weights_digest)
from tf_atalp.model_dir import HISTORY_FILE, TRAIN_RESULTS_FILE, history_number, read_history
from tf_atalp.training.config import RunConfig
from tf_atalp.validation import check

STUDY_FILE = "study.json"  # in the report folder: the settings and every command


@dataclasses.dataclass
class Study:
    """A checked study: its config, training cells, radii and the finished cells."""

    config: StudyConfig
    train_cells: list[TrainCell]
    epsilons: tuple[float, ...]
    store: CellStore
    # The black-box sources' PGD iterates, crafted once (kept in `config.iterates_dir`
    # across processes) and scored on every entry.
    iterate_cache: IterateCache = dataclasses.field(default_factory=IterateCache)

    @property
    def targets(self) -> list[TrainCell]:
        return [c for c in self.train_cells if c.role == TARGET]

    @property
    def black_box(self) -> list[TrainCell]:
        return [c for c in self.train_cells if c.role != TARGET]

    def entry_targets(self, label: str) -> list[TrainCell]:
        return [c for c in self.targets if c.label == label]

    def randomized(self, cell: TrainCell) -> bool:
        return cell.run_config.defense.randomization() is not None


def prepare_study(config: StudyConfig) -> Study:
    """Checks every cell (flags, data, model_dirs, threat models) before any work.

    Raises ValueError naming the first problem; writes nothing.
    """
    check_output_dir(config.study_dir, name="study_dir", needed_for="the report")
    cells = plan_train_cells(config)
    training_epsilon = max(c.run_config.attack.epsilon for c in cells if c.role == TARGET)
    check(training_epsilon > 0 or config.epsilons is not None,
          "No target has a training epsilon: set `epsilons` for the evaluation.")
    return Study(config, cells, study_epsilons(config, training_epsilon),
                 CellStore(config.report_dir), IterateCache(config.iterates_dir))


class Progress:
    """The cells to run, their estimated seconds, and the time left as cells finish.

    Estimates of a kind are rescaled by the measured / estimated ratio of the
    finished cells of that kind: those this process ran, and `finished`
    ({key: (kind, estimated seconds, measured seconds)}), cells recorded
    before it started on this machine.
    """

    def __init__(self, estimates: dict[str, tuple[str, float]],
                 finished: dict[str, tuple[str, float, float]] | None = None):
        self.estimates = dict(estimates)  # key -> (kind, seconds)
        self.finished = dict(finished or {})
        self.measured = {}  # key -> seconds
        self.total = len(estimates)

    def _ratio(self, kind: str) -> float:
        pairs = [(self.estimates[k][1], self.measured[k]) for k in self.measured
                 if self.estimates[k][0] == kind]
        pairs += [(estimated, measured) for k, (of, estimated, measured)
                  in self.finished.items() if of == kind]
        estimated = sum(e for e, _ in pairs)
        return sum(m for _, m in pairs) / estimated if estimated > 0 else 1.0

    def scaled(self, key: str) -> float:
        """The estimate of `key`'s cell, rescaled."""
        kind, seconds = self.estimates[key]
        return seconds * self._ratio(kind)

    def calibration(self) -> dict[str, float]:
        """{kind: ratio} of the kinds that cells recorded before this process rescale."""
        return {kind: self._ratio(kind) for kind in sorted({of for of, _, _ in
                                                              self.finished.values()})}

    def left(self, running: str | None = None, done_share: float = 0.0) -> float:
        """Seconds left; `running`'s cell counts only its (1 - done_share) part."""
        return sum(seconds * self._ratio(kind) * (1 - done_share if key == running else 1)
                   for key, (kind, seconds) in self.estimates.items()
                   if key not in self.measured)

    def start(self, key: str, label: str) -> None:
        report(f"\n[study] cell {len(self.measured) + 1}/{self.total}: {label} "
               f"(about {estimate.format_seconds(self.scaled(key))}); "
               f"{len(self.measured)} done, about {estimate.format_seconds(self.left())} left")

    def finish(self, key: str, seconds: float) -> None:
        self.measured[key] = seconds


def _stored(study: Study, key: str, fingerprint: dict) -> dict | None:
    return study.store.load(key, fingerprint)


def _stored_training(study: Study, cell: TrainCell) -> dict | None:
    """The cell's record if it trained this RunConfig (an older version's form of the same
    config, read back through RunConfig, counts as the same: a new field's default does not
    retrain a study)."""
    path = study.store.path(cell.key)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            stored = json.load(f)
        previous = RunConfig.from_dict(stored["fingerprint"]).to_dict()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    current = json.loads(json.dumps(cell.fingerprint(), sort_keys=True))
    same = json.loads(json.dumps(previous, sort_keys=True)) == current
    return stored if same and stored.get("key") == cell.key else None


def _digests(study: Study) -> dict[str, str | None]:
    """{model name: weights digest recorded by its finished train cell, or None}."""
    digests = {}
    for cell in study.train_cells:
        stored = _stored_training(study, cell)
        digests[cell.name] = None if stored is None else stored["result"]["weights_digest"]
    return digests


def config_digest(cell: TrainCell) -> str:
    """sha256 (first 16 hex digits) of a training cell's resolved RunConfig: the model it
    trains, whatever weights a run of it gives."""
    text = json.dumps(cell.fingerprint(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _eval_cells(study: Study, digests: dict) -> list[dict]:
    """The evaluation cells, entry by entry, with their fingerprints (None where a target is
    not trained)."""
    config = study.config
    black_box = study.black_box
    black_box_configs = {c.name: config_digest(c) for c in black_box}
    cells = []
    for entry in config.entries:
        targets = study.entry_targets(entry.label)
        protocol = protocol_config(config, study.train_cells, study.epsilons, entry.label)
        target_digests = {c.name: digests[c.name] for c in targets}
        cells.append({
            "key": protocol_key(entry.label), "kind": "protocol", "entry": entry.label,
            "label": f"paper protocol on {entry.label} ({len(targets)} seed(s))",
            "settings": protocol, "needs": [c.name for c in targets + black_box],
            "fingerprint": protocol_fingerprint(protocol, target_digests, black_box_configs)
            if all(target_digests.values()) else None})
        for target in targets:
            evaluation = autoattack_config(config, target, study.epsilons,
                                           study.randomized(target))
            digest = digests[target.name]
            cells.append({"key": autoattack_key(target), "kind": "autoattack",
                          "entry": entry.label,
                          "label": f"AutoAttack {evaluation.autoattack_version} on {target.name}",
                          "settings": evaluation, "needs": [target.name], "target": target,
                          "fingerprint": None if digest is None
                          else autoattack_fingerprint(evaluation, digest)})
    return cells


def _pending(study: Study, cell: dict) -> bool:
    return cell["fingerprint"] is None or _stored(study, cell["key"], cell["fingerprint"]) is None


def _train_cells_to_run(study: Study, eval_cells: list[dict]) -> list[TrainCell]:
    """Unrecorded runs, and recorded ones whose model is gone but a pending cell reads it."""
    needed = {name for cell in eval_cells if _pending(study, cell) for name in cell["needs"]}
    return [c for c in study.train_cells
            if _stored_training(study, c) is None
            or (c.name in needed and not is_trained(c))]


def _estimates(study: Study, to_train: list[TrainCell], eval_cells: list[dict]) -> dict:
    """{key: (kind, seconds)} of the training cells to run and every evaluation cell
    (pending or recorded: the recorded ones calibrate the others), from steps measured now."""
    config = study.config
    pending_eval = [c for c in eval_cells if _pending(study, c)]
    report("Measuring a training step of each run to do and an attack step of each network "
           "(for the time estimate)...")
    steps = {}
    for cell in to_train:
        kind = tuple(cell.argv[:-2])  # the same flags but --seed / --model_dir: same step
        if kind not in steps:
            steps[kind] = estimate.measure_train_step(cell.run_config,
                                                      cell.prepared.steps_per_epoch)
    gradient = {}
    for cell in study.train_cells:
        architecture = json.dumps(dataclasses.asdict(cell.run_config.model), sort_keys=True)
        if architecture not in gradient:
            gradient[architecture] = estimate.measure_gradient_pass(cell.run_config,
                                                                    config.eval_batch_size)
        gradient[cell.name] = gradient[architecture]
    first = study.train_cells[0]
    examples = first.prepared.info.num_test
    if config.max_examples is not None:
        examples = min(examples, config.max_examples)
    batches = -(-examples // config.eval_batch_size)
    training_epsilon = max(c.run_config.attack.epsilon for c in study.targets)
    estimates = {c.key: ("train", estimate.training_seconds(
        c.run_config, c.prepared.steps_per_epoch, steps[tuple(c.argv[:-2])],
        gradient[c.name])) for c in to_train}
    lengths = (max(config.paper_iterations), config.strong_iterations)
    # The black-box iterates are crafted by the first protocol to run, then cached (on disk:
    # a resumed study whose cache folder holds iterates is taken to craft none).
    order = [entry.label for entry in config.run_order]
    protocols = sorted((c for c in pending_eval if c["kind"] == "protocol"),
                       key=lambda c: order.index(c["entry"]))
    crafting = (protocols[0]["key"] if protocols and not study.iterate_cache.stored_files()
                else None)
    for cell in eval_cells:
        if cell["kind"] == "protocol":
            seconds = 0.0
            targets = study.entry_targets(cell["entry"])
            for target in targets:
                eot = config.eot_samples * config.random_draws if study.randomized(target) else 1
                seconds += estimate.white_box_seconds(batches, gradient[target.name],
                                                      study.epsilons, training_epsilon,
                                                      lengths, eot)
                if config.gray_box == "paired":
                    seconds += estimate.transfer_seconds(
                        batches, gradient[target.name], study.epsilons, lengths,
                        len(config.paper_iterations) + 10, 1)
            for source in study.black_box:
                seconds += estimate.transfer_seconds(
                    batches, gradient[source.name], study.epsilons, lengths,
                    len(config.paper_iterations) + 10, len(targets),
                    crafted=cell["key"] == crafting)
            estimates[cell["key"]] = ("protocol", seconds)
        else:
            target = cell["target"]
            estimates[cell["key"]] = ("autoattack", estimate.autoattack_seconds(
                batches, gradient[target.name], study.epsilons, training_epsilon,
                config.autoattack_iterations, min(9, first.run_config.model.num_classes - 1),
                config.square_queries,
                cell["settings"].eot_samples if study.randomized(target) else 1))
    return estimates


def _finished_here(study: Study, eval_cells: list[dict], estimates: dict) -> dict:
    """{key: (kind, estimated s, measured s)} of the evaluation cells recorded on this machine
    (`machine_summary`): what `Progress` rescales the estimates of their kinds by."""
    finished = {}
    for cell in eval_cells:
        stored = None if cell["fingerprint"] is None else _stored(study, cell["key"],
                                                                  cell["fingerprint"])
        if stored is not None and stored.get("machine") == machine_summary():
            kind, seconds = estimates[cell["key"]]
            finished[cell["key"]] = (kind, seconds, float(stored["seconds"]))
    return finished


def _print_plan(study: Study, to_train, eval_cells, progress: Progress) -> None:
    estimates = progress.estimates
    pending_keys = set(estimates)
    report(f"Study {study.config.name}: {len(study.train_cells)} models "
           f"({len(study.targets)} targets: {len(study.config.entries)} entries x "
           f"{len(study.config.seeds)} seeds; "
           f"{len(study.train_cells) - len(study.targets)} black-box sources), "
           f"epsilons {', '.join(f'{e:g}' for e in study.epsilons)}; folder "
           f"{study.config.study_dir}")
    lines = []
    for cell in study.train_cells:
        state = "to run" if cell in to_train else "done"
        lines.append((cell.key, f"train {cell.name}: {state}"))
    for cell in eval_cells:
        lines.append((cell["key"], f"{cell['label']}: "
                      + ("to run" if cell["key"] in pending_keys else "done")))
    for key, line in lines:
        suffix = (f" (estimate {estimate.format_seconds(progress.scaled(key))})"
                  if key in estimates else "")
        report(f"  {line}{suffix}")
    calibration = progress.calibration()
    scaled = (f"; {', '.join(f'{kind} cells x {ratio:.2f}' for kind, ratio in calibration.items())}"
              f", the seconds of the {len(progress.finished)} cells recorded on this machine "
              "against their estimates" if calibration else "")
    report(f"{len(estimates)} of {len(lines)} cells to run; estimated time "
           f"{estimate.format_seconds(progress.left())} (from measured steps{scaled}; rough "
           "for attacks, which stop early on broken images; refined as cells finish).")


CURVE_COLUMNS = ("val_robust_accuracy", "val_clean_accuracy", "adversarial_accuracy",
                 "clean_accuracy", "epoch_seconds")


def _curves(model_dir: str) -> dict[str, list]:
    """The per-epoch columns of history.csv the report draws ({column: [value per epoch]})."""
    rows = read_history(os.path.join(model_dir, HISTORY_FILE))
    curves = {"epoch": [int(row["epoch"]) for row in rows]}
    for name in CURVE_COLUMNS:
        if rows and rows[0].get(name) not in (None, ""):
            curves[name] = [history_number(row.get(name)) for row in rows]
    return curves


def _train(study: Study, cell: TrainCell, progress: Progress) -> None:
    progress.start(cell.key, f"training {cell.name}")
    started = time.time()
    log = os.path.join(study.config.logs_dir, f"{cell.name}.log")
    run_logged(cell.command(), log, cell.name)
    with open(os.path.join(cell.model_dir, TRAIN_RESULTS_FILE)) as f:
        results = json.load(f)
    seconds = time.time() - started
    study.store.save(cell.key, cell.fingerprint(), {
        "model_dir": cell.model_dir, "command": cell.command_text(),
        "weights_digest": weights_digest(cell.model_dir),
        "training_seconds": results["training_seconds"],
        "final_metrics": results["final_metrics"], "precision": results["precision"],
        "epochs": results["epochs"], "curves": _curves(cell.model_dir),
        "catastrophic_overfitting": results.get("catastrophic_overfitting")}, seconds)
    progress.finish(cell.key, seconds)


def _evaluate(study: Study, cell: dict, progress: Progress) -> None:
    progress.start(cell["key"], cell["label"])
    started = time.time()
    if cell["kind"] == "protocol":
        def on_cell(done, pending, label, seconds):
            if seconds is None:
                left = progress.left(cell["key"], done / max(pending, 1))
                report(f"[study] protocol cell {done + 1}/{pending}: {label}; about "
                       f"{estimate.format_seconds(left)} left in the study")
        digests = _digests(study)
        result = run_protocol_cell(cell["settings"],
                                   {c.name: digests[c.name] for c in study.black_box}, on_cell,
                                   iterate_cache=study.iterate_cache)
        result["command"] = protocol_command(cell["settings"])
    else:
        result = run_autoattack_cell(cell["settings"])
        result["command"] = autoattack_command(cell["settings"])
    seconds = time.time() - started
    study.store.save(cell["key"], cell["fingerprint"], result, seconds)
    progress.finish(cell["key"], seconds)


def run_study(study: Study, command: list[str], plan_only: bool = False,
              flagfile_text: str = "", report_only: bool = False) -> dict | None:
    """Runs every pending cell, then writes the report; returns the study's results.

    `plan_only`: print the cells and the estimate, run nothing, write nothing.
    `report_only`: run nothing; rewrite the report (whole or partial) from the
    cells recorded so far and return its results (None, writing nothing,
    while the reference entry is unfinished).
    Otherwise the study folder is locked first (`RunLock`: a second study
    process on it refuses, naming this one).
    """
    if plan_only:
        _plan_and_estimate(study)
        return None
    with RunLock(study.config.study_dir, name="study_dir"):
        if report_only:  # the report names the command that runs the study
            command = [arg for arg in command if not arg.lstrip("-").startswith("report_only")]
            return write_report(study, command, flagfile_text)
        to_train, progress = _plan_and_estimate(study)
        return _run(study, command, flagfile_text, to_train, progress)


def _plan_and_estimate(study: Study):
    """(the training cells to run, their `Progress`), after printing the plan."""
    eval_cells = _eval_cells(study, _digests(study))
    to_train = _train_cells_to_run(study, eval_cells)
    pending = {c["key"] for c in eval_cells if _pending(study, c)} | {c.key for c in to_train}
    every = _estimates(study, to_train, eval_cells) if pending else {}
    progress = Progress({key: every[key] for key in pending},
                        _finished_here(study, eval_cells, every) if pending else {})
    _print_plan(study, to_train, eval_cells, progress)
    return to_train, progress


def _run(study: Study, command, flagfile_text: str, to_train, progress: Progress) -> dict:
    os.makedirs(study.config.report_dir, exist_ok=True)
    atomic_write_json(os.path.join(study.config.report_dir, STUDY_FILE),
                      {"command": list(command), "flagfile": flagfile_text,
                       "settings": study.config.describe(),
                       "epsilons": list(study.epsilons)})
    training = {cell.key for cell in to_train}
    for cell in study.black_box:  # every entry's protocol needs them
        if cell.key in training:
            _train(study, cell, progress)
    for entry in study.config.run_order:
        for cell in study.entry_targets(entry.label):
            if cell.key in training:
                _train(study, cell, progress)
        computed = False
        for cell in _eval_cells(study, _digests(study)):  # with the weights just trained
            if cell["entry"] == entry.label and _pending(study, cell):
                if cell["key"] not in progress.estimates:  # a retrained model changed it
                    progress.estimates[cell["key"]] = (cell["kind"], 0.0)
                    progress.total += 1
                _evaluate(study, cell, progress)
                computed = True
        if computed:
            partial = write_report(study, command, flagfile_text, partial_only=True)
            if partial is not None:
                done = len(study.config.entries) - len(partial["unfinished_entries"])
                report(f"[study] partial report of the {done} entries finished so far: "
                       f"{study.config.report_dir}/{REPORT_FILE}")
    return write_report(study, command, flagfile_text)


def _finished_entries(study: Study, eval_cells: list[dict]) -> list[str]:
    """The labels of the entries whose every training run and evaluation cell is recorded."""
    finished = []
    for entry in study.config.entries:
        trained = all(_stored_training(study, c) is not None
                      for c in study.entry_targets(entry.label))
        if trained and not any(_pending(study, c) for c in eval_cells
                               if c["entry"] == entry.label):
            finished.append(entry.label)
    return finished


def write_report(study: Study, command, flagfile_text: str,
                 partial_only: bool = False) -> dict | None:
    """Writes the report of the finished entries and returns its study_results.

    Every entry finished: the whole study's report. Some: a partial report
    that names the others. None, writing nothing, while the reference entry
    is unfinished (the report compares every entry with it), or with
    `partial_only` when every entry is finished.
    """
    eval_cells = _eval_cells(study, _digests(study))
    finished = _finished_entries(study, eval_cells)
    config = study.config
    unfinished = [e.label for e in config.entries if e.label not in finished]
    if config.reference not in finished or (partial_only and not unfinished):
        return None
    shown = study
    if unfinished:
        shown = dataclasses.replace(
            study, config=dataclasses.replace(
                config, entries=tuple(e for e in config.entries if e.label in finished),
                run_first=tuple(label for label in config.run_first if label in finished)),
            train_cells=[c for c in study.train_cells
                         if c.role != TARGET or c.label in finished])
    records = _records(shown, [c for c in eval_cells if c["entry"] in finished])
    return write_study_report(shown, records, command, flagfile_text, unfinished=unfinished,
                              settings=config.describe())


def _records(study: Study, eval_cells: list[dict]) -> dict:
    """Every finished cell, as the report reads them."""
    records = {"train": {c.name: _stored_training(study, c)
                         for c in study.train_cells}, "protocol": {}, "autoattack": {}}
    for cell in eval_cells:
        stored = _stored(study, cell["key"], cell["fingerprint"])
        if cell["kind"] == "protocol":
            records["protocol"][cell["entry"]] = stored
        else:
            records["autoattack"][cell["target"].name] = stored
    return records
