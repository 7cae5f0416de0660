"""SavedModel export for serving, and loading it back as an attackable callable.

The exported `serving_default` signature maps float32 images [N, S, S, 3] in
[0, 1] (input "images", any N) to {"logits": [N, K] float32, "probabilities":
[N, K] float32}; the conv-group outputs used in training are not exported.
The signature refuses, with an InvalidArgumentError, images whose shape is
not [N, S, S, 3] (its declared shape alone does not stop a caller of the
signature from feeding another size) and pixel values outside [0, 1] (such
as uint8 values 0..255 cast to float).

The SavedModel's assets/ holds `serving_info.json` (the signature described:
input, outputs, what wrong input does, class names, and for a randomized
model what is drawn on every call) and, when class names are given,
`class_names.txt` (one per line, in label order). A randomized model (input
noise, random resizing) stays randomized in the SavedModel: each call of the
signature draws anew, and "randomized" in serving_info.json and the
signature function's docstring say so.

The export is written to a temporary folder beside `export_dir` and renamed
into place, so an interrupted export never leaves a half SavedModel there.
"""

import json
import os
import shutil
import tempfile
from collections.abc import Sequence

import keras
import tensorflow as tf

from tf_atalp.io_utils import TEMPORARY_PREFIX
from tf_atalp.models.outputs import logits_of

SERVING_ENDPOINT = "serve"
SERVING_SIGNATURE = "serving_default"
SAVED_MODEL_FILE = "saved_model.pb"
ASSETS_DIR = "assets"  # where tf.saved_model puts the files of tracked Assets
CLASS_NAMES_ASSET = "class_names.txt"  # one class name per line, label order
SERVING_INFO_ASSET = "serving_info.json"  # the serving signature described
SERVING_INFO_FORMAT_VERSION = 1
# Attributes of the SavedModel's root object that hold the Assets above.
_ASSET_ATTRIBUTES = {CLASS_NAMES_ASSET: "class_names_file",
                     SERVING_INFO_ASSET: "serving_info_file"}


def _image_size(network: keras.Model) -> int:
    shape = tuple(network.inputs[0].shape)
    if len(shape) != 4 or shape[1] is None or shape[1] != shape[2] or shape[3] != 3:
        raise ValueError(
            "`network` must take square RGB images [N, S, S, 3] of a fixed size S. "
            f"Received input shape: {shape}")
    return int(shape[1])


def _input_description(size: int) -> str:
    return f"images must be [N, {size}, {size}, 3] float32 in [0, 1]"


def _check_images(images: tf.Tensor, size: int) -> list[tf.Operation]:
    """Graph asserts: `images` is [N, size, size, 3] with every value in [0, 1]."""
    shape = tf.shape(images)
    padded = tf.pad(shape, [[0, 4]])[:4]  # any rank compares without a shape error
    right_shape = tf.logical_and(
        tf.equal(tf.size(shape), 4),
        tf.reduce_all(tf.equal(padded[1:], tf.constant([size, size, 3]))))
    shape_check = tf.debugging.Assert(
        right_shape,
        [f"{_input_description(size)}; received height/width/channels not "
         f"{size}/{size}/3: images of shape", shape],
        summarize=8, name="check_image_shape")
    with tf.control_dependencies([shape_check]):
        # Comparisons with NaN are false, so NaN pixels are refused too.
        in_range = tf.reduce_all(tf.logical_and(images >= 0.0, images <= 1.0))
        range_check = tf.debugging.Assert(
            in_range,
            [f"{_input_description(size)}: the model takes float pixels in [0, 1] "
             "(divide uint8 images by 255); received values from", tf.reduce_min(images),
             "to", tf.reduce_max(images)],
            name="check_pixel_range")
    return [shape_check, range_check]


