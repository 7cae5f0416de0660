"""Tests of tf_atalp.plots: PNGs from hand-made history files and results documents."""

import json
import os
import sys

import tensorflow as tf
from absl.testing import parameterized

from tests.evaluation_fixtures import temporary_folder
from tf_atalp.model_dir import ROBUST_ACCURACY_FILE, RUN_CONFIG_FILE
from tf_atalp.plots import (
    history_series, plot_accuracy_vs_steps, plot_training_curves, training_curves_figure)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FULL_HISTORY = (
    "epoch,adversarial_accuracy,alp,at,ce,clean_accuracy,epoch_seconds,loss,lr,"
    "val_adversarial_accuracy,val_clean_accuracy,val_loss\n"
    "1,0.25,0.5,0.25,1.4,0.3,12.5,1.8,0.1,0.2,0.35,1.7\n"
    "2,0.3,0.4,0.2,1.2,0.45,11.0,1.5,0.05,0.28,0.5,1.4\n"
    "3,0.4,0.3,0.15,1.0,0.6,11.2,1.2,0.01,0.33,0.55,1.3\n")

ROBUST_HISTORY = (
    "epoch,clean_accuracy,val_clean_accuracy,val_loss,val_robust_accuracy\n"
    "1,0.3,0.35,1.7,0.1\n"
    "2,0.45,0.5,1.4,0.25\n"
    "3,0.6,0.55,1.3,0.2\n")
# What RobustAccuracy.describe() writes (the keys the plot reads).
ROBUST_RECORD = {"name": "val_robust_accuracy", "attack": {
    "attack": "pgd", "epsilon": 8 / 255, "step_size": 2 / 255, "iterations": 10},
    "subset": {"num_examples": 256, "split_size": 272, "per_class": {"a": 128, "b": 128}}}


# Every loss term the three defenses log, an accuracy and a column that is no loss term.
TERMS_HISTORY = (
    "epoch,loss,ce,alp,at,input_gradient,members_ce,negative_entropy,negative_log_det,"
    "clean_accuracy,epoch_seconds,val_loss\n"
    "1,2.0,1.0,0.5,0.25,0.1,1.5,-0.5,-0.2,0.3,12.0,1.9\n"
    "2,1.5,0.8,0.4,0.2,0.05,1.2,-0.6,-0.3,0.4,11.0,1.6\n")


def panel_lines(axes):
    """{legend label: (epochs, values)} of one panel."""
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
            for line in axes.lines}


def accuracy_lines(figure):
    """{legend label: (epochs, values)} of the accuracies panel."""
    return panel_lines(figure.axes[1])


def results_document(epsilons=(2 / 255, 8 / 255), steps=(10, 20, 50)):
    """A hand-made document in the shape of `results_document`, with an extra key per point."""
    points = []
    for epsilon in epsilons:
        for k in steps:
            points.append({
                "threat_model": "white_box", "attack": "pgd", "norm": "linf",
                "epsilon": epsilon, "step_size": 2 / 255, "iterations": k,
                "run_iterations": max(steps), "random_start": True, "restarts": 1,
                "objective": "cross_entropy", "accuracy": 0.5 - epsilon - k / 1000,
                "worst_iterate_accuracy": 0.45 - epsilon - k / 1000, "future_key": [1, 2]})
    return {"clean_accuracy": 0.8, "results": points}


class PlotsTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        self.folder = temporary_folder(self)

    def write(self, name, text):
        path = os.path.join(self.folder, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def assertIsPng(self, path):
        with open(path, "rb") as f:
            data = f.read()
        self.assertTrue(data.startswith(PNG_SIGNATURE), data[:8])
        self.assertGreater(len(data), 1000)

    def assertNoTemporaryFiles(self):
        self.assertEqual([n for n in os.listdir(self.folder) if n.startswith(".tmp-")], [])

    def test_training_curves_of_a_full_history(self):
        output = os.path.join(self.folder, "figures", "curves.png")  # the folder is made
        self.assertEqual(plot_training_curves(self.write("history.csv", FULL_HISTORY), output),
                         output)
        self.assertIsPng(output)
        self.assertNoTemporaryFiles()

    @parameterized.named_parameters(
        ("losses_only", "epoch,loss,ce\n1,2.0,2.0\n2,1.5,1.5\n"),
        ("accuracies_only", "epoch,clean_accuracy,val_clean_accuracy\n1,0.3,0.2\n"),
        ("unknown_columns_only", "epoch,lr,epoch_seconds\n1,0.1,3.0\n2,0.1,2.9\n"),
        ("empty_and_bad_cells", "epoch,loss,val_loss,note\n1,2.0,,hello\n2,nan,abc,x\n,1,1,\n"))
    def test_training_curves_of_a_partial_history(self, text):
        output = os.path.join(self.folder, "curves.png")
        plot_training_curves(self.write("history.csv", text), output)
        self.assertIsPng(output)

    def test_robust_accuracy_is_drawn_with_its_attack_and_image_count(self):
        history = self.write("history.csv", ROBUST_HISTORY)
        self.write(ROBUST_ACCURACY_FILE, json.dumps(ROBUST_RECORD))
        lines = accuracy_lines(training_curves_figure(history))
        label = "val_robust_accuracy (PGD, epsilon 8/255, step 2/255, 10 steps; 256 images)"
        self.assertEqual(list(lines), ["clean_accuracy", "val_clean_accuracy", label])
        self.assertEqual(lines[label], ([1.0, 2.0, 3.0], [0.1, 0.25, 0.2]))

    def test_robust_accuracy_without_its_record_keeps_the_column_name(self):
        lines = accuracy_lines(training_curves_figure(self.write("history.csv", ROBUST_HISTORY)))
        self.assertIn("val_robust_accuracy", lines)

    def test_history_series_keeps_every_numeric_cell(self):
        path = self.write("history.csv",
                          "epoch,loss,val_loss,lr,note\n1,2.0,,0.1,x\n2,1.5,oops,0.1,y\nz,1,1,1,1\n")
        self.assertEqual(history_series(path), {"loss": [(1.0, 2.0), (2.0, 1.5)],
                                              "lr": [(1.0, 0.1), (2.0, 0.1)]})

    @parameterized.named_parameters(
        ("at_alp", {"name": "at_alp"}, ["ce", "alp", "at"]),
        ("igr", {"name": "igr", "igr_lambda": 100.0}, ["ce", "input_gradient"]),
        ("adp", {"name": "adp", "members": 3},
         ["members_ce", "negative_entropy", "negative_log_det"]),
        ("adp_without_entropy", {"name": "adp", "entropy_weight": 0.0},
         ["members_ce", "negative_log_det"]))
    def test_losses_panel_draws_the_loss_terms_of_the_runs_defense(self, defense, terms):
        history = self.write("history.csv", TERMS_HISTORY)
        self.write(RUN_CONFIG_FILE, json.dumps({"defense": defense}))
        lines = panel_lines(training_curves_figure(history).axes[0])
        self.assertEqual(list(lines), ["loss", *terms, "val_loss"])
        self.assertEqual(lines[terms[-1]][0], [1.0, 2.0])

    def test_without_a_run_config_the_losses_panel_draws_the_totals(self):
        lines = panel_lines(training_curves_figure(self.write("history.csv", TERMS_HISTORY))
                            .axes[0])
        self.assertEqual(list(lines), ["loss", "val_loss"])

    def test_training_curves_replace_an_existing_png(self):
        output = self.write("curves.png", "old")
        plot_training_curves(self.write("history.csv", FULL_HISTORY), output)
        self.assertIsPng(output)

    def test_missing_or_empty_history_is_an_error(self):
        output = os.path.join(self.folder, "curves.png")
        with self.assertRaisesRegex(ValueError, "`history_csv` must be an existing file"):
            plot_training_curves(os.path.join(self.folder, "missing.csv"), output)
        for text in ("", "epoch,loss\n"):
            with self.assertRaisesRegex(ValueError, "`history_csv` has no rows"):
                plot_training_curves(self.write("history.csv", text), output)
        self.assertFalse(os.path.exists(output))
        self.assertNoTemporaryFiles()

    @parameterized.parameters(((8 / 255,), (10,)), ((2 / 255, 4 / 255, 8 / 255), (10, 20, 200)))
    def test_accuracy_vs_steps(self, epsilons, steps):
        output = os.path.join(self.folder, "accuracy.png")
        self.assertEqual(plot_accuracy_vs_steps(results_document(epsilons, steps), output),
                         output)
        self.assertIsPng(output)
        self.assertNoTemporaryFiles()

    def test_accuracy_vs_steps_needs_results(self):
        with self.assertRaisesRegex(ValueError, "at least one entry in 'results'"):
            plot_accuracy_vs_steps({"clean_accuracy": 0.5, "results": []},
                                   os.path.join(self.folder, "accuracy.png"))

    def test_pyplot_is_not_used(self):
        """No pyplot: the user's backend and open figures stay as they were."""
        had_pyplot = "matplotlib.pyplot" in sys.modules  # another test may have imported it
        plot_training_curves(self.write("history.csv", FULL_HISTORY),
                             os.path.join(self.folder, "curves.png"))
        plot_accuracy_vs_steps(results_document(), os.path.join(self.folder, "accuracy.png"))
        if had_pyplot:
            self.assertEqual(sys.modules["matplotlib.pyplot"].get_fignums(), [])
        else:
            self.assertNotIn("matplotlib.pyplot", sys.modules)


if __name__ == "__main__":
    tf.test.main()
