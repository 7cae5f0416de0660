"""Tests of tf_atalp.training.summaries: the run summary printed after training."""

import os
import tempfile

import tensorflow as tf

from tf_atalp.io_utils import atomic_write_json
from tf_atalp.model_dir import ROBUST_ACCURACY_FILE
from tf_atalp.training.summaries import run_summary

RESULTS = {"dataset": "flowers17", "num_train": 1088, "num_test": 272, "num_classes": 17,
           "epochs": 2, "epochs_run_by_this_process": 2, "steps_per_epoch": 34,
           "training_seconds": 12.5, "seconds_this_process": 12.5,
           "precision": {"policy": "float32"},
           "final_metrics": {"loss": 2.5, "val_clean_accuracy": 0.3,
                             "val_robust_accuracy": 0.125}}
RECORD_TEXT = ("white-box attack pgd, epsilon 0.03125, step_size 0.0078125, iterations 10; "
               "256 of 272 images, class-balanced: 17 classes, 15-16 each")


class RunSummaryTest(tf.test.TestCase):

    def test_says_what_the_robust_accuracy_was_measured_on(self):
        model_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
        atomic_write_json(os.path.join(model_dir, ROBUST_ACCURACY_FILE),
                          {"name": "val_robust_accuracy", "text": RECORD_TEXT})
        summary = run_summary(model_dir, RESULTS)
        self.assertIn("robust accuracy (RobustAccuracy callback's PGD) 0.1250", summary)
        self.assertIn(f"  robust   val_robust_accuracy: {RECORD_TEXT}\n", summary)

    def test_no_robust_line_without_the_record_or_the_metric(self):
        model_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
        self.assertNotIn("  robust ", run_summary(model_dir, RESULTS))
        atomic_write_json(os.path.join(model_dir, ROBUST_ACCURACY_FILE),
                          {"name": "val_robust_accuracy", "text": RECORD_TEXT})
        without_metric = dict(RESULTS, final_metrics={"loss": 2.5})
        self.assertNotIn("  robust ", run_summary(model_dir, without_metric))


if __name__ == "__main__":
    tf.test.main()
