"""Keras callbacks of a training run: epoch-keyed data, epoch timing, a 1-based history."""

import time

import keras

from tf_atalp.data.pipeline import EpochCounter


class SetDataEpoch(keras.callbacks.Callback):
    """Tells the training pipeline which epoch starts, so its shuffle and
    augmentation depend on (seed, epoch) alone, also after a resume."""

    def __init__(self, counter: EpochCounter):
        super().__init__()
        self.counter = counter

    def on_epoch_begin(self, epoch, logs=None):
        self.counter.set(epoch)


class EpochTimer(keras.callbacks.Callback):
    """Adds `epoch_seconds` (wall time of the epoch, validation included) to the epoch logs.

    Put it before the callbacks that record the logs (CSV, TensorBoard).
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._started


class HistoryCSV(keras.callbacks.CSVLogger):
    """`keras.callbacks.CSVLogger` numbering epochs from 1, as the
    `epoch_NNN.weights.h5` checkpoints are (Keras counts from 0)."""

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch + 1, logs)
