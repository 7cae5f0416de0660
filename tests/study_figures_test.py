"""The study's training-curves figure: mean over seeds, epochs not measured left out."""

import tensorflow as tf

from tf_atalp.study.figures import training_curves_figure


class TrainingCurvesFigureTest(tf.test.TestCase):

    def test_robust_accuracy_every_n_epochs_draws_the_measured_epochs(self):
        # RobustAccuracy every 2 epochs and the last: None where a seed was not measured.
        seed0 = {"epoch": [1, 2, 3, 4, 5], "val_robust_accuracy": [None, 0.2, None, 0.4, 0.5],
                 "val_clean_accuracy": [0.3, 0.4, 0.5, 0.6, 0.7]}
        seed1 = {"epoch": [1, 2, 3, 4, 5], "val_robust_accuracy": [None, 0.4, None, 0.6, 0.7],
                 "val_clean_accuracy": [0.5, 0.6, 0.7, 0.8, 0.9]}
        figure = training_curves_figure({"pat": [seed0, seed1]}, "tiny")
        robust, clean = figure.axes[0].lines
        self.assertAllEqual(robust.get_xdata(), [2, 4, 5])
        self.assertAllClose(robust.get_ydata(), [30.0, 50.0, 60.0])  # percent, mean of seeds
        self.assertAllEqual(clean.get_xdata(), [1, 2, 3, 4, 5])
        self.assertAllClose(clean.get_ydata(), [40.0, 50.0, 60.0, 70.0, 80.0])

    def test_no_curve_is_refused(self):
        with self.assertRaisesRegex(ValueError, "No run has"):
            training_curves_figure({"pat": [{"epoch": [1]}]}, "empty")


if __name__ == "__main__":
    tf.test.main()
