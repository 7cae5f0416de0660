"""Tests of tf_atalp.cli: flags that a later flagfile would silently override are refused."""

import os

import tensorflow as tf

from tests.evaluation_fixtures import temporary_folder
from tf_atalp.cli import overridden_flags


class OverriddenFlagsTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.flagfile = os.path.join(temporary_folder(self), "run.flags")
        with open(self.flagfile, "w") as f:
            f.write("# a comment --seed=1\n--defense=at_alp\n--epochs=60\n--noaugment\n")

    def test_a_flag_before_the_flagfile_that_sets_it_is_reported(self):
        messages = overridden_flags(["train_main.py", "--defense=igr",
                                     f"--flagfile={self.flagfile}"])
        self.assertLen(messages, 1)
        self.assertIn("--defense=igr comes before", messages[0])
        self.assertIn("put --flagfile first", messages[0])

    def test_booleans_match_in_both_forms(self):
        self.assertLen(overridden_flags(["x", "--augment", f"--flagfile={self.flagfile}"]), 1)

    def test_flags_after_the_flagfile_or_not_in_it_are_fine(self):
        self.assertEqual(overridden_flags(["x", f"--flagfile={self.flagfile}", "--defense=igr"]),
                         [])
        self.assertEqual(overridden_flags(["x", "--seed=3", f"--flagfile={self.flagfile}"]), [])
        # "--seed=1" in a comment line of the flagfile does not count.
        self.assertEqual(overridden_flags(["x", "--seed=3", "--flagfile=/no/such/file"]), [])


if __name__ == "__main__":
    tf.test.main()
