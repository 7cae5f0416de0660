"""Tests of the run's checkpoints: committed backups, restores, full disks in a save."""

import errno
import json
import os
from unittest import mock

import h5py
import keras
import numpy as np
import tensorflow as tf

from tf_atalp.io_utils import NoSpaceError
from tf_atalp.training import backup as backup_lib
from tf_atalp.training.backup import (
    EpochCheckpoint, RunBackup, checkpoint_bytes, committed_backup)

X = np.linspace(-1, 1, 64, dtype=np.float32).reshape(32, 2)
Y = (X[:, :1] * 3 - X[:, 1:] + 0.5).astype(np.float32)


def tiny_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    return model


def fit(model, epochs, callbacks=()):
    return model.fit(X, Y, batch_size=8, epochs=epochs, shuffle=False, verbose=0,
                     callbacks=list(callbacks))


def open_h5_files(folder):
    return [os.fsdecode(i.name) for i in h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE)
            if os.fsdecode(i.name).startswith(folder)]


class FailingDatasets:
    """Makes h5py's `calls`-th dataset creation from now on fail as a full disk does."""

    def __init__(self, calls):
        self.calls, self.original = calls, h5py.Group.create_dataset

    def __call__(self, group, *args, **kwargs):
        self.calls -= 1
        if self.calls == 0:
            raise OSError(errno.ENOSPC, "Can't synchronously write data (file write failed: "
                          "errno = 28, error message = 'No space left on device')")
        return self.original(group, *args, **kwargs)


class RunBackupTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.folder = os.path.join(self.get_temp_dir(), self.id().rsplit(".", 1)[-1], "backup")

    def metadata(self):
        with open(os.path.join(self.folder, "training_metadata.json")) as f:
            return json.load(f)

    def test_each_epoch_is_committed_with_its_weights_and_older_ones_removed(self):
        fit(tiny_model(), 2, [RunBackup(self.folder)])
        self.assertEqual(self.metadata(), {"epoch": 2, "batch": 0,
                                           "weights": "epoch_002.weights.h5"})
        self.assertEqual(sorted(os.listdir(self.folder)),
                         ["epoch_002.weights.h5", "training_metadata.json"])
        committed = committed_backup(self.folder)
        self.assertEqual((committed.epoch, os.path.basename(committed.weights_path)),
                         (2, "epoch_002.weights.h5"))

    def test_a_restored_run_ends_with_the_weights_of_an_uninterrupted_one(self):
        straight = tiny_model()
        fit(straight, 3)
        fit(tiny_model(), 2, [RunBackup(self.folder)])
        resumed = tiny_model(seed=5)  # other initial weights: the backup must replace them
        history = fit(resumed, 3, [RunBackup(self.folder)])
        self.assertEqual(history.epoch, [2])
        for a, b in zip(resumed.get_weights(), straight.get_weights()):
            self.assertAllClose(a, b, atol=1e-6)

    def test_a_backup_of_the_older_layout_restores(self):
        trained = tiny_model()
        fit(trained, 1)
        os.makedirs(self.folder)
        trained.save_weights(os.path.join(self.folder, "latest.weights.h5"))
        with open(os.path.join(self.folder, "training_metadata.json"), "w") as f:
            json.dump({"epoch": 1, "batch": 0}, f)
        resumed = tiny_model(seed=5)
        self.assertEqual(fit(resumed, 2, [RunBackup(self.folder)]).epoch, [1])
        self.assertEqual(sorted(os.listdir(self.folder)),  # the older file is superseded
                         ["epoch_002.weights.h5", "training_metadata.json"])

    def test_a_full_disk_in_a_save_leaves_the_last_commit_whole_and_nothing_open(self):
        model = tiny_model()
        fit(model, 1, [RunBackup(self.folder)])
        after_epoch_1 = [w.copy() for w in model.get_weights()]
        failing = FailingDatasets(calls=3)  # in the middle of epoch 2's weights file
        with mock.patch.object(h5py.Group, "create_dataset",
                               lambda group, *a, **k: failing(group, *a, **k)):
            with self.assertRaises(NoSpaceError) as caught:
                fit(model, 2, [RunBackup(self.folder)])
        self.assertEqual(caught.exception.path, os.path.join(self.folder, "epoch_002.weights.h5"))
        self.assertEqual(sorted(os.listdir(self.folder)),
                         ["epoch_001.weights.h5", "training_metadata.json"])
        self.assertEqual(open_h5_files(self.folder), [])  # Keras left it open; it is closed
        self.assertEqual(self.metadata()["epoch"], 1)
        restored = tiny_model(seed=5)
        restored.optimizer.build(restored.trainable_variables)
        restored.load_weights(committed_backup(self.folder).weights_path)
        for a, b in zip(restored.get_weights(), after_epoch_1):
            self.assertAllClose(a, b)

    def test_weights_written_but_not_committed_are_not_restored(self):
        model = tiny_model()
        fit(model, 1, [RunBackup(self.folder)])
        full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        with mock.patch.object(backup_lib, "atomic_write_text", side_effect=full):
            with self.assertRaises(OSError):
                fit(model, 2, [RunBackup(self.folder)])
        self.assertIn("epoch_002.weights.h5", os.listdir(self.folder))  # written, not committed
        self.assertEqual(committed_backup(self.folder).epoch, 1)
        self.assertEqual(fit(tiny_model(), 2, [RunBackup(self.folder)]).epoch, [1])
        self.assertEqual(sorted(os.listdir(self.folder)),
                         ["epoch_002.weights.h5", "training_metadata.json"])

    def test_metadata_naming_missing_weights_is_refused(self):
        os.makedirs(self.folder)
        with open(os.path.join(self.folder, "training_metadata.json"), "w") as f:
            json.dump({"epoch": 3, "batch": 0, "weights": "epoch_003.weights.h5"}, f)
        with self.assertRaisesRegex(ValueError, "names weights that are missing"):
            committed_backup(self.folder)
        self.assertIsNone(committed_backup(os.path.join(self.folder, "none")))


class EpochCheckpointTest(tf.test.TestCase):

    def test_one_file_per_epoch_numbered_from_one_and_no_temporaries(self):
        folder = os.path.join(self.get_temp_dir(), "checkpoints")
        model = tiny_model()
        fit(model, 2, [EpochCheckpoint(os.path.join(folder, "epoch_{epoch:03d}.weights.h5"))])
        self.assertEqual(sorted(os.listdir(folder)),
                         ["epoch_001.weights.h5", "epoch_002.weights.h5"])
        restored = tiny_model(seed=5)
        restored.optimizer.build(restored.trainable_variables)  # the file holds its state too
        restored.load_weights(os.path.join(folder, "epoch_002.weights.h5"))
        for a, b in zip(restored.get_weights(), model.get_weights()):
            self.assertAllClose(a, b)


class CheckpointBytesTest(tf.test.TestCase):

    def test_hand_derived_estimate(self):
        # 4 bytes x (100 weights + 2 slots x 60 trainable) = 880; +5% = 924; + 1 MiB.
        self.assertEqual(checkpoint_bytes(100, 60, 2), 924 + (1 << 20))

    def test_the_estimate_covers_a_real_checkpoint(self):
        model = tiny_model()
        fit(model, 1)
        path = os.path.join(self.get_temp_dir(), "x.weights.h5")
        model.save_weights(path)
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        self.assertGreaterEqual(checkpoint_bytes(model.count_params(), trainable, 2),
                                os.path.getsize(path))


if __name__ == "__main__":
    tf.test.main()
