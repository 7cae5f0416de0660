"""Tests of the test helper tests/real_data.py: skip locally, fail in CI, when data are missing."""

import os
import unittest
from unittest import mock

import tensorflow as tf

from tests import real_data


class SharedDataDirTest(tf.test.TestCase):

    def test_finds_the_shared_folder(self):
        expected = os.path.normpath(os.path.join(real_data.PROJECT_ROOT, "..", "shared", "data"))
        if not os.path.isdir(expected):
            self.skipTest(f"real data not found at {expected}")
        self.assertEqual(real_data.shared_data_dir("."), expected)

    def test_missing_data_skips_without_the_ci_variable(self):
        with mock.patch.dict(os.environ, {real_data.REQUIRE_ENV: ""}):
            with self.assertRaisesRegex(unittest.SkipTest, "real data not found at .*no_such_set"):
                real_data.shared_data_dir("no_such_set")

    def test_missing_data_fails_in_ci(self):
        with mock.patch.dict(os.environ, {real_data.REQUIRE_ENV: "1"}):
            with self.assertRaisesRegex(AssertionError, "CI requires it"):
                real_data.shared_data_dir("no_such_set")


if __name__ == "__main__":
    tf.test.main()
