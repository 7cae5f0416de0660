"""Tests of tf_atalp.protocol.figures: Figure 4 as a PNG and in TensorBoard, Figures 3 and 6."""

import glob
import os

import numpy as np
import tensorflow as tf

from tests.evaluation_fixtures import temporary_folder
from tf_atalp.protocol.figures import (
    plot_attention_grid, plot_loss_landscapes, plot_sweep, write_attention_summaries)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"  # the first bytes of every PNG file
SIZE = 8
GROUPS = ["conv2_x", "conv3_x"]


def panels(count=2):
    """An `attention_panels` dict of one network "m": maps in [0, 1] of two groups."""
    rng = np.random.default_rng(0)
    return {"m": {which: {"maps": {g: rng.uniform(size=(count, 4, 4)) for g in GROUPS},
                          "predictions": np.zeros(count, int)}
                  for which in ("clean", "adversarial")}}


class FiguresTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.folder = temporary_folder(self)

    def assertIsPng(self, path):
        with open(path, "rb") as f:
            self.assertTrue(f.read().startswith(PNG_SIGNATURE))

    def test_attention_summaries_hold_the_images_and_every_map(self):
        images = np.zeros((2, SIZE, SIZE, 3), np.float32)
        write_attention_summaries(self.folder, panels(), images, images + 0.1)
        tags = set()
        for event_file in glob.glob(os.path.join(self.folder, "events.*")):
            for event in tf.compat.v1.train.summary_iterator(event_file):
                tags |= {value.tag for value in event.summary.value}
        self.assertEqual(tags, {"images/clean", "images/adversarial",
                                "attention/m/conv2_x/clean", "attention/m/conv2_x/adversarial",
                                "attention/m/conv3_x/clean", "attention/m/conv3_x/adversarial"})

    def test_attention_grid_is_a_png(self):
        image = np.full((SIZE, SIZE, 3), 0.5, np.float32)
        rows = [{"label": f"m, {which}: cat", "adversarial": which == "adversarial",
                 "maps": {g: m[0] for g, m in panels()["m"][which]["maps"].items()}}
                for which in ("clean", "adversarial")]
        path = os.path.join(self.folder, "figure4.png")
        self.assertEqual(plot_attention_grid(image, image, rows, GROUPS, "t", path), path)
        self.assertIsPng(path)

    def test_sweep_and_landscapes_are_pngs_and_need_something_to_draw(self):
        sweep = os.path.join(self.folder, "figure3.png")
        plot_sweep([{"title": "white-box", "lines": {"m": [(0, 0.9), (10, 0.4)]}}],
                   {"m": 0.9}, "Figure 3", sweep)
        self.assertIsPng(sweep)
        landscape = os.path.join(self.folder, "figure6.png")
        grid = np.linspace(-0.1, 0.1, 3)
        plot_loss_landscapes({"m": {"a": grid, "b": grid, "loss": np.ones((3, 3))}},
                             "Figure 6", landscape)
        self.assertIsPng(landscape)
        with self.assertRaisesRegex(ValueError, "`panels` must not be empty"):
            plot_sweep([], {}, "Figure 3", sweep)
        with self.assertRaisesRegex(ValueError, "`landscapes` must not be empty"):
            plot_loss_landscapes({}, "Figure 6", landscape)


if __name__ == "__main__":
    tf.test.main()
