"""Tests of the run driver's parts that need no training (train_main_test runs whole runs)."""

import dataclasses
import os

import tensorflow as tf

from tf_atalp.attacks import PGD
from tf_atalp.data import DataConfig
from tf_atalp.defenses import get_defense
from tf_atalp.model_dir import keep_history_up_to
from tf_atalp.training import run
from tf_atalp.training.config import ModelConfig, RunConfig, TrainConfig

HEADER = "epoch,loss,val_loss\n"


class KeepHistoryTest(tf.test.TestCase):

    def history(self, text):
        path = os.path.join(self.get_temp_dir(), "history.csv")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_rows_after_the_last_committed_epoch_and_torn_rows_are_dropped(self):
        # Epoch 3's row was written before a kill (not backed up); a full disk cut a row short.
        path = self.history(HEADER + "1,0.9,0.8\n2,0.7,0.6\n3,0.5,0.4\n1")
        keep_history_up_to(path, 2)
        with open(path) as f:
            self.assertEqual(f.read().replace("\r\n", "\n"), HEADER + "1,0.9,0.8\n2,0.7,0.6\n")
        path = self.history(HEADER + "1,0.9,0.8\n2,0.7")  # torn: too few fields
        keep_history_up_to(path, 2)
        with open(path) as f:
            self.assertEqual(f.read().replace("\r\n", "\n"), HEADER + "1,0.9,0.8\n")

    def test_a_whole_history_is_left_as_it_is(self):
        text = HEADER + "1,0.9,0.8\n"
        path = self.history(text)
        keep_history_up_to(path, 1)
        with open(path) as f:
            self.assertEqual(f.read(), text)


class CheckpointSizeTest(tf.test.TestCase):

    def config(self):
        return RunConfig(
            data=DataConfig(dataset="synthetic", image_size=32),
            model=ModelConfig(depth=10, width=8, image_size=32, num_classes=4),
            defense=get_defense("at_alp"), attack=PGD(epsilon=0.03, step_size=0.01, iterations=2),
            train=TrainConfig(model_dir="/tmp/x"))

    def test_network_size_counts_the_network_of_the_run(self):
        config = self.config()
        weights, trainable = run.network_size(config)
        network = run.build_network(config)
        self.assertEqual(weights, network.count_params())
        self.assertEqual(trainable, sum(int(tf.size(w)) for w in network.trainable_weights))
        self.assertLess(trainable, weights)  # BatchNorm's moving statistics are not trained

    def test_optimizer_slots(self):
        # Adam and AdamW keep two moments per weight, SGD its momentum (none at momentum 0).
        for optimizer, momentum, slots in (("adam", 0.9, 2), ("adamw", 0.9, 2), ("sgd", 0.9, 1),
                                           ("sgd", 0.0, 0)):
            train = TrainConfig(model_dir="/tmp/x", optimizer=optimizer, momentum=momentum)
            self.assertEqual(run.optimizer_slots(train), slots, optimizer)
            # Keras' optimizer holds that many numbers per weight (and a few scalars).
            weights = [tf.Variable(tf.zeros([3, 5])), tf.Variable(tf.zeros([7]))]
            keras_optimizer = run.make_optimizer(
                dataclasses.replace(self.config(), train=train), steps_per_epoch=10)
            keras_optimizer.build(weights)
            numbers = sum(int(tf.size(v)) for v in keras_optimizer.variables if v.shape.rank)
            self.assertEqual(numbers, slots * 22, optimizer)


if __name__ == "__main__":
    tf.test.main()
