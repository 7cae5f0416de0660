"""Tests of the atomic file writers and of the full-disk error."""

import errno
import json
import os
import stat
import tempfile
import unittest
from unittest import mock

from tf_atalp import io_utils


class AtomicWriteTest(unittest.TestCase):

    def test_writes_and_replaces_whole_files(self):
        folder = tempfile.mkdtemp()
        path = os.path.join(folder, "sub", "results.json")
        io_utils.atomic_write_json(path, {"a": 1})
        io_utils.atomic_write_json(path, {"b": [1, 2]})
        with open(path) as f:
            self.assertEqual(json.load(f), {"b": [1, 2]})
        self.assertEqual(os.listdir(os.path.dirname(path)), ["results.json"])

    def test_failed_write_keeps_the_old_file_and_no_temporary(self):
        folder = tempfile.mkdtemp()
        path = os.path.join(folder, "results.json")
        io_utils.atomic_write_text(path, "old")
        with mock.patch.object(io_utils.os, "replace", side_effect=OSError("disk full")):
            with self.assertRaises(OSError):
                io_utils.atomic_write_text(path, "new")
        with open(path) as f:
            self.assertEqual(f.read(), "old")
        self.assertEqual(os.listdir(folder), ["results.json"])

    def test_file_is_readable_by_others_like_a_normal_file(self):
        path = os.path.join(tempfile.mkdtemp(), "x.txt")
        io_utils.atomic_write_text(path, "x")
        umask = os.umask(0)
        os.umask(umask)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o666 & ~umask)


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class NoSpaceTest(unittest.TestCase):

    def test_message_names_the_file_and_the_checkpoint_in_one_line(self):
        self.assertEqual(
            str(io_utils.NoSpaceError("/r/history.csv", "/r/backup/epoch_002.weights.h5")),
            "no space left on device while writing /r/history.csv; the last complete "
            "checkpoint is /r/backup/epoch_002.weights.h5, rerun the same command after "
            "freeing space")
        self.assertEqual(str(io_utils.NoSpaceError("/r/x.json")),
                         "no space left on device while writing /r/x.json; rerun the same "
                         "command after freeing space")
        self.assertEqual(io_utils.NoSpaceError("/r/x.json").errno, errno.ENOSPC)

    def test_a_full_disk_in_an_atomic_write_keeps_the_old_file_and_names_the_path(self):
        folder = tempfile.mkdtemp()
        path = os.path.join(folder, "results.json")
        io_utils.atomic_write_text(path, "old")
        for name in ("fsync", "replace"):  # the data, then the rename, fail
            with self.subTest(name), mock.patch.object(io_utils.os, name, disk_full):
                with self.assertRaises(io_utils.NoSpaceError) as caught:
                    io_utils.atomic_write_text(path, "new")
                self.assertEqual(caught.exception.path, path)
                with open(path) as f:
                    self.assertEqual(f.read(), "old")
                self.assertEqual(os.listdir(folder), ["results.json"])

    def test_atomic_save_removes_a_half_written_folder_and_keeps_other_errors(self):
        folder = tempfile.mkdtemp()

        def half_then_full(temporary):
            os.makedirs(os.path.join(temporary, "variables"))
            disk_full()
        with self.assertRaises(io_utils.NoSpaceError):
            io_utils.atomic_save(os.path.join(folder, "saved"), half_then_full)
        self.assertEqual(os.listdir(folder), [])
        with self.assertRaises(KeyError):  # not a full disk: raised as it is
            io_utils.atomic_save(os.path.join(folder, "x"), lambda t: {}["missing"])

    def test_temporary_name_keeps_the_ending_writers_check(self):
        name = os.path.basename(io_utils.temporary_path("/r/epoch_001.weights.h5"))
        self.assertTrue(name.startswith(io_utils.TEMPORARY_PREFIX))
        self.assertTrue(name.endswith("-epoch_001.weights.h5"))

    def test_full_disks_of_tensorflow_h5py_and_quotas_are_recognised(self):
        tf_text = ("{{function_node __wrapped__WriteSummary_device_/job:localhost}} "
                   "/r/logs/train/events.out.tfevents.1.v2; No space left on device\n\t"
                   "Failed to flush 11 events")
        self.assertEqual(io_utils.no_space_error(RuntimeError(tf_text), "/r").path,
                         "/r/logs/train/events.out.tfevents.1.v2")
        h5 = OSError(errno.ENOSPC, "Can't synchronously write data")
        self.assertEqual(io_utils.no_space_error(h5, "/r").path, "/r")
        quota = OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), "/r/a.h5")
        self.assertEqual(io_utils.no_space_error(quota, "/r").path, "/r/a.h5")
        try:  # found behind the error raised while handling it
            try:
                disk_full()
            except OSError:
                raise RuntimeError("closing failed")
        except RuntimeError as error:
            self.assertTrue(io_utils.is_no_space(error))
        self.assertIsNone(io_utils.no_space_error(OSError(errno.EACCES, "denied"), "/r"))

    def test_writing_names_its_path_and_removes_the_temporaries(self):
        folder = tempfile.mkdtemp()
        temporary = os.path.join(folder, ".tmp-a")
        open(temporary, "w").close()
        with self.assertRaises(io_utils.NoSpaceError) as caught:
            with io_utils.writing("/r/final.h5", temporary):
                disk_full()
        self.assertEqual(caught.exception.path, "/r/final.h5")
        self.assertFalse(os.path.exists(temporary))
        with self.assertRaises(io_utils.NoSpaceError) as caught:  # an inner one is kept
            with io_utils.writing("/r/outer"):
                raise io_utils.NoSpaceError("/r/outer/inner.json")
        self.assertEqual(caught.exception.path, "/r/outer/inner.json")

    def test_remove_temporary_files_removes_only_ours(self):
        folder = tempfile.mkdtemp()
        for name in (".tmp-1-a.h5", "kept.h5", ".hidden"):
            open(os.path.join(folder, name), "w").close()
        os.makedirs(os.path.join(folder, ".tmp-export-x", "variables"))
        self.assertEqual(io_utils.remove_temporary_files(folder),
                         [".tmp-1-a.h5", ".tmp-export-x"])
        self.assertEqual(sorted(os.listdir(folder)), [".hidden", "kept.h5"])
        self.assertEqual(io_utils.remove_temporary_files(os.path.join(folder, "none")), [])


if __name__ == "__main__":
    unittest.main()
