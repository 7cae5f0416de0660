"""--strategy=multi_worker for real: two worker processes on this machine (loopback TF_CONFIG).

Slow (about a minute each): every test starts TensorFlow processes.
"""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

import tf_atalp  # noqa: F401  (registers the custom layers for load_model)
from tf_atalp.training.run import worker_scratch_dir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = ["--flagfile=configs/quickstart.flags", "--synthetic_test_size=128", "--batch_size=64",
       "--mixed_precision=float32", "--robust_accuracy_examples=64", "--attention_maps_every=0"]
TIMEOUT = 420


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start(model_dir, flags, index=None, ports=None):
    """Starts train_main.py; as worker `index` of a two-worker cluster on `ports` if given."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, "train_main.py", *RUN, *flags, f"--model_dir={model_dir}"]
    if index is not None:
        env["TF_CONFIG"] = json.dumps({
            "cluster": {"worker": [f"localhost:{port}" for port in ports]},
            "task": {"type": "worker", "index": index}})
        command.append("--strategy=multi_worker")
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def start_cluster(model_dir, flags, ports):
    return [start(model_dir, flags, index, ports) for index in range(2)]


def finish(process):
    output, _ = process.communicate(timeout=TIMEOUT)
    return process.returncode, output


def history_epochs(model_dir):
    with open(os.path.join(model_dir, "history.csv")) as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def final_metrics(model_dir):
    with open(os.path.join(model_dir, "train_results.json")) as f:
        return json.load(f)


class MultiWorkerTest(tf.test.TestCase):

    def assert_usable_model(self, model_dir):
        network = keras.models.load_model(os.path.join(model_dir, "model.keras"))
        logits = network(np.zeros((2, 32, 32, 3), np.float32))["logits"]
        self.assertEqual(logits.shape, (2, 4))
        self.assertTrue(np.all(np.isfinite(logits)))

    def test_two_workers_train_like_one(self):
        root = tempfile.mkdtemp(dir=self.get_temp_dir())
        flags = ["--epochs=2", "--synthetic_train_size=512"]
        workers = start_cluster(os.path.join(root, "two"), flags, free_ports(2))
        outputs = [finish(worker) for worker in workers]
        for index, (code, output) in enumerate(outputs):
            self.assertEqual(code, 0, f"worker {index}:\n{output[-3000:]}")
        single = start(os.path.join(root, "one"), flags)
        code, output = finish(single)
        self.assertEqual(code, 0, output[-3000:])

        two, one = final_metrics(os.path.join(root, "two")), final_metrics(os.path.join(root, "one"))
        self.assertEqual(two["workers"], 2)
        self.assertEqual(history_epochs(os.path.join(root, "two")), [1, 2])
        self.assert_usable_model(os.path.join(root, "two"))
        # Same global batches (each worker takes half of each); BatchNorm statistics and the
        # attacks' random starts are per replica, so the runs agree within a tolerance.
        for key in ("val_clean_accuracy", "val_adversarial_accuracy", "clean_accuracy"):
            self.assertAllClose(two["final_metrics"][key], one["final_metrics"][key], atol=0.15,
                                msg=key)
        # Only the chief wrote the model_dir; worker 1's own folder is gone.
        self.assertIn("Worker 1 of 2 (not the chief)", outputs[1][1])
        self.assertFalse(os.path.exists(worker_scratch_dir(os.path.join(root, "two"), 1)))

    def test_a_killed_worker_resumes_from_the_backup(self):
        model_dir = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), "run")
        flags = ["--epochs=3", "--synthetic_train_size=1024"]
        ports = free_ports(2)
        chief, worker = start_cluster(model_dir, flags, ports)
        metadata = os.path.join(model_dir, "backup", "training_metadata.json")
        deadline = time.time() + TIMEOUT
        while not os.path.exists(metadata):  # epoch 1 is finished and backed up
            self.assertIsNone(chief.poll(), "the chief ended before finishing epoch 1")
            self.assertLess(time.time(), deadline)
            time.sleep(0.2)
        time.sleep(0.2)  # early in epoch 2 (a fast machine must not finish the run first)
        worker.send_signal(signal.SIGKILL)
        finish(worker)
        code, output = finish(chief)
        # A synchronous cluster cannot go on without a worker: the chief stops with an error.
        self.assertNotEqual(code, 0, output[-2000:])
        self.assertNotEqual(history_epochs(model_dir)[-1], 3)

        chief, worker = start_cluster(model_dir, flags, ports)  # the same commands again
        (chief_code, chief_output), (worker_code, worker_output) = finish(chief), finish(worker)
        self.assertEqual(chief_code, 0, chief_output[-3000:])
        self.assertEqual(worker_code, 0, worker_output[-3000:])
        self.assertRegex(chief_output, r"Resuming from epoch [23] of 3")
        self.assertEqual(history_epochs(model_dir), [1, 2, 3])
        self.assertEqual(final_metrics(model_dir)["epochs"], 3)
        self.assert_usable_model(model_dir)
        self.assertFalse(os.path.exists(worker_scratch_dir(model_dir, 1)))


if __name__ == "__main__":
    tf.test.main()
