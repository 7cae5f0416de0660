"""Keras callbacks: a run's bookkeeping, and two that watch robustness in any `fit`.

- `SetDataEpoch`, `EpochTimer`, `HistoryCSV`: epoch-keyed data, epoch
  timing, a 1-based history (train_main's runs).
- `RobustAccuracy`: white-box accuracy under an attack on a class-balanced
  subset of held-out data, in the epoch logs (`val_robust_accuracy`), for
  EarlyStopping, ModelCheckpoint, CSVLogger and TensorBoard.
- `AttentionMaps`: clean and adversarial attention maps as TensorBoard images.
"""

import contextlib
import time

import keras
import tensorflow as tf

from tf_atalp.attacks.base import Attack, correct_predictions
from tf_atalp.attacks.model_fns import inference_logits
from tf_atalp.data.pipeline import EpochCounter
from tf_atalp.data.subset import balanced_examples, subset_text
from tf_atalp.io_utils import writing
from tf_atalp.losses import attention_map
from tf_atalp.models.outputs import features_of, logits_of
from tf_atalp.seeds import derive_seed


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
    `epoch_NNN.weights.h5` checkpoints are (Keras counts from 0).

    `columns`: keys that some epochs' logs lack (a callback that runs every
    n epochs, such as RobustAccuracy); they are written as `nan` where
    missing, so the column exists from the first row (CSVLogger fixes its
    columns at the first epoch) and each row stays one epoch.

    A failed write (a full disk) closes the file, dropping the unwritten
    row, and raises NoSpaceError naming it; the file keeps what was written.
    """

    def __init__(self, filename: str, separator: str = ",", append: bool = False,
                 columns: tuple[str, ...] = ()):
        super().__init__(filename, separator=separator, append=append)
        self.columns = tuple(columns)

    def on_epoch_end(self, epoch, logs=None):
        logs = {**{column: float("nan") for column in self.columns}, **(logs or {})}
        try:
            with writing(self.filename):
                super().on_epoch_end(epoch + 1, logs)
        except BaseException:
            with contextlib.suppress(OSError):  # closing flushes the row again, and fails again
                self.csv_file.close()
            raise


def _due(epoch: int, every_n_epochs: int) -> bool:
    """Whether a callback running every n epochs runs after `epoch` (0-based)."""
    return every_n_epochs > 0 and (epoch + 1) % every_n_epochs == 0


def _check_every(every_n_epochs) -> int:
    if isinstance(every_n_epochs, bool) or not isinstance(every_n_epochs, int) \
            or every_n_epochs < 1:
        raise ValueError(
            f"`every_n_epochs` must be an int >= 1. Received: every_n_epochs={every_n_epochs!r}")
    return every_n_epochs


class RobustAccuracy(keras.callbacks.Callback):
    """White-box accuracy under `attack` on held-out data, added to the epoch logs.

    After every `every_n_epochs`-th epoch, and after the last epoch of the
    `fit`, it attacks `self.model` (in inference mode) on the same images
    and writes `logs[name]` (default "val_robust_accuracy"): the fraction
    classified correctly on the attack's final images. Other epochs' logs
    lack the key (EarlyStopping and ModelCheckpoint skip them; Keras'
    History then lists only the measured epochs). The images are a class-balanced subset of `data`
    (`tf_atalp.data.subset`: classes take turns, so a class-sorted split
    gives every class its share), chosen and read into memory once, when the
    callback is made. Later callbacks and `history` see the value, so
    `EarlyStopping(monitor="val_robust_accuracy", mode="max")`,
    `ModelCheckpoint(save_best_only=True, monitor="val_robust_accuracy",
    mode="max")`, CSVLogger and TensorBoard work on it: put this callback
    before them. Works with any model whose output is logits or a dict
    holding "logits".

    Args:
      data: a tf.data.Dataset of (images, labels) batches in a fixed order
        (read twice, now), or (x, y) arrays; images float in [0, 1].
      attack: an `Attack` (e.g. `PGD(epsilon, step_size, iterations)`).
      every_n_epochs: how often (>= 1).
      max_examples: attack this many examples, class-balanced (None: all);
        they are held in memory.
      batch_size: examples attacked at once.
      seed: random starts of batch b draw from (seed, b): the same every epoch.
      name: the key added to the logs.
      class_names: names of the labels 0, 1, ... in `describe()` (None: the labels).
      verbose: 1 prints the value, the attack's settings and the images' classes
        after each measurement.
    """

    def __init__(self, data, attack, every_n_epochs: int = 1, max_examples: int | None = None,
                 batch_size: int = 64, seed: int = 0, name: str = "val_robust_accuracy",
                 class_names=None, verbose: int = 0):
        super().__init__()
        if not isinstance(attack, Attack):
            raise ValueError(f"`attack` must be an Attack (PGD, FGSM, ...). Received: {attack!r}")
        if max_examples is not None and max_examples < 1:
            raise ValueError(f"`max_examples` must be >= 1. Received: max_examples={max_examples}")
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1. Received: batch_size={batch_size}")
        self.attack = attack
        self.every_n_epochs = _check_every(every_n_epochs)
        self.max_examples = max_examples
        self.batch_size = batch_size
        self.seed = seed
        self.name = name
        self.verbose = verbose
        self.images, self.labels, self.subset = balanced_examples(data, max_examples,
                                                                  class_names)

    @property
    def num_examples(self) -> int:
        """How many images each measurement attacks."""
        return int(len(self.labels))

    def describe(self) -> dict:
        """What the value measures, JSON-ready: the attack, the images (their classes), in words."""
        settings = ", ".join(f"{k} {v}" for k, v in self.attack.describe().items()
                             if k in ("attack", "epsilon", "step_size", "iterations"))
        return {"name": self.name, "threat_model": "white_box",
                "attack": self.attack.describe(), "every_n_epochs": self.every_n_epochs,
                "subset": self.subset,
                "text": f"white-box {settings}; {subset_text(self.subset)}"}

    def robust_accuracy(self) -> float:
        """The accuracy of `self.model` under the attack on the chosen images, now."""
        model_fn = inference_logits(self.model)
        correct = 0
        for index, start in enumerate(range(0, self.num_examples, self.batch_size)):
            images = tf.constant(self.images[start:start + self.batch_size])
            labels = tf.constant(self.labels[start:start + self.batch_size])
            adversarial = self.attack.attack(model_fn, images, labels,
                                             seed=derive_seed(self.seed, "robust", index))
            correct += int(tf.reduce_sum(tf.cast(correct_predictions(
                model_fn(adversarial.adversarial_images), labels), tf.int32)))
        return correct / self.num_examples

    def on_epoch_end(self, epoch, logs=None):
        last = epoch + 1 == (self.params or {}).get("epochs")
        if logs is not None and (_due(epoch, self.every_n_epochs) or last):
            logs[self.name] = self.robust_accuracy()
            if self.verbose:
                print(f"\nEpoch {epoch + 1}: {self.name} {logs[self.name]:.4f} "
                      f"({self.describe()['text']})")


def _unit_range_maps(maps: tf.Tensor) -> tf.Tensor:
    """[N, h, w] attention maps -> [N, h, w, 1] images, each scaled to [0, 1]."""
    low = tf.reduce_min(maps, axis=[1, 2], keepdims=True)
    high = tf.reduce_max(maps, axis=[1, 2], keepdims=True)
    return ((maps - low) / tf.maximum(high - low, 1e-12))[..., None]


class AttentionMaps(keras.callbacks.Callback):
    """Clean and adversarial attention maps of chosen feature maps, as TensorBoard images.

    After every `every_n_epochs`-th epoch it writes, under `log_dir`: the
    images and their adversarial twins ("images/clean", "images/adversarial"),
    the attention map F(A) = mean_c |A_c|^2 of each group on both
    ("attention/<group>/clean", ".../adversarial"; each map scaled to [0, 1]),
    and a text summary of each image's label and its clean and adversarial
    predictions ("predictions").

    Args:
      images: float [N, H, W, C] in [0, 1] (a few: 4 to 16).
      labels: int [N].
      log_dir: the TensorBoard folder to write to.
      groups: names of feature maps (the network's "features" output); None:
        all of them.
      attack: the `Attack` making the adversarial images; None: the
        trainer's training attack (`model.attack`).
      network: the network whose feature maps are drawn; None: `model.network`
        of an AdversarialTrainer, else the model itself.
      every_n_epochs: how often (>= 1).
      seed: the attack's seed (the same draw every epoch).
    """

    def __init__(self, images, labels, log_dir: str, groups=None, attack=None, network=None,
                 every_n_epochs: int = 1, seed: int = 0):
        super().__init__()
        self.images = tf.convert_to_tensor(images, tf.float32)
        self.labels = tf.cast(labels, tf.int32)
        if self.images.shape.rank != 4 or self.images.shape[0] != self.labels.shape[0]:
            raise ValueError("`images` must be [N, H, W, C] with one label each. Received "
                             f"shapes: {self.images.shape} and {self.labels.shape}")
        self.log_dir = log_dir
        self.groups = None if groups is None else tuple(groups)
        self.attack = attack
        self.network = network
        self.every_n_epochs = _check_every(every_n_epochs)
        self.seed = seed
        self._writer = None

    def _parts(self):
        network = self.network or getattr(self.model, "network", self.model)
        attack = self.attack or getattr(self.model, "attack", None)
        if attack is None:
            raise ValueError("AttentionMaps needs an `attack` (the model has none).")
        return network, attack

    def on_epoch_end(self, epoch, logs=None):
        if not _due(epoch, self.every_n_epochs):
            return
        network, attack = self._parts()
        model_fn = inference_logits(network)
        adversarial = attack.attack(model_fn, self.images, self.labels,
                                    seed=self.seed).adversarial_images
        passes = {"clean": self.images, "adversarial": adversarial}
        outputs = {which: network(images, training=False) for which, images in passes.items()}
        features = {which: features_of(out) for which, out in outputs.items()}
        groups = self.groups or tuple(sorted(features["clean"]))
        missing = [g for g in groups if g not in features["clean"]]
        if missing or not groups:
            raise ValueError(f"AttentionMaps: the network has no feature map named {missing}. "
                             f"Its features: {sorted(features['clean'])}")
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        count = int(self.images.shape[0])
        with self._writer.as_default(step=epoch + 1):
            for which, images in passes.items():
                tf.summary.image(f"images/{which}", images, max_outputs=count)
                for group in groups:
                    tf.summary.image(f"attention/{group}/{which}",
                                     _unit_range_maps(attention_map(features[which][group])),
                                     max_outputs=count)
            predicted = {which: tf.argmax(logits_of(out), axis=-1).numpy()
                         for which, out in outputs.items()}
            lines = [f"image {i}: label {int(label)}, clean prediction "
                     f"{int(predicted['clean'][i])}, adversarial prediction "
                     f"{int(predicted['adversarial'][i])}"
                     for i, label in enumerate(self.labels.numpy())]
            tf.summary.text("predictions", "\n\n".join(lines))
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
