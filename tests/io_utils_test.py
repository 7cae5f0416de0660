"""Tests of the atomic file writers."""

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


if __name__ == "__main__":
    unittest.main()
