"""The names of everything a run writes into its model_dir, and how far it got.

train_main writes most of them (tf_atalp.training.run), eval_main writes
its results beside them (tf_atalp.evaluation.run), and both read them back.
One place, so neither side imports the other for a file name.
"""

import csv
import io
import json
import math
import os

from tf_atalp.io_utils import atomic_write_text

RUN_CONFIG_FILE = "run_config.json"  # the resolved RunConfig
FLAGFILE = "train.flags"  # a flagfile that reproduces the run
CLASS_NAMES_FILE = "class_names.json"  # class names in label order (index -> name)
MODEL_FILE = "model.keras"  # the final network (logits + conv-group outputs)
SAVED_MODEL_DIR = "saved_model"  # the serving SavedModel
TRAIN_RESULTS_FILE = "train_results.json"  # final metrics of the run
HISTORY_FILE = "history.csv"  # per-epoch metrics, epochs numbered from 1
TRAINING_CURVES_FILE = "training_curves.png"  # history.csv drawn
# The RobustAccuracy callback's attack and images (val_robust_accuracy of history.csv).
ROBUST_ACCURACY_FILE = "robust_accuracy.json"
CHECKPOINTS_DIR = "checkpoints"  # epoch_NNN.weights.h5 after every epoch
CHECKPOINT_PATTERN = "epoch_{epoch:03d}.weights.h5"  # NNN counts from 1
BACKUP_DIR = "backup"  # Keras BackupAndRestore state: what a rerun resumes from
LOGS_DIR = "logs"  # TensorBoard
ATTENTION_LOGS_DIR = "attention"  # in LOGS_DIR: the AttentionMaps callback's images
# Written by keras.callbacks.BackupAndRestore into BACKUP_DIR after each epoch.
BACKUP_METADATA_FILE = "training_metadata.json"
EVAL_RESULTS_FILE = "eval_results.json"  # eval_main.py's results (figure: .png beside it)
MODEL_CARD_FILE = "model_card.json"  # every robustness figure so far (also in saved_model/assets)
LOCK_FILE = "run.lock"  # held by the process writing the folder (tf_atalp.run_lock)


def read_backup_metadata(backup_dir: str) -> dict | None:
    """`<backup_dir>/training_metadata.json` ({"epoch", "batch", "weights"}), None if absent.

    Raises ValueError when it is corrupt (no whole-number "epoch").
    """
    path = os.path.join(backup_dir, BACKUP_METADATA_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            metadata = json.load(f)
        metadata["epoch"] = int(metadata["epoch"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is corrupt: {error}. Delete {backup_dir!r} to "
                         "start the run again.") from error
    return metadata


def finished_epochs(model_dir: str) -> int:
    """How many epochs of the run in `model_dir` are finished and backed up (0 if none)."""
    metadata = read_backup_metadata(os.path.join(model_dir, BACKUP_DIR))
    return 0 if metadata is None else metadata["epoch"]


def read_history(history_path: str) -> list[dict[str, str]]:
    """The rows of a history.csv (one per finished epoch, across resumes); [] if missing."""
    if not os.path.exists(history_path):
        return []
    with open(history_path, newline="") as f:
        return list(csv.DictReader(f))


def keep_history_up_to(history_path: str, finished: int) -> None:
    """Drops rows of epochs after `finished` (written before a kill, not backed up) and
    rows cut short (a kill or a full disk in the write)."""
    rows = read_history(history_path)
    kept = [row for row in rows if None not in row and None not in row.values()
            and row["epoch"].isdigit() and int(row["epoch"]) <= finished]
    if len(kept) == len(rows):
        return
    if not kept:
        os.remove(history_path)
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(kept[0]))
    writer.writeheader()
    writer.writerows(kept)
    atomic_write_text(history_path, buffer.getvalue())


def history_number(cell: str | None) -> float | None:
    """A history.csv cell as a float; None where it is empty, not a number, or nan/inf
    (a metric not measured that epoch)."""
    try:
        value = float(cell)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def last_epoch_metrics(rows: list[dict[str, str]]) -> dict:
    """The metrics of the last finished epoch, from the rows of history.csv (a metric
    not measured that epoch, empty, NA or nan, is left out)."""
    if not rows:
        return {}
    metrics = {key: history_number(value) for key, value in rows[-1].items() if key != "epoch"}
    return {key: value for key, value in metrics.items() if value is not None}


def total_training_seconds(rows: list[dict[str, str]]) -> float:
    """Wall time of every finished epoch (rows of history.csv), over all processes of the run."""
    return sum(float(row.get("epoch_seconds") or 0.0) for row in rows)


def read_robust_accuracy_record(folder: str) -> dict | None:
    """The RobustAccuracy record (`RobustAccuracy.describe()`) in `folder`; None if missing."""
    path = os.path.join(folder, ROBUST_ACCURACY_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)
