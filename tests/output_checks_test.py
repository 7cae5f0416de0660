"""Tests of the output checks: one-line refusals that name the path and the reason, nothing written."""

import collections
import os
import tempfile
import unittest
from unittest import mock

from tf_atalp import output_checks
from tf_atalp.output_checks import check_output_dir, check_output_file, format_bytes

DiskUsage = collections.namedtuple("DiskUsage", "total used free")


class CheckOutputDirTest(unittest.TestCase):

    def setUp(self):
        self.root = tempfile.mkdtemp()
        self.file = os.path.join(self.root, "a_file")
        open(self.file, "w").close()

    def assert_one_line(self, error):
        self.assertNotIn("\n", str(error))

    def test_new_and_existing_folders_pass_and_nothing_is_written(self):
        new = os.path.join(self.root, "new", "run")
        self.assertEqual(check_output_dir(new, needed_bytes=1), os.path.abspath(new))
        self.assertEqual(check_output_dir(self.root), self.root)
        self.assertEqual(os.listdir(self.root), ["a_file"])  # the probe is gone

    def test_a_file_is_refused_as_a_folder(self):
        with self.assertRaises(ValueError) as caught:
            check_output_dir(self.file, name="model_dir")
        self.assertEqual(str(caught.exception),
                         f"`model_dir` must be a folder, but {self.file!r} is a file. "
                         f"Received: model_dir={self.file!r}")

    def test_a_file_on_the_way_is_named(self):
        below = os.path.join(self.file, "run")
        with self.assertRaisesRegex(ValueError, f"but {self.file!r} \\(on the way to {below!r}\\)"
                                    " is a file"):
            check_output_dir(below, name="model_dir")

    def test_a_folder_that_takes_no_files_is_refused(self):
        # /proc refuses new entries for every user, root included.
        with self.assertRaises(ValueError) as caught:
            check_output_dir("/proc/nowhere/run", name="model_dir")
        self.assertRegex(str(caught.exception),
                         r"^`model_dir` cannot be written: '/proc' does not take new files \(.+\)\. "
                         r"Received: model_dir='/proc/nowhere/run'$")

    def test_too_little_space_is_refused_with_both_sizes(self):
        usage = DiskUsage(10 << 20, 9 << 20, 1 << 20)
        with mock.patch.object(output_checks.shutil, "disk_usage", return_value=usage):
            with self.assertRaises(ValueError) as caught:
                check_output_dir(self.root, needed_bytes=3 << 20, name="model_dir",
                                 needed_for="one checkpoint")
            check_output_dir(self.root, needed_bytes=1 << 20)  # exactly enough
        self.assertEqual(str(caught.exception),
                         "`model_dir` has no space for one checkpoint: it needs 3 MiB, 1 MiB "
                         f"are free in {self.root!r}. Received: model_dir={self.root!r}")
        self.assert_one_line(caught.exception)


class CheckOutputFileTest(unittest.TestCase):

    def test_a_file_path_passes_a_folder_or_an_unwritable_place_does_not(self):
        root = tempfile.mkdtemp()
        path = os.path.join(root, "sub", "r.json")
        self.assertEqual(check_output_file(path), path)
        with self.assertRaisesRegex(ValueError, "`results_file` must be a file path, not a folder"):
            check_output_file(root, name="results_file")
        with self.assertRaisesRegex(ValueError, "^`results_file` cannot be written: '/proc' .*"
                                    "Received: results_file='/proc/nowhere/r.json'$"):
            check_output_file("/proc/nowhere/r.json", name="results_file")
        self.assertEqual(os.listdir(root), [])


class FormatBytesTest(unittest.TestCase):

    def test_units(self):
        self.assertEqual(format_bytes(512), "512 B")
        self.assertEqual(format_bytes(16526264), "15.8 MiB")
        self.assertEqual(format_bytes(3 << 30), "3 GiB")
        self.assertEqual(format_bytes(5 << 40), "5,120 GiB")


if __name__ == "__main__":
    unittest.main()
