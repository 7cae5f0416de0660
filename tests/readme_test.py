"""The README's "train your own Keras model" example runs as written."""

import os
import re
import subprocess
import sys

import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKER = "<!-- readme-example"


def readme_example() -> str:
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    after_marker = text[text.index(MARKER):]
    return re.search(r"```python\n(.*?)```", after_marker, re.DOTALL).group(1)


class ReadmeExampleTest(tf.test.TestCase):

    def test_example_runs_and_trains_a_robust_model(self):
        code = readme_example()
        self.assertIn("AdversarialTrainer", code)
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
            timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT))
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        metrics = eval(result.stdout.strip().splitlines()[-1], {"np": None})  # the printed dict
        self.assertGreater(float(metrics["clean_accuracy"]), 0.9)
        self.assertGreater(float(metrics["adversarial_accuracy"]), 0.5)


if __name__ == "__main__":
    tf.test.main()