def serving_function(network: keras.Model, randomization: str | None = None
                     ) -> tf.types.experimental.PolymorphicFunction:
    """The tf.function exported as `serving_default`: images -> logits, probabilities.

    Images of another shape than [N, S, S, 3], or with values outside [0, 1],
    make it raise tf.errors.InvalidArgumentError. Gradients flow from the
    outputs to `images`. `randomization`: None, or what the model draws on
    every call (added to the function's docstring).
    """
    size = _image_size(network)

    @tf.function(input_signature=[
        tf.TensorSpec([None, size, size, 3], tf.float32, name="images")])
    def serve(images):
        with tf.control_dependencies(_check_images(images, size)):
            images = tf.identity(images)
        logits = logits_of(network(images, training=False))
        return {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1)}

    serve.__doc__ = (f"{_input_description(size)} -> logits, probabilities [N, K]."
                     + ("" if randomization is None else
                        f" RANDOMIZED: each call draws anew ({randomization}); average "
                        "several calls for a stable prediction."))
    return serve


def serving_info(image_size: int, num_classes: int,
                 class_names: Sequence[str] | None = None,
                 randomization: str | None = None) -> dict:
    """The JSON-ready description of the `serving_default` signature (serving_info.json).

    `randomization`: None for a deterministic model, else what it draws on
    every call ("randomized" in the JSON).
    """
    size = image_size
    return {
        "format_version": SERVING_INFO_FORMAT_VERSION,
        "signature": SERVING_SIGNATURE,
        "inputs": {"images": {
            "shape": [None, size, size, 3], "dtype": "float32", "range": [0.0, 1.0],
            "description": "RGB images, float pixels in [0, 1] (uint8 images divided by 255)"}},
        "outputs": {
            "logits": {"shape": [None, num_classes], "dtype": "float32"},
            "probabilities": {"shape": [None, num_classes], "dtype": "float32",
                              "description": "softmax of the logits"}},
        "invalid_input": (
            f"refused with InvalidArgumentError: images whose shape is not "
            f"[N, {size}, {size}, 3], or with any value outside [0, 1] (NaN included)"),
        "class_names": None if class_names is None else list(class_names),
        "randomized": None if randomization is None else (
            f"every call draws anew: {randomization}; outputs differ from call to call"),
    }


def _check_class_names(class_names, num_classes: int) -> tuple[str, ...]:
    if isinstance(class_names, str) or not isinstance(class_names, Sequence):
        raise ValueError(
            "`class_names` must be a sequence of str, one per logit. "
            f"Received: class_names={class_names!r}")
    bad = [name for name in class_names
           if not isinstance(name, str) or not name or "\n" in name or "\r" in name]
    if bad:
        raise ValueError(
            "`class_names` must be non-empty str without line breaks. "
            f"Received: {bad!r}")
    if len(class_names) != num_classes:
        raise ValueError(
            f"`class_names` must have K={num_classes} entries (one per logit). "
            f"Received: {len(class_names)}")
    return tuple(class_names)


def _is_saved_model(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, SAVED_MODEL_FILE))


def check_export_dir(export_dir: str) -> str:
    """Raises ValueError unless `export_dir` is new, empty or a SavedModel; its absolute path."""
    export_dir = os.path.abspath(export_dir)
    if os.path.exists(export_dir):
        if not os.path.isdir(export_dir) or (os.listdir(export_dir)
                                             and not _is_saved_model(export_dir)):
            raise ValueError(
                "`export_dir` must be a new folder, an empty one or an existing SavedModel. "
                f"Received: export_dir={export_dir!r}")
    return export_dir


