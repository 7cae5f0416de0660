"""The study's training cells: one train_main.py run per (entry, seed), checked before any work.

Each cell is the command a user would type (`python train_main.py <flags>`),
run as its own process so that a killed study resumes it as train_main
resumes any run. Before anything runs, every cell's flags are parsed into
its `RunConfig` and checked by `prepare_run` (data folder, every image,
model_dir), in this process.
"""

import dataclasses
import hashlib
import os
import shlex
import sys

import keras
import numpy as np
from absl import flags

from tf_atalp.cli import flagfiles_first
from tf_atalp.model_dir import MODEL_FILE
from tf_atalp.study.config import Entry, StudyConfig
from tf_atalp.training import flags as train_flags
from tf_atalp.training.config import RunConfig
from tf_atalp.training.run import PreparedRun, prepare_run

TARGET = "target"
BLACK_BOX = "black_box"
TRAIN_MAIN = "train_main.py"


@dataclasses.dataclass(frozen=True)
class TrainCell:
    """One training run of the study.

    Attributes:
      label: the entry's label; seed: its --seed; role: TARGET or BLACK_BOX.
      argv: the train_main flags (base flags, the entry's, --seed, --model_dir).
      prepared: the checked run (`prepare_run`), its config with the class count.
    """

    label: str
    seed: int
    role: str
    argv: tuple[str, ...]
    prepared: PreparedRun

    @property
    def name(self) -> str:
        """The model_dir's folder name: how tables and the protocol label the model."""
        return f"{self.label}_seed{self.seed}" if self.role == TARGET else self.label

    @property
    def key(self) -> str:
        return f"train__{self.name}"

    @property
    def model_dir(self) -> str:
        return self.prepared.config.train.model_dir

    @property
    def run_config(self) -> RunConfig:
        return self.prepared.config

    @property
    def defense(self) -> str:
        return self.run_config.defense.name

    def command(self) -> list[str]:
        """The process to run: this interpreter, train_main.py, the flags."""
        return [sys.executable, TRAIN_MAIN, *self.argv]

    def command_text(self) -> str:
        """The command as a user types it."""
        return "python " + shlex.join([TRAIN_MAIN, *self.argv])

    def fingerprint(self) -> dict:
        """What the trained weights depend on: the resolved RunConfig."""
        return self.run_config.to_dict()


def parse_run_config(argv) -> RunConfig:
    """The RunConfig of train_main flags `argv` (flagfiles first, as train_main applies them).

    Raises ValueError for a bad flag (absl's message) or a bad combination.
    """
    values = flags.FlagValues()
    train_flags.define_train_flags(values)
    try:
        values(flagfiles_first([TRAIN_MAIN, *argv]))
    except flags.Error as error:
        raise ValueError(str(error)) from None
    return train_flags.run_config_from_flags(values)


def _cell(config: StudyConfig, entry: Entry, seed: int, role: str) -> TrainCell:
    name = f"{entry.label}_seed{seed}" if role == TARGET else entry.label
    argv = (*config.train_flags, *entry.flags, f"--seed={seed}",
            f"--model_dir={os.path.join(config.runs_dir, name)}")
    try:
        run_config = parse_run_config(argv)
        prepared = prepare_run(run_config)
    except (ValueError, FileNotFoundError) as error:
        raise ValueError(f"Entry {entry.label!r} (seed {seed}): {error}") from None
    return TrainCell(entry.label, seed, role, argv, prepared)


def plan_train_cells(config: StudyConfig) -> list[TrainCell]:
    """Every training run: each entry x seed (targets), then each black-box source (first seed).

    Checks each run (`prepare_run`) and the cells against each other: one
    dataset and class list for all, the targets of one architecture, the
    black-box sources of another. Raises ValueError naming the first problem.
    """
    cells = [_cell(config, entry, seed, TARGET) for entry in config.entries
             for seed in config.seeds]
    cells += [_cell(config, entry, config.seeds[0], BLACK_BOX) for entry in config.black_box]
    first = cells[0]
    for cell in cells[1:]:
        for what, mine, theirs in (
                ("classes", cell.prepared.info.class_names, first.prepared.info.class_names),
                ("test split size", cell.prepared.info.num_test, first.prepared.info.num_test),
                ("image size", cell.run_config.model.image_size,
                 first.run_config.model.image_size)):
            if tuple(np.atleast_1d(mine)) != tuple(np.atleast_1d(theirs)):
                raise ValueError(f"Every model of a study must have the same {what}: "
                                 f"{cell.name} has {mine!r}, {first.name} has {theirs!r}.")
    targets = [c for c in cells if c.role == TARGET]
    architectures = {_architecture(c.run_config) for c in targets}
    if len(architectures) != 1:
        raise ValueError("Every target of a study must have one architecture (gray-box "
                         f"sources are targets of other seeds). Received: {sorted(architectures)}")
    for cell in cells:
        if cell.role == BLACK_BOX and _architecture(cell.run_config) in architectures:
            raise ValueError(f"The black-box source {cell.label!r} has the targets' "
                             f"architecture {_architecture(cell.run_config)}: give it another "
                             "one (e.g. --entry_flags=LABEL:--depth=18).")
    return cells


def _architecture(run_config: RunConfig) -> str:
    model = run_config.model
    return f"{model.architecture}-{model.depth} width {model.width} stem {model.stem}"


def is_trained(cell: TrainCell) -> bool:
    """The model_dir holds this run, finished (`PreparedRun.is_finished`, read now)."""
    return prepare_run(cell.run_config).is_finished


def weights_digest(model_dir: str) -> str:
    """sha256 (first 16 hex digits) of the trained network's weight values, in order."""
    network = keras.models.load_model(os.path.join(model_dir, MODEL_FILE), compile=False)
    digest = hashlib.sha256()
    for weights in network.get_weights():
        digest.update(np.ascontiguousarray(weights).tobytes())
    return digest.hexdigest()[:16]
