"""End-to-end tests of train_main.py: artefacts, resume after a kill, bad flags."""

import csv
import glob
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import h5py
import keras
import tensorflow as tf
from absl.testing import parameterized

import tf_atalp.models  # noqa: F401  (registers the custom layers for load_model)
from tests import fault_fixtures
from tests.image_folder_fixtures import write_image_folder
from tf_atalp.data.synthetic import make_synthetic_arrays

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_RUN = [
    "--dataset=synthetic", "--synthetic_train_size=256", "--synthetic_test_size=64",
    "--image_size=32", "--depth=10", "--width=8", "--defense=at_alp", "--epsilon=0.03",
    "--step_size=0.01", "--pgd_iterations=2", "--batch_size=32", "--optimizer=adam",
    "--learning_rate=0.003", "--weight_decay=0", "--eval_pgd_iterations=2",
    "--mixed_precision=float32",  # the same numbers on every machine
]
HELP_LISTING_LINE = "Cache decoded images in memory."  # a line of --helpshort


def command(*args):
    return [sys.executable, os.path.join(ROOT, "train_main.py"), *args]


def run(*args, timeout=600, log_level="2"):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=log_level)
    return subprocess.run(command(*args), cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=environment)


def history_epochs(model_dir):
    with open(os.path.join(model_dir, "history.csv")) as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def final_weights(model_dir):
    network = keras.models.load_model(os.path.join(model_dir, "model.keras"), compile=False)
    return network.get_weights()


