"""The run's checkpoints: `RunBackup` (what a rerun resumes from) and `EpochCheckpoint`.

`RunBackup` is Keras' BackupAndRestore with committed saves, shared by the
workers of a cluster. After epoch N it writes the weights (with the
optimizer state) to `<backup>/epoch_NNN.weights.h5`, then commits them by
rewriting training_metadata.json ({"epoch": N, "batch": 0, "weights":
"epoch_NNN.weights.h5"}) atomically, then removes older weights. Keras 3's
callback overwrites one file in place, so a kill (or a full disk) in the
save leaves a torn file, and one between the weights and the epoch count
pairs epoch N's weights with epoch N-1; here every moment leaves a committed
pair whole. A worker other than the chief restores from the chief's folder
but saves into its own private folder. Backups of the older layout
(latest.weights.h5, no "weights" key) restore too.

`EpochCheckpoint` writes `checkpoints/epoch_NNN.weights.h5` after every
epoch, atomically. `checkpoint_bytes` estimates one checkpoint's size.
"""

import contextlib
import dataclasses
import json
import os

import h5py
import keras

from tf_atalp.io_utils import atomic_save, atomic_write_text, remove_path
from tf_atalp.model_dir import BACKUP_METADATA_FILE, CHECKPOINT_PATTERN, read_backup_metadata

LEGACY_WEIGHTS_FILE = "latest.weights.h5"  # Keras' name: the weights of older backups
_WEIGHTS_SUFFIX = ".weights.h5"
FLOAT_BYTES = 4  # variables are float32, also under mixed precision
CHECKPOINT_MARGIN = 0.05  # HDF5 layout on top of the raw variables (measured: 1.0%, see below)
CHECKPOINT_OVERHEAD_BYTES = 1 << 20  # and a fixed MiB for a small model's headers
# Measured: ResNet-10, width 32, Adam: 1,230,308 weights, 14,740,656 raw bytes, a
# 14,885,168-byte backup file (+0.98%); the estimate is 16,526,264.


def checkpoint_bytes(num_weights: int, num_trainable: int, optimizer_slots: int) -> int:
    """Estimated bytes of one checkpoint (weights with optimizer state).

    Args:
      num_weights: every weight of the network (trainable or not), a count of numbers.
      num_trainable: its trainable weights; the optimizer keeps `optimizer_slots`
        numbers for each (SGD's momentum: 1; Adam's two moments: 2).
      optimizer_slots: as above.

    Returns: 4 bytes a number, +CHECKPOINT_MARGIN, +CHECKPOINT_OVERHEAD_BYTES.
    """
    payload = FLOAT_BYTES * (num_weights + optimizer_slots * num_trainable)
    return int(payload * (1 + CHECKPOINT_MARGIN)) + CHECKPOINT_OVERHEAD_BYTES


def _close_h5_files(path: str) -> None:
    """Closes the HDF5 file at `path` that a failed Keras save leaves open.

    Keras does not close its store when a write fails (a full disk); h5py
    then fails again when the objects are freed and the process dies with a
    segmentation fault at exit.
    """
    target = os.path.abspath(path)
    for file_id in h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE):
        with contextlib.suppress(Exception):  # closing flushes, which fails on a full disk
            if os.path.abspath(os.fsdecode(file_id.name)) == target:
                h5py.File(file_id).close()


def save_weights_atomically(model: keras.Model, path: str) -> str:
    """`model.save_weights` into a temporary file beside `path`, synced, then renamed.

    On failure nothing is left (and `path` is as it was); a full disk raises
    tf_atalp.io_utils.NoSpaceError naming `path`.
    """
    def save(temporary):
        try:
            model.save_weights(temporary)
        except BaseException:
            _close_h5_files(temporary)
            raise
    return atomic_save(path, save)


@dataclasses.dataclass(frozen=True)
class CommittedBackup:
    """The last committed save of a backup folder: `weights_path` holds epoch `epoch`'s end."""

    weights_path: str
    epoch: int


def committed_backup(backup_dir: str) -> CommittedBackup | None:
    """The committed save in `backup_dir`, or None when it holds none.

    Raises ValueError when the metadata is corrupt or names missing weights.
    """
    metadata = read_backup_metadata(backup_dir)
    if metadata is None:
        return None
    weights = os.path.join(backup_dir, str(metadata.get("weights", LEGACY_WEIGHTS_FILE)))
    if not os.path.isfile(weights):
        raise ValueError(f"{os.path.join(backup_dir, BACKUP_METADATA_FILE)} names weights that "
                         f"are missing ({weights}). Delete {backup_dir!r} to start the run again.")
    return CommittedBackup(weights, metadata["epoch"])


class RunBackup(keras.callbacks.BackupAndRestore):
    """Saves after every epoch into `backup_dir`; restores from `restore_from`.

    Args:
      backup_dir: where this process saves.
      restore_from: where it restores from (default: `backup_dir`); a
        non-chief worker passes the chief's folder.
    """

    def __init__(self, backup_dir: str, restore_from: str | None = None):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=False)
        self.restore_from = restore_from or backup_dir
        self._training_metadata_path = os.path.join(backup_dir, BACKUP_METADATA_FILE)

    def _load_model(self):
        backup = committed_backup(self.restore_from)
        if backup is None:
            return  # nothing committed yet: the run starts from its initial weights
        saved = self._weights_path, self._training_metadata_path
        self._weights_path = backup.weights_path
        self._training_metadata_path = os.path.join(self.restore_from, BACKUP_METADATA_FILE)
        try:
            super()._load_model()
        finally:
            self._weights_path, self._training_metadata_path = saved

    def _save_model(self):
        name = CHECKPOINT_PATTERN.format(epoch=self._current_epoch)
        save_weights_atomically(self.model, os.path.join(self.backup_dir, name))
        # The commit: one atomic write names the epoch and the weights that go with it.
        atomic_write_text(self._training_metadata_path, json.dumps(
            {"epoch": self._current_epoch, "batch": self._last_batch_seen, "weights": name}))
        for other in os.listdir(self.backup_dir):
            if other.endswith(_WEIGHTS_SUFFIX) and other != name:
                remove_path(os.path.join(self.backup_dir, other))


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the weights (with the optimizer state) after epoch N to `pattern.format(epoch=N)`.

    N counts from 1, as history.csv does; each file is written atomically.
    """

    def __init__(self, pattern: str):
        super().__init__()
        self.pattern = pattern

    def on_epoch_end(self, epoch, logs=None):
        save_weights_atomically(self.model, self.pattern.format(epoch=epoch + 1))
