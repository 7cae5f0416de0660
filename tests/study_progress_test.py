"""The study's progress line: estimates rescaled by the cells finished, before and during a run."""

import unittest

from tf_atalp.study.runner import Progress


class ProgressTest(unittest.TestCase):

    def test_without_finished_cells_the_estimates_stand(self):
        progress = Progress({"a": ("protocol", 100.0), "b": ("autoattack", 50.0)})
        self.assertEqual(progress.scaled("a"), 100.0)
        self.assertEqual(progress.left(), 150.0)
        self.assertEqual(progress.calibration(), {})

    def test_cells_recorded_before_rescale_their_kind_only(self):
        # Two AutoAttack cells took 20 + 40 s where 100 + 100 s were estimated: x 0.3.
        finished = {"old1": ("autoattack", 100.0, 20.0), "old2": ("autoattack", 100.0, 40.0)}
        progress = Progress({"a": ("protocol", 100.0), "b": ("autoattack", 50.0)}, finished)
        self.assertAlmostEqual(progress.scaled("b"), 15.0)
        self.assertEqual(progress.scaled("a"), 100.0)
        self.assertAlmostEqual(progress.left(), 115.0)
        self.assertEqual(set(progress.calibration()), {"autoattack"})
        self.assertAlmostEqual(progress.calibration()["autoattack"], 0.3)

    def test_cells_run_now_join_those_recorded_before(self):
        finished = {"old": ("autoattack", 100.0, 20.0)}
        progress = Progress({"a": ("autoattack", 100.0), "b": ("autoattack", 100.0)}, finished)
        progress.finish("a", 80.0)  # (20 + 80) / (100 + 100)
        self.assertAlmostEqual(progress.scaled("b"), 50.0)
        self.assertAlmostEqual(progress.left(), 50.0)
        self.assertAlmostEqual(progress.left(running="b", done_share=0.5), 25.0)


if __name__ == "__main__":
    unittest.main()
