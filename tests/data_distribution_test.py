"""Tests of distribution: input contexts, make_input_fn with the default and a Mirrored strategy."""

import json
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tests.real_data import PROJECT_ROOT
from tf_atalp.data import DataConfig, make_dataset, make_input_fn

CONFIG = DataConfig("synthetic", batch_size=8, synthetic_train_size=32, synthetic_test_size=20)

# Runs in a fresh process: splitting the CPU into two logical devices must happen
# before TensorFlow initialises, and must not leak into other test modules.
MIRRORED_SCRIPT = """
import json, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tf_atalp.data import DataConfig, make_input_fn
config = DataConfig("synthetic", batch_size=8, synthetic_train_size=32, synthetic_test_size=20)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
result = {}
for split, training in (("train", True), ("test", False)):
    dataset = strategy.distribute_datasets_from_function(make_input_fn(config, split, training))
    result[split] = [[list(x.shape) for x in strategy.experimental_local_results(images)]
                     for images, _ in dataset]
print(json.dumps(result))
"""


def rows(dataset):
    return [image.tobytes() for images, _ in dataset for image in images.numpy()]


class InputContextTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.parameters(("train", True), ("test", False))
    def test_shards_are_disjoint_and_cover_the_split(self, split, training):
        config = DataConfig("synthetic", batch_size=4, synthetic_train_size=32,
                            synthetic_test_size=16, augment=False)
        num_examples = 32 if split == "train" else 16
        shards = []
        for pipeline in range(2):
            context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline,
                                                 num_replicas_in_sync=2)
            dataset = make_dataset(config, split, training, context)
            self.assertEqual([int(x.shape[0]) for x, _ in dataset], [2] * (num_examples // 4))
            shards.append(rows(dataset))
        whole = rows(make_dataset(config, split, training=False))
        self.assertEmpty(set(shards[0]) & set(shards[1]))
        self.assertCountEqual(shards[0] + shards[1], whole)

    def test_one_pipeline_many_replicas_splits_only_the_batch(self):
        context = tf.distribute.InputContext(num_input_pipelines=1, input_pipeline_id=0,
                                             num_replicas_in_sync=4)
        sizes = [int(x.shape[0]) for x, _ in make_dataset(CONFIG, "test", False, context)]
        self.assertEqual(sizes, [2] * 10)

    def test_default_strategy(self):
        strategy = tf.distribute.get_strategy()
        dataset = strategy.distribute_datasets_from_function(make_input_fn(CONFIG, "train", True))
        shapes = [tuple(images.shape) for images, _ in dataset]
        self.assertEqual(shapes, [(8, 32, 32, 3)] * 4)

    def test_make_input_fn_validates_at_once(self):
        missing = os.path.join(self.get_temp_dir(), "missing")
        with self.assertRaisesRegex(ValueError, "`data_dir` must be an existing directory"):
            make_input_fn(DataConfig("folder", data_dir=missing), "train", True)
        with self.assertRaisesRegex(ValueError, "Received: split='validation'"):
            make_input_fn(CONFIG, "validation", False)

    def test_mirrored_strategy_on_two_cpu_replicas(self):
        env = dict(os.environ, PYTHONPATH=PROJECT_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
        completed = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT], env=env,
                                   capture_output=True, text=True, timeout=300, check=False)
        self.assertEqual(completed.returncode, 0, completed.stderr[-3000:])
        result = json.loads(completed.stdout.strip().splitlines()[-1])
        self.assertEqual(result["train"], [[[4, 32, 32, 3]] * 2] * 4)
        per_replica_test = np.array(result["test"])[..., 0].sum()
        self.assertEqual(per_replica_test, 20)


if __name__ == "__main__":
    tf.test.main()
