"""The README's "train your own Keras model" examples run as written."""

import os
import re
import subprocess
import sys

import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKER = "<!-- readme-example"


def readme_examples() -> list[str]:
    """The python blocks that follow a readme-example marker, in order."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    parts = text.split(MARKER)[1:]
    return [re.search(r"```python\n(.*?)```", part, re.DOTALL).group(1) for part in parts]


def run_example(test_case, code):
    """Runs `code` in a fresh Python; returns the value its last printed line shows."""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
        timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT))
    test_case.assertEqual(result.returncode, 0, result.stderr[-3000:])
    return eval(result.stdout.strip().splitlines()[-1], {"np": None})  # the printed dict


class ReadmeExampleTest(tf.test.TestCase):

    def test_there_are_three_examples(self):
        self.assertLen(readme_examples(), 3)

    def test_example_runs_and_trains_a_robust_model(self):
        code = readme_examples()[0]
        self.assertIn("with_feature_outputs", code)
        metrics = run_example(self, code)
        self.assertGreater(float(metrics["clean_accuracy"]), 0.9)
        self.assertGreater(float(metrics["adversarial_accuracy"]), 0.5)
        self.assertAllClose(metrics["sparse_categorical_accuracy"], metrics["clean_accuracy"])

    def test_keras_applications_example_trains(self):
        code = readme_examples()[1]
        self.assertIn("keras.applications", code)
        self.assertIn('weights=None', code)
        history = run_example(self, code)
        for key in ("loss", "ce", "alp", "at", "clean_accuracy", "adversarial_accuracy"):
            self.assertLen(history[key], 1, key)

    def test_callbacks_example_logs_robust_accuracy(self):
        code = readme_examples()[2]
        self.assertIn("RobustAccuracy", code)
        history = run_example(self, code)
        self.assertLen(history["val_robust_accuracy"], 2)
        self.assertTrue(all(0.0 <= value <= 1.0 for value in history["val_robust_accuracy"]))


if __name__ == "__main__":
    tf.test.main()