def export_saved_model(network: keras.Model, export_dir: str,
                       class_names: Sequence[str] | None = None,
                       randomization: str | None = None) -> str:
    """Writes `network` as a serving SavedModel at `export_dir`; returns the path.

    Args:
      network: a Keras model taking [N, S, S, 3] float images in [0, 1] and
        returning [N, K] logits or a dict with "logits".
      export_dir: the SavedModel folder. An existing SavedModel there is
        replaced; any other existing non-empty folder is an error (nothing is
        deleted that is not a SavedModel).
      class_names: None, or K str in label order, written to
        assets/class_names.txt (see `read_class_names`). Checked before
        anything is written.
      randomization: None, or a sentence saying what a randomized model
        draws on every call (`Defense.randomization()`), written into
        serving_info.json and the signature's docstring.
    """
    export_dir = check_export_dir(export_dir)
    serve = serving_function(network, randomization)
    image_size = _image_size(network)
    num_classes = int(serve.get_concrete_function().structured_outputs["logits"].shape[-1])
    if class_names is not None:
        class_names = _check_class_names(class_names, num_classes)
    parent = os.path.dirname(export_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent, prefix=TEMPORARY_PREFIX + "export-")
    try:
        archive = keras.export.ExportArchive()
        archive.track(network)
        archive.add_endpoint(SERVING_ENDPOINT, serve)
        sources = _write_asset_sources(
            os.path.join(staging, "asset_sources"),
            serving_info(image_size, num_classes, class_names, randomization), class_names)
        _track_assets(archive, sources)
        written = os.path.join(staging, "saved_model")
        archive.write_out(written, verbose=False)
        _check_assets_written(written, sources)
        _replace_folder(written, export_dir, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return export_dir


def _write_asset_sources(folder: str, info: dict,
                         class_names: tuple[str, ...] | None) -> dict[str, str]:
    """Writes the asset files into `folder` (in the staging folder); {file name: path}."""
    os.makedirs(folder)
    texts = {SERVING_INFO_ASSET: json.dumps(info, indent=2) + "\n"}
    if class_names is not None:
        texts[CLASS_NAMES_ASSET] = "".join(f"{name}\n" for name in class_names)
    sources = {}
    for name, text in texts.items():
        sources[name] = os.path.join(folder, name)
        with open(sources[name], "w", encoding="utf-8") as f:
            f.write(text)
    return sources


def _track_assets(archive, sources: dict[str, str]) -> None:
    """Makes each file a `tf.saved_model.Asset` of the SavedModel's root object.

    `ExportArchive.track` keeps only variables and lookup tables, and
    attributes set on the archive are not saved: the object it saves is its
    `_tf_trackable` (Keras 3; older archives were that object themselves).
    `_check_assets_written` catches a Keras that stops saving them.
    """
    root = getattr(archive, "_tf_trackable", archive)
    for name, path in sources.items():
        setattr(root, _ASSET_ATTRIBUTES[name], tf.saved_model.Asset(path))


def _check_assets_written(saved_model_dir: str, sources: dict[str, str]) -> None:
    missing = [name for name in sources
               if not os.path.isfile(os.path.join(saved_model_dir, ASSETS_DIR, name))]
    if missing:
        raise RuntimeError(
            f"The SavedModel was written without the assets {missing}: this version of "
            f"Keras ({keras.__version__}) saves ExportArchive differently.")


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
      class_names: the K class names in label order, or None when the export
        has none (see `read_class_names`).
      randomized: None for a deterministic model, else what it draws on
        every call (serving_info.json's "randomized").
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
        self.class_names = read_class_names(export_dir)
        self.randomized = read_serving_info(export_dir).get("randomized")
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"{CLASS_NAMES_ASSET} of {export_dir!r} must have K={self.num_classes} "
                f"names (one per logit). Received: {len(self.class_names)}")
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


def read_class_names(export_dir: str) -> tuple[str, ...] | None:
    """The class names (label order) in a SavedModel's assets, or None if it has none."""
    if not _is_saved_model(export_dir):
        raise FileNotFoundError(
            f"No {SAVED_MODEL_FILE} in {export_dir!r}: is it a SavedModel folder?")
    path = os.path.join(export_dir, ASSETS_DIR, CLASS_NAMES_ASSET)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return tuple(line.rstrip("\n") for line in f)


def read_serving_info(export_dir: str) -> dict:
    """serving_info.json of a SavedModel's assets ({} if it has none, as older exports)."""
    path = os.path.join(export_dir, ASSETS_DIR, SERVING_INFO_ASSET)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_serving_model(export_dir: str) -> ServingModel:
    """Loads a SavedModel written by `export_saved_model`; see `ServingModel`."""
    return ServingModel(export_dir)
