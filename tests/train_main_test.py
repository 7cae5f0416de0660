"""End-to-end tests of train_main.py: artefacts, resume after a kill, bad flags."""

import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import keras
import tensorflow as tf

import tf_atalp.models  # noqa: F401  (registers the custom layers for load_model)
from tf_atalp.data.synthetic import make_synthetic_arrays

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_RUN = [
    "--dataset=synthetic", "--synthetic_train_size=256", "--synthetic_test_size=64",
    "--image_size=32", "--depth=10", "--width=8", "--defense=at_alp", "--epsilon=0.03",
    "--step_size=0.01", "--pgd_iterations=2", "--batch_size=32", "--optimizer=adam",
    "--learning_rate=0.003", "--weight_decay=0", "--eval_pgd_iterations=2",
]


def command(*args):
    return [sys.executable, os.path.join(ROOT, "train_main.py"), *args]


def run(*args, timeout=600):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(command(*args), cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=environment)


def history_epochs(model_dir):
    with open(os.path.join(model_dir, "history.csv")) as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


class TrainMainEndToEndTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.model_dir = os.path.join(tempfile.mkdtemp(), "run")
        cls.result = run(*TINY_RUN, "--epochs=2", f"--model_dir={cls.model_dir}")

    def test_run_succeeds(self):
        self.assertEqual(self.result.returncode, 0, self.result.stderr[-3000:])

    def test_every_artefact_is_written(self):
        for name in ("run_config.json", "train.flags", "model.keras", "history.csv",
                     "train_results.json", "checkpoints/epoch_001.weights.h5",
                     "checkpoints/epoch_002.weights.h5", "saved_model/saved_model.pb"):
            self.assertTrue(os.path.exists(os.path.join(self.model_dir, name)), name)
        self.assertNotEmpty(os.listdir(os.path.join(self.model_dir, "logs")))
        self.assertEqual(history_epochs(self.model_dir), [0, 1])
        leftovers = [n for n in os.listdir(self.model_dir) if n.startswith(".tmp-")]
        self.assertEmpty(leftovers)

    def test_results_and_history_hold_the_metrics(self):
        with open(os.path.join(self.model_dir, "train_results.json")) as f:
            results = json.load(f)
        self.assertEqual(results["epochs"], 2)
        for key in ("loss", "ce", "alp", "at", "clean_accuracy", "adversarial_accuracy",
                    "val_clean_accuracy", "val_adversarial_accuracy"):
            self.assertIn(key, results["final_metrics"])

    def test_keras_model_and_saved_model_agree(self):
        images, _ = make_synthetic_arrays(5, 32, 4, seed=9)
        network = keras.models.load_model(os.path.join(self.model_dir, "model.keras"))
        outputs = network(images)
        self.assertEqual(set(outputs), {"logits", "conv2_x", "conv3_x", "conv4_x", "conv5_x"})
        serving = tf.saved_model.load(os.path.join(self.model_dir, "saved_model"))
        served = serving.signatures["serving_default"](images=tf.constant(images))
        self.assertAllClose(served["logits"], outputs["logits"], atol=1e-4)

    def test_eval_main_evaluates_the_run(self):
        results_file = os.path.join(self.model_dir, "eval_results.json")
        evaluated = subprocess.run(
            [sys.executable, os.path.join(ROOT, "eval_main.py"), f"--model_dir={self.model_dir}",
             "--epsilons=0.03", "--iterations=2,4", "--step_size=0.01"],
            cwd=ROOT, capture_output=True, text=True, timeout=600,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        self.assertEqual(evaluated.returncode, 0, evaluated.stderr[-3000:])
        with open(results_file) as f:
            document = json.load(f)
        self.assertEqual(document["dataset"]["name"], "synthetic")
        self.assertEqual(document["dataset"]["num_examples"], 64)
        self.assertEqual(document["model"]["defense"], "at_alp")
        self.assertEqual([r["iterations"] for r in document["results"]], [2, 4])
        for point in document["results"]:
            self.assertEqual(point["threat_model"], "white_box")
            self.assertLessEqual(point["accuracy"], document["clean_accuracy"])

    def test_flagfile_reproduces_the_run(self):
        # Same settings: the model_dir check accepts it and training resumes at the end.
        flagfile = os.path.join(self.model_dir, "train.flags")
        again = run(f"--flagfile={flagfile}")
        self.assertEqual(again.returncode, 0, again.stderr[-3000:])
        with open(os.path.join(self.model_dir, "train_results.json")) as f:
            self.assertEqual(json.load(f)["epochs_run_by_this_process"], 0)

    def test_other_settings_in_the_same_model_dir_are_refused(self):
        other = run(*TINY_RUN, "--epochs=2", "--beta=0.7", f"--model_dir={self.model_dir}")
        self.assertNotEqual(other.returncode, 0)
        self.assertIn("defense.beta", other.stderr)


class ResumeTest(tf.test.TestCase):

    def test_killed_run_resumes_to_the_same_epoch_count(self):
        base = tempfile.mkdtemp()
        args = [*TINY_RUN, "--synthetic_train_size=1024", "--epochs=3", "--seed=1"]
        killed_dir = os.path.join(base, "killed")
        process = subprocess.Popen(
            command(*args, f"--model_dir={killed_dir}"), cwd=ROOT, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        first_checkpoint = os.path.join(killed_dir, "checkpoints", "epoch_001.weights.h5")
        deadline = time.time() + 300
        while not os.path.exists(first_checkpoint) and time.time() < deadline:
            self.assertIsNone(process.poll(), "training ended before it could be killed")
            time.sleep(0.05)
        time.sleep(1.0)  # into the second epoch
        process.send_signal(signal.SIGKILL)
        process.wait()
        self.assertFalse(os.path.exists(os.path.join(killed_dir, "model.keras")))

        resumed = run(*args, f"--model_dir={killed_dir}")
        self.assertEqual(resumed.returncode, 0, resumed.stderr[-3000:])
        with open(os.path.join(killed_dir, "train_results.json")) as f:
            results = json.load(f)
        self.assertEqual(results["epochs"], 3)
        self.assertIn("val_clean_accuracy", results["final_metrics"])
        self.assertLess(results["epochs_run_by_this_process"], 3)
        self.assertEqual(sorted(set(history_epochs(killed_dir))), [0, 1, 2])
        self.assertTrue(os.path.exists(os.path.join(killed_dir, "checkpoints",
                                                    "epoch_003.weights.h5")))

        straight_dir = os.path.join(base, "straight")
        straight = run(*args, f"--model_dir={straight_dir}")
        self.assertEqual(straight.returncode, 0, straight.stderr[-3000:])
        with open(os.path.join(straight_dir, "train_results.json")) as f:
            reference = json.load(f)["final_metrics"]
        accuracy = results["final_metrics"]["val_clean_accuracy"]
        self.assertGreater(accuracy, 0.9)
        self.assertGreater(accuracy, reference["val_clean_accuracy"] - 0.1)


class BadFlagsTest(tf.test.TestCase):

    def assert_refused(self, flags, expected_message):
        model_dir = os.path.join(tempfile.mkdtemp(), "never")
        result = run(*TINY_RUN, *flags, f"--model_dir={model_dir}", timeout=120)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(expected_message, result.stderr)
        self.assertFalse(os.path.exists(model_dir), "a refused run must write nothing")

    def test_out_of_range_epsilon(self):
        self.assert_refused(["--epsilon=2"], "epsilon")

    def test_unknown_defense(self):
        self.assert_refused(["--defense=magic"], "defense")

    def test_step_larger_than_epsilon(self):
        self.assert_refused(["--epsilon=0.01", "--step_size=0.05"], "`step_size` must be <=")

    def test_missing_data_folder(self):
        self.assert_refused(["--dataset=flowers17", "--data_dir=/no/such/folder"],
                            "/no/such/folder")

    def test_unknown_attention_group(self):
        self.assert_refused(["--attention_groups=conv9_x"], "attention_groups")

    def test_adversarial_defense_without_iterations(self):
        self.assert_refused(["--pgd_iterations=0"], "pgd_iterations")


if __name__ == "__main__":
    tf.test.main()
