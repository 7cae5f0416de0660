"""SavedModel export for serving, and loading it back as an attackable callable.

The exported `serving_default` signature maps float32 images [N, S, S, 3] in
[0, 1] (input "images", any N) to {"logits": [N, K] float32, "probabilities":
[N, K] float32}; the conv-group outputs used in training are not exported.

The export is written to a temporary folder beside `export_dir` and renamed
into place, so an interrupted export never leaves a half SavedModel there.
"""

import os
import shutil
import tempfile

import keras
import tensorflow as tf

from tf_atalp.attacks.pgd import model_logits

SERVING_ENDPOINT = "serve"
SERVING_SIGNATURE = "serving_default"
SAVED_MODEL_FILE = "saved_model.pb"


def _image_size(network: keras.Model) -> int:
    shape = tuple(network.inputs[0].shape)
    if len(shape) != 4 or shape[1] is None or shape[1] != shape[2] or shape[3] != 3:
        raise ValueError(
            "`network` must take square RGB images [N, S, S, 3] of a fixed size S. "
            f"Received input shape: {shape}")
    return int(shape[1])


def serving_function(network: keras.Model) -> tf.types.experimental.PolymorphicFunction:
    """The tf.function exported as `serving_default`: images -> logits, probabilities."""
    size = _image_size(network)

    @tf.function(input_signature=[
        tf.TensorSpec([None, size, size, 3], tf.float32, name="images")])
    def serve(images):
        logits = model_logits(network, images, training=False)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1)}

    return serve


def _is_saved_model(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, SAVED_MODEL_FILE))


def export_saved_model(network: keras.Model, export_dir: str) -> str:
    """Writes `network` as a serving SavedModel at `export_dir`; returns the path.

    An existing SavedModel at `export_dir` is replaced; any other existing
    non-empty folder is an error (nothing is deleted that is not a SavedModel).
    """
    export_dir = os.path.abspath(export_dir)
    if os.path.exists(export_dir):
        if not os.path.isdir(export_dir) or (os.listdir(export_dir)
                                             and not _is_saved_model(export_dir)):
            raise ValueError(
                "`export_dir` must be a new folder, an empty one or an existing SavedModel. "
                f"Received: export_dir={export_dir!r}")
    parent = os.path.dirname(export_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent, prefix=".tmp-export-")
    try:
        archive = keras.export.ExportArchive()
        archive.track(network)
        archive.add_endpoint(SERVING_ENDPOINT, serving_function(network))
        written = os.path.join(staging, "saved_model")
        archive.write_out(written, verbose=False)
        _replace_folder(written, export_dir, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return export_dir


def _replace_folder(source: str, target: str, staging: str) -> None:
    """Moves `source` to `target`; an old `target` waits in `staging` until that succeeds."""
    previous = os.path.join(staging, "previous")
    if os.path.exists(target):
        os.rename(target, previous)
    try:
        os.rename(source, target)
    except BaseException:
        if os.path.exists(previous):
            os.rename(previous, target)
        raise


class ServingModel:
    """A loaded serving SavedModel as a model callable: `model(images) -> logits`.

    Gradients flow through it, so the attacks can run white-box against the
    served graph. Call it inside a `tf.function` (as the attacks do) when
    taking gradients.

    Attributes:
      image_size: S, the side of the [N, S, S, 3] input images.
      num_classes: K, the number of logits.
    """

    def __init__(self, export_dir: str):
        if not _is_saved_model(export_dir):
            raise FileNotFoundError(
                f"No {SAVED_MODEL_FILE} in {export_dir!r}: is it a SavedModel folder?")
        self._loaded = tf.saved_model.load(export_dir)
        if SERVING_SIGNATURE not in self._loaded.signatures:
            raise ValueError(
                f"The SavedModel at {export_dir!r} has no {SERVING_SIGNATURE!r} signature. "
                f"Received signatures: {sorted(self._loaded.signatures)}")
        self._signature = self._loaded.signatures[SERVING_SIGNATURE]
        _, inputs = self._signature.structured_input_signature
        outputs = self._signature.structured_outputs
        if set(inputs) != {"images"} or "logits" not in outputs:
            raise ValueError(
                f"The {SERVING_SIGNATURE!r} signature of {export_dir!r} must map 'images' to "
                f"'logits'. Received inputs: {sorted(inputs)}, outputs: {sorted(outputs)}")
        self.image_size = int(inputs["images"].shape[1])
        self.num_classes = int(outputs["logits"].shape[-1])
        self.export_dir = export_dir

    def __call__(self, images, training=False):
        """float32 [N, K] logits of float images [N, S, S, 3] in [0, 1]."""
        if training:
            raise ValueError(
                "A serving SavedModel runs in inference mode only. Received: training=True")
        images = tf.convert_to_tensor(images, tf.float32)
        if images.shape.rank != 4 or tuple(images.shape[1:]) != (
                self.image_size, self.image_size, 3):
            raise ValueError(
                f"`images` must be [N, {self.image_size}, {self.image_size}, 3]. "
                f"Received shape: {images.shape}")
        return self._signature(images=images)["logits"]


def load_serving_model(export_dir: str) -> ServingModel:
    """Loads a SavedModel written by `export_saved_model`; see `ServingModel`."""
    return ServingModel(export_dir)
