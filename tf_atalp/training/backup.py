"""`RunBackup`: Keras' BackupAndRestore with atomic saves, shared by the workers of a cluster.

Every epoch the chief saves the weights (with the optimizer state) and the
finished-epoch count into `<model_dir>/backup`; a rerun of the same command
restores them. Keras 3's callback writes in place (a kill mid-save can leave
a torn file) and lets every worker write the same files; here each save goes
to a temporary file that is then renamed, and a worker other than the chief
restores from the chief's folder but saves into its own private folder.
"""

import json
import os

import keras

from tf_atalp.io_utils import atomic_write_text
from tf_atalp.model_dir import BACKUP_METADATA_FILE

_WEIGHTS_FILE = "latest.weights.h5"  # Keras' name, kept so older backups restore


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
        self._weights_path = os.path.join(backup_dir, _WEIGHTS_FILE)
        self._training_metadata_path = os.path.join(backup_dir, BACKUP_METADATA_FILE)

    def _load_model(self):
        saved = self._weights_path, self._training_metadata_path
        self._weights_path = os.path.join(self.restore_from, _WEIGHTS_FILE)
        self._training_metadata_path = os.path.join(self.restore_from, BACKUP_METADATA_FILE)
        try:
            super()._load_model()
        finally:
            self._weights_path, self._training_metadata_path = saved

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        temporary = os.path.join(self.backup_dir, ".tmp-" + _WEIGHTS_FILE)
        self.model.save_weights(temporary, overwrite=True)
        os.replace(temporary, self._weights_path)
        # The epoch count last: it says the weights beside it are complete.
        atomic_write_text(self._training_metadata_path, json.dumps(
            {"epoch": self._current_epoch, "batch": self._last_batch_seen}))
