"""Tests of tf_atalp.cli: a flag typed on the command line overrides a flagfile wherever it stands."""

import tensorflow as tf

from tf_atalp.cli import flagfiles_first


class FlagfilesFirstTest(tf.test.TestCase):

    def test_flagfiles_move_to_the_front_in_their_order(self):
        self.assertEqual(
            flagfiles_first(["train_main.py", "--defense=igr", "--flagfile=a.flags", "--epochs=3",
                             "--flagfile=b.flags"]),
            ["train_main.py", "--flagfile=a.flags", "--flagfile=b.flags", "--defense=igr",
             "--epochs=3"])

    def test_nothing_changes_without_a_flagfile_or_when_it_is_first(self):
        argv = ["eval_main.py", "--flagfile=a.flags", "--model_dir=x"]
        self.assertEqual(flagfiles_first(argv), argv)
        self.assertEqual(flagfiles_first(["x", "--seed=1"]), ["x", "--seed=1"])

    def test_positional_arguments_after_a_double_dash_stay_last(self):
        self.assertEqual(flagfiles_first(["x", "--seed=1", "--flagfile=a", "--", "--flagfile=b"]),
                         ["x", "--flagfile=a", "--seed=1", "--", "--flagfile=b"])


if __name__ == "__main__":
    tf.test.main()