def assert_message_alone(test, result, expected):
    """A failed command: the message on stderr, no traceback, no flag listing."""
    test.assertNotEqual(result.returncode, 0)
    test.assertIn(expected, result.stderr)
    test.assertIn("error:", result.stderr)
    test.assertNotIn("Traceback", result.stderr)
    test.assertNotIn(HELP_LISTING_LINE, result.stderr + result.stdout)


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
                     "checkpoints/epoch_002.weights.h5", "saved_model/saved_model.pb",
                     "class_names.json", "training_curves.png", "robust_accuracy.json",
                     "saved_model/assets/class_names.txt"):
            self.assertTrue(os.path.exists(os.path.join(self.model_dir, name)), name)
        self.assertNotEmpty(os.listdir(os.path.join(self.model_dir, "logs")))
        # history.csv numbers epochs as the checkpoints do, from 1.
        self.assertEqual(history_epochs(self.model_dir), [1, 2])
        with open(os.path.join(self.model_dir, "class_names.json")) as f:
            self.assertEqual(json.load(f)["class_names"], [f"class_{k}" for k in range(4)])
        leftovers = [n for n in os.listdir(self.model_dir) if n.startswith(".tmp-")]
        self.assertEmpty(leftovers)

    def test_results_and_history_hold_the_metrics(self):
        with open(os.path.join(self.model_dir, "train_results.json")) as f:
            results = json.load(f)
        self.assertEqual(results["epochs"], 2)
        self.assertEqual(results["precision"]["policy"], "float32")
        self.assertGreater(results["training_seconds"], 0.0)
        for key in ("loss", "ce", "alp", "at", "clean_accuracy", "adversarial_accuracy",
                    "val_clean_accuracy", "val_adversarial_accuracy", "val_robust_accuracy"):
            self.assertIn(key, results["final_metrics"])
        with open(os.path.join(self.model_dir, "history.csv")) as f:
            rows = list(csv.DictReader(f))
        # The default --robust_accuracy_every=5 measures only the last of two epochs;
        # the column is there from epoch 1, nan where not measured.
        robust = [float(row["val_robust_accuracy"]) for row in rows]
        self.assertTrue(math.isnan(robust[0]), robust)
        self.assertBetween(robust[1], 0.0, 1.0)
        self.assertEqual(robust[1], results["final_metrics"]["val_robust_accuracy"])

    def test_attention_maps_are_in_tensorboard(self):
        tags = set()
        for path in glob.glob(os.path.join(self.model_dir, "logs", "attention", "events.*")):
            for event in tf.compat.v1.train.summary_iterator(path):
                tags.update(value.tag for value in event.summary.value)
        self.assertContainsSubset({"images/clean", "images/adversarial", "predictions",
                                   "attention/conv2_x/clean", "attention/conv5_x/adversarial"},
                                  tags)

    def test_prints_the_data_precision_and_a_readable_summary(self):
        out = self.result.stdout
        self.assertIn("Dataset synthetic: synthetic gratings made in process (seed 0)", out)
        self.assertIn("sizes    train 256, test 64 images, 32x32 px", out)
        self.assertIn("Precision: float32 (--mixed_precision=float32 was asked for)", out)
        self.assertIn(f"Training finished: {self.model_dir}", out)
        self.assertRegex(out, r"time +[0-9.]+ s of training in all")
        self.assertIn("robust   val_robust_accuracy: white-box attack pgd, epsilon 0.03, "
                      "step_size 0.01, iterations 10; 64 of 64 images, class-balanced: "
                      "4 classes, 16 each", out)
        self.assertNotIn("Training finished: {", self.result.stderr)  # no dict in a log line

    def test_keras_model_loads_after_a_plain_import_of_tf_atalp(self):
        code = ("import sys, keras, tf_atalp; "
                "m = keras.models.load_model(sys.argv[1]); print(sorted(m.output))")
        loaded = subprocess.run(
            [sys.executable, "-c", code, os.path.join(self.model_dir, "model.keras")],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        self.assertEqual(loaded.returncode, 0, loaded.stderr[-3000:])
        self.assertIn("'logits'", loaded.stdout)

    def test_keras_model_and_saved_model_agree(self):
        images, _ = make_synthetic_arrays(5, 32, 4, seed=9)
        network = keras.models.load_model(os.path.join(self.model_dir, "model.keras"))
        outputs = network(images)
        self.assertEqual(set(outputs), {"logits", "features"})
        self.assertEqual(set(outputs["features"]), {"conv2_x", "conv3_x", "conv4_x", "conv5_x"})
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

    def test_rerunning_a_finished_run_changes_nothing(self):
        # The flagfile reproduces the run: the model_dir check accepts it, and a finished
        # run is left exactly as it is (train_results.json included).
        files = ("train_results.json", "history.csv", "model.keras", "run_config.json")
        before = {name: open(os.path.join(self.model_dir, name), "rb").read() for name in files}
        flagfile = os.path.join(self.model_dir, "train.flags")
        again = run(f"--flagfile={flagfile}")
        self.assertEqual(again.returncode, 0, again.stderr[-3000:])
        self.assertIn("nothing to do", again.stdout)
        for name in files:
            with open(os.path.join(self.model_dir, name), "rb") as f:
                self.assertEqual(f.read(), before[name], name)

    def test_other_settings_in_the_same_model_dir_are_refused(self):
        other = run(*TINY_RUN, "--epochs=2", "--beta=0.7", f"--model_dir={self.model_dir}")
        assert_message_alone(self, other, "defense.beta")

    def test_a_model_dir_without_a_finished_epoch_takes_other_settings(self):
        # A start that finished no epoch (here: only its run_config.json) blocks nothing.
        model_dir = os.path.join(tempfile.mkdtemp(), "restarted")
        os.makedirs(model_dir)
        shutil.copy(os.path.join(self.model_dir, "run_config.json"), model_dir)
        other = run(*TINY_RUN, "--epochs=1", "--beta=0.7", f"--model_dir={model_dir}")
        self.assertEqual(other.returncode, 0, other.stderr[-3000:])
        with open(os.path.join(model_dir, "run_config.json")) as f:
            self.assertEqual(json.load(f)["defense"]["beta"], 0.7)


def attention_map_labels(model_dir):
    """The labels of the AttentionMaps images, from its "predictions" text in TensorBoard."""
    for path in glob.glob(os.path.join(model_dir, "logs", "attention", "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == "predictions":
                    text = value.tensor.string_val[0].decode()
                    return [int(label) for label in re.findall(r"label (\d+)", text)]
    return None


class ClassSortedFolderTest(tf.test.TestCase):
    """A test split listed class by class, larger than the callbacks' image counts."""

    def test_robust_accuracy_and_attention_maps_see_every_class(self):
        root = tempfile.mkdtemp()
        write_image_folder(os.path.join(root, "train"), {name: 8 for name in "abc"})
        write_image_folder(os.path.join(root, "test"), {name: 6 for name in "abc"})
        model_dir = os.path.join(tempfile.mkdtemp(), "run")
        result = run(*TINY_RUN, "--dataset=folder", f"--data_dir={root}", "--batch_size=8",
                     "--epochs=1", "--robust_accuracy_examples=6", "--attention_map_images=3",
                     "--noexport_saved_model", f"--model_dir={model_dir}",
                     log_level="0")  # TensorFlow's warnings on, the cache warning among them
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        # The first 6 test images are all class a; the callback takes 2 of each.
        with open(os.path.join(model_dir, "robust_accuracy.json")) as f:
            record = json.load(f)
        self.assertEqual(record["subset"]["per_class"], {"a": 2, "b": 2, "c": 2})
        self.assertIn("6 of 18 images, class-balanced: 3 classes, 2 each", result.stdout)
        self.assertEqual(attention_map_labels(model_dir), [0, 1, 2])
        self.assertNotIn("did not fully read the dataset being cached", result.stderr)


RESUME_RUN = [*TINY_RUN, "--synthetic_train_size=1024", "--epochs=3", "--seed=1"]
NO_SPACE_LINE = (r"^train_main.py: error: no space left on device while writing (\S+); the last "
                 r"complete checkpoint is (\S+/backup/epoch_\d{3}.weights.h5) \(epoch \d+\), "
                 r"rerun the same command after freeing space$")


def run_with_fault(fault, point, *args, timeout=600):
    return subprocess.run(fault_fixtures.command(fault, point, *args), cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))


def committed_epoch(model_dir):
    with open(os.path.join(model_dir, "backup", "training_metadata.json")) as f:
        return json.load(f)["epoch"]


def temporary_files(model_dir):
    return [os.path.join(folder, name) for folder, folders, files in os.walk(model_dir)
            for name in folders + files if name.startswith(".tmp-")]


def error_lines(stderr):
    """stderr without TensorFlow's and absl's log lines: what a person reads."""
    return [line for line in stderr.splitlines()
            if line.strip() and not re.match(r"^[IWE]\d{4} |^WARNING: All log messages", line)]


def try_mount_tmpfs(folder, size):
    """Mounts a tmpfs of `size` at `folder`; False where this process may not mount."""
    os.makedirs(folder, exist_ok=True)
    if not shutil.which("mount"):
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", folder],
                          capture_output=True).returncode == 0


class NewDefensesEndToEndTest(tf.test.TestCase, parameterized.TestCase):
    """trades, mart, fast_at, free_at and AWP from train_main, and eval_main on them."""

    @parameterized.named_parameters(
        ("trades", ["--defense=trades"], ("ce", "kl"), 3),
        ("mart", ["--defense=mart"], ("boosted_ce", "weighted_kl"), 3),
        ("fast_at", ["--defense=fast_at", "--lr_schedule=cyclic"], ("ce",), 3),
        ("fast_at_grad_align", ["--defense=fast_at", "--grad_align_lambda=0.2"],
         ("ce", "grad_align"), 3),
        # 6 epochs of work: 3 epochs of 2 replays.
        ("free_at", ["--defense=free_at", "--free_replays=2", "--epochs=6"], ("ce",), 3),
        ("at_alp_awp", ["--defense=at_alp", "--awp_gamma=0.005"], ("ce", "alp", "at"), 3),
    )
    def test_trains_and_its_loss_falls(self, flags, terms, epochs):
        model_dir = os.path.join(tempfile.mkdtemp(), "run")
        result = run(*TINY_RUN, "--epochs=3", "--attention_maps_every=0", *flags,
                     f"--model_dir={model_dir}")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        with open(os.path.join(model_dir, "history.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertLen(rows, epochs)
        self.assertLess(float(rows[-1]["loss"]), float(rows[0]["loss"]))
        with open(os.path.join(model_dir, "train_results.json")) as f:
            results = json.load(f)
        self.assertEqual(results["epochs"], epochs)
        self.assertContainsSubset(set(terms), set(results["final_metrics"]))
        single_step = "--defense=fast_at" in flags or "--defense=free_at" in flags
        self.assertEqual("catastrophic_overfitting" in results, single_step)
        if single_step:
            check = results["catastrophic_overfitting"]
            self.assertLen(check["held_out_accuracy"], epochs)
            self.assertEqual(check["attack"]["iterations"], 5)
        self.assertTrue(os.path.exists(os.path.join(model_dir, "saved_model", "saved_model.pb")))

    def test_eval_main_evaluates_an_awp_run_unchanged(self):
        model_dir = os.path.join(tempfile.mkdtemp(), "run")
        trained = run(*TINY_RUN, "--epochs=1", "--defense=trades", "--awp_gamma=0.005",
                      "--attention_maps_every=0", f"--model_dir={model_dir}")
        self.assertEqual(trained.returncode, 0, trained.stderr[-3000:])
        with open(os.path.join(model_dir, "run_config.json")) as f:
            self.assertEqual(json.load(f)["defense"],
                             {"name": "trades", "trades_beta": 6.0, "awp_gamma": 0.005})
        evaluated = subprocess.run(
            [sys.executable, os.path.join(ROOT, "eval_main.py"), f"--model_dir={model_dir}",
             "--epsilons=0.03", "--iterations=2", "--step_size=0.01"],
            cwd=ROOT, capture_output=True, text=True, timeout=600,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        self.assertEqual(evaluated.returncode, 0, evaluated.stderr[-3000:])
        with open(os.path.join(model_dir, "eval_results.json")) as f:
            document = json.load(f)
        self.assertEqual(document["model"]["defense"], "trades+awp")
        self.assertLessEqual(document["results"][0]["accuracy"], document["clean_accuracy"])


class ResumeTest(tf.test.TestCase):
    """Killed at any moment, out of disk, resumed: the weights of one uninterrupted run."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.base = tempfile.mkdtemp()
        cls.straight_dir = os.path.join(cls.base, "straight")
        straight = run(*RESUME_RUN, f"--model_dir={cls.straight_dir}")
        assert straight.returncode == 0, straight.stderr[-3000:]

    def assert_like_the_uninterrupted_run(self, model_dir):
        self.assertEqual(history_epochs(model_dir), [1, 2, 3])
        for name in ("epoch_001", "epoch_002", "epoch_003"):
            self.assertTrue(os.path.exists(os.path.join(model_dir, "checkpoints",
                                                        f"{name}.weights.h5")), name)
        self.assertTrue(os.path.exists(os.path.join(model_dir, "saved_model", "saved_model.pb")))
        self.assertEqual(temporary_files(model_dir), [])
        self.assertFalse(os.path.exists(os.path.join(model_dir, "run.lock")))
        # Same data order, augmentation and attack starts: the same weights.
        for resumed_weight, straight_weight in zip(final_weights(model_dir),
                                                    final_weights(self.straight_dir)):
            self.assertAllClose(resumed_weight, straight_weight, atol=1e-4, rtol=1e-4)

    def kill_then_resume(self, args, killed_dir):
        """Kills a run early in its second epoch, then resumes it; returns train_results."""
        process = subprocess.Popen(
            command(*args, f"--model_dir={killed_dir}"), cwd=ROOT, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        first_checkpoint = os.path.join(killed_dir, "backup", "training_metadata.json")
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
        self.assertRegex(resumed.stdout, r"Resuming from epoch [23] of 3")
        self.assertIn("Took over the stale lock", resumed.stderr)  # the killed one's
        with open(os.path.join(killed_dir, "train_results.json")) as f:
            return json.load(f)

    def test_killed_free_at_run_resumes_to_the_same_weights(self):
        # Its replays advance the optimizer step m times a batch; nothing else is drawn.
        args = [*RESUME_RUN, "--defense=free_at", "--free_replays=2", "--epochs=6"]
        killed_dir = os.path.join(self.base, "killed_free_at")
        results = self.kill_then_resume(args, killed_dir)
        self.assertEqual(results["epochs"], 3)  # 6 epochs of work: 3 epochs of 2 replays
        self.assertEqual(history_epochs(killed_dir), [1, 2, 3])
        straight_dir = os.path.join(self.base, "straight_free_at")
        straight = run(*args, f"--model_dir={straight_dir}")
        self.assertEqual(straight.returncode, 0, straight.stderr[-3000:])
        for resumed_weight, straight_weight in zip(final_weights(killed_dir),
                                                    final_weights(straight_dir)):
            self.assertAllClose(resumed_weight, straight_weight, atol=1e-4, rtol=1e-4)

    def test_killed_run_resumes_to_the_weights_of_an_uninterrupted_run(self):
        killed_dir = os.path.join(self.base, "killed")
        results = self.kill_then_resume(RESUME_RUN, killed_dir)
        self.assertEqual(results["epochs"], 3)
        self.assertIn("val_clean_accuracy", results["final_metrics"])
        self.assertLess(results["epochs_run_by_this_process"], 3)
        # Every epoch once, numbered from 1; the total time spans both processes.
        self.assertGreater(results["training_seconds"], results["seconds_this_process"])
        self.assert_like_the_uninterrupted_run(killed_dir)
        with open(os.path.join(self.straight_dir, "train_results.json")) as f:
            reference = json.load(f)["final_metrics"]
        self.assertAllClose(results["final_metrics"]["val_clean_accuracy"],
                            reference["val_clean_accuracy"])
        self.assertGreater(reference["val_clean_accuracy"], 0.9)

    def test_killed_inside_writes_resumes_to_the_weights_of_an_uninterrupted_run(self):
        model_dir = os.path.join(self.base, "killed_in_writes")
        args = [*RESUME_RUN, f"--model_dir={model_dir}"]
        # (where it is killed, the epoch committed after it)
        for point, committed in (("h5:4:5", 1),  # in epoch 2's backup weights
                                 ("commit:1", 1),  # epoch 2's weights written, not committed
                                 ("h5:1:5", 1),  # in epoch 2's checkpoint, in a third process
                                 ("export", 3)):  # in the SavedModel export, after epoch 3
            killed = run_with_fault("kill", point, *args)
            self.assertEqual(killed.returncode, -signal.SIGKILL, f"{point}: {killed.stderr[-3000:]}")
            self.assertEqual(committed_epoch(model_dir), committed, point)
        self.assertFalse(os.path.exists(os.path.join(model_dir, "saved_model")))
        self.assertNotEmpty(temporary_files(model_dir))  # what the kills left

        resumed = run(*args)
        self.assertEqual(resumed.returncode, 0, resumed.stderr[-3000:])
        self.assertIn("Took over the stale lock", resumed.stderr)
        with open(os.path.join(model_dir, "train_results.json")) as f:
            self.assertEqual(json.load(f)["epochs_run_by_this_process"], 0)
        self.assert_like_the_uninterrupted_run(model_dir)

    def assert_full_disk_line(self, result, model_dir):
        """One line, status 1, no traceback or crash; the previous commit is whole."""
        self.assertEqual(result.returncode, 1, result.stderr[-3000:])
        lines = error_lines(result.stderr)
        self.assertLen(lines, 1, result.stderr[-3000:])
        match = re.match(NO_SPACE_LINE, lines[0])
        self.assertIsNotNone(match, lines[0])
        self.assertTrue(match.group(1).startswith(model_dir), lines[0])
        self.assertEqual(temporary_files(model_dir), [])
        self.assertFalse(os.path.exists(os.path.join(model_dir, "run.lock")))
        with h5py.File(match.group(2)) as f:  # whole: every array reads back
            arrays = []
            f.visititems(lambda name, item: arrays.append(item[()])
                         if isinstance(item, h5py.Dataset) else None)
        self.assertNotEmpty(arrays)
        return match

    def test_a_full_disk_ends_in_one_line_and_the_rerun_resumes(self):
        model_dir = os.path.join(self.base, "full_disk")
        args = [*RESUME_RUN, f"--model_dir={model_dir}"]
        full = run_with_fault("enospc", "h5:4:5", *args)  # in epoch 2's backup weights
        match = self.assert_full_disk_line(full, model_dir)
        self.assertEqual(match.group(1), os.path.join(model_dir, "backup", "epoch_002.weights.h5"))
        self.assertEqual(committed_epoch(model_dir), 1)
        resumed = run(*args)
        self.assertEqual(resumed.returncode, 0, resumed.stderr[-3000:])
        self.assertIn("Resuming from epoch 2 of 3", resumed.stdout)
        self.assert_like_the_uninterrupted_run(model_dir)

    def test_a_real_full_disk_ends_in_one_line_and_the_rerun_resumes(self):
        mount_point = os.path.join(self.base, "tmpfs")
        if not try_mount_tmpfs(mount_point, "3m"):  # the size; one checkpoint fits
            self.skipTest("no permission to mount a tmpfs here")
        self.addCleanup(subprocess.run, ["umount", mount_point])
        model_dir = os.path.join(mount_point, "run")
        args = [*RESUME_RUN, f"--model_dir={model_dir}"]
        self.assert_full_disk_line(run(*args), model_dir)
        subprocess.run(["mount", "-o", "remount,size=64m", mount_point], check=True)
        resumed = run(*args)  # the same command, after freeing space
        self.assertEqual(resumed.returncode, 0, resumed.stderr[-3000:])
        self.assert_like_the_uninterrupted_run(model_dir)


class OneProcessPerModelDirTest(tf.test.TestCase):

    def test_a_second_trainer_on_the_same_model_dir_is_refused_naming_the_first(self):
        model_dir = os.path.join(tempfile.mkdtemp(), "run")
        # Long enough (about 30 s after it takes the lock) for the second to start meanwhile.
        args = [*TINY_RUN, "--synthetic_train_size=1024", "--epochs=3", f"--model_dir={model_dir}"]
        first = subprocess.Popen(command(*args), cwd=ROOT, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True,
                                 env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        lock = os.path.join(model_dir, "run.lock")
        deadline = time.time() + 300
        while not os.path.exists(lock) and time.time() < deadline:
            self.assertIsNone(first.poll(), "the first run ended before holding its lock")
            time.sleep(0.05)
        second = run(*args)
        _, first_stderr = first.communicate(timeout=600)
        self.assertEqual(first.returncode, 0, first_stderr[-3000:])
        self.assertEqual(second.returncode, 1, second.stderr[-3000:])
        lines = error_lines(second.stderr)
        self.assertLen(lines, 1, second.stderr)
        self.assertRegex(lines[0], rf"^train_main.py: error: `model_dir` '{re.escape(model_dir)}' "
                                   rf"is in use by process {first.pid} on host \S+ \(since ")
        self.assertEqual(history_epochs(model_dir), [1, 2, 3])  # the first run's alone
        self.assertFalse(os.path.exists(lock))


class BadFlagsTest(tf.test.TestCase):

    def assert_refused(self, flags, expected_message, base=TINY_RUN):
        model_dir = os.path.join(tempfile.mkdtemp(), "never")
        result = run(*base, *flags, f"--model_dir={model_dir}", timeout=120)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(expected_message, result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        self.assertNotIn(HELP_LISTING_LINE, result.stderr + result.stdout)
        self.assertFalse(os.path.exists(model_dir), "a refused run must write nothing")
        return model_dir

    def test_out_of_range_epsilon(self):
        self.assert_refused(["--epsilon=2"], "epsilon")

    def test_unknown_defense(self):
        self.assert_refused(["--defense=magic"], "defense")

    def test_step_larger_than_epsilon(self):
        self.assert_refused(["--epsilon=0.01", "--step_size=0.05"], "`step_size` must be <=")

    def test_missing_data_folder(self):
        self.assert_refused(["--dataset=flowers17", "--data_dir=/no/such/folder"],
                            "/no/such/folder")

    def test_empty_class_folder(self):
        root = tempfile.mkdtemp()
        write_image_folder(root, {"cat": 4, "dog": 0})
        self.assert_refused(["--dataset=folder", f"--data_dir={root}"], "holds no images")

    def test_corrupt_image_is_named_with_the_flag_and_skip_corrupt_then_works(self):
        root = tempfile.mkdtemp()
        write_image_folder(root, {"cat": 12, "dog": 12})
        with open(os.path.join(root, "dog", "broken.jpg"), "wb") as f:
            f.write(b"not a jpeg at all")
        folder_run = [*TINY_RUN, "--dataset=folder", f"--data_dir={root}", "--batch_size=8",
                      "--epochs=1"]
        model_dir = self.assert_refused([], "--skip_corrupt", base=folder_run)
        self.assertIn("broken.jpg", run(*folder_run, f"--model_dir={model_dir}").stderr)
        # The rerun that the error suggests is not blocked by the failed start.
        skipped = run(*folder_run, "--skip_corrupt", f"--model_dir={model_dir}")
        self.assertEqual(skipped.returncode, 0, skipped.stderr[-3000:])
        self.assertIn("train 20, test 4 images", skipped.stdout)  # 25 files, 1 corrupt

    def test_a_model_dir_that_is_a_file_is_refused(self):
        path = os.path.join(tempfile.mkdtemp(), "a_file")
        open(path, "w").close()
        result = run(*TINY_RUN, f"--model_dir={path}", timeout=120)
        assert_message_alone(self, result, f"`model_dir` must be a folder, but {path!r} is a "
                                           f"file. Received: model_dir={path!r}")
        self.assertEqual(os.path.getsize(path), 0)

    def test_unknown_attention_group(self):
        self.assert_refused(["--attention_groups=conv9_x"], "attention_groups")

    def test_awp_around_an_undefended_run(self):
        self.assert_refused(["--defense=none", "--awp_gamma=0.005"],
                            "AWP needs an adversarially trained defense")

    def test_cyclic_schedule_with_a_warm_up(self):
        self.assert_refused(["--lr_schedule=cyclic", "--warmup_epochs=1", "--epochs=2"],
                            "`warmup_epochs` must be 0")

    def test_adversarial_defense_without_iterations(self):
        self.assert_refused(["--pgd_iterations=0"], "pgd_iterations")

    def test_a_flag_before_the_flagfile_still_overrides_it(self):
        # quickstart.flags sets --pgd_iterations=5 (an at_alp run needs >= 1); the typed 0
        # must be the one used, so the run is refused (with the flagfile's, it would train).
        self.assert_refused(["--pgd_iterations=0", "--flagfile=configs/quickstart.flags"],
                            "pgd_iterations", base=[])


if __name__ == "__main__":
    tf.test.main()
