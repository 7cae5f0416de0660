"""`build_applications_resnet`: keras.applications ResNets with the outputs of `build_resnet`.

No weights are ever downloaded: pretrained weights come from a local file.
"""

import os
import re

import keras

from tf_atalp.models._validation import check_at_least, check_choice, check_image_size
from tf_atalp.models.heads import GROUP_NAMES, classifier_logits
from tf_atalp.models.layers import ImageNormalization
from tf_atalp.models.outputs import with_feature_outputs

BACKBONES = {
    50: keras.applications.ResNet50,
    101: keras.applications.ResNet101,
    152: keras.applications.ResNet152,
}
APPLICATIONS_DEPTHS = tuple(BACKBONES)
# keras.applications.resnet "caffe" preprocessing, x * 255 in BGR minus these, as
# (x_bgr - mean / 255) / (1 / 255) on x in [0, 1].
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)  # 0-255 pixel units
_BLOCK_OUTPUT = re.compile(r"^conv(\d)_block(\d+)_out$")
_DOWNLOAD_NAMES = ("imagenet",)
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def build_applications_backbone(depth, image_size) -> keras.Model:
    """Returns the randomly initialised keras.applications ResNet{depth} without its top.

    Input [N, S, S, 3] caffe-preprocessed images; output [N, S/32, S/32, 2048].
    Its weights are what `weights_path` of `build_applications_resnet` holds.
    """
    check_choice("depth", depth, APPLICATIONS_DEPTHS)
    check_image_size(image_size)
    return BACKBONES[depth](
            include_top=False, weights=None, input_shape=(image_size, image_size, 3))


def build_applications_resnet(
        depth, num_classes, image_size, weights_path=None, name=None) -> keras.Model:
    """Builds a keras.applications ResNet classifier for float images in [0, 1].

    Args:
        depth: one of APPLICATIONS_DEPTHS (50, 101, 152).
        num_classes: K, the number of logits of the new head.
        image_size: side S of the square RGB input, >= 32 pixels.
        weights_path: None (random init) or a local .h5 / .weights.h5 file of
            the notop backbone's weights. Never a download.
        name: the model name; default f"applications_resnet{depth}".

    Returns:
        A functional keras.Model from [N, S, S, 3] images in [0, 1] to
        `{"logits": [N, K] float32, "features": {"conv2_x": ..., ..., "conv5_x": ...}}`,
        the groups being the last block output of each stage (strides 4, 8,
        16, 32), tapped by layer name with `with_feature_outputs`. The caffe
        preprocessing (x * 255, RGB -> BGR, minus CAFFE_BGR_MEAN) happens
        inside the model; the backbone's layers are the model's own (flat), so
        they keep their keras.applications names ("conv2_block3_out", ...).
    """
    check_choice("depth", depth, APPLICATIONS_DEPTHS)
    check_at_least("num_classes", num_classes, 1)
    check_image_size(image_size)
    if weights_path is not None:
        weights_path = _check_weights_path(weights_path)

    inputs = keras.Input((image_size, image_size, 3), name="images")
    x = ImageNormalization(
            mean=tuple(m / 255.0 for m in CAFFE_BGR_MEAN), std=(1 / 255.0,) * 3,
            reverse_channels=True, dtype="float32", name="caffe_preprocessing")(inputs)
    backbone = BACKBONES[depth](include_top=False, weights=None, input_tensor=x)
    classifier = keras.Model(inputs, classifier_logits(backbone.output, num_classes))
    if weights_path is not None:
        standalone = build_applications_backbone(depth, image_size)
        load_backbone_weights(standalone, weights_path)
        _copy_weights_by_layer_name(standalone, classifier)
    return with_feature_outputs(classifier, stage_output_layer_names(backbone),
                                name=name or f"applications_resnet{depth}")


def _copy_weights_by_layer_name(source: keras.Model, target: keras.Model) -> None:
    """Sets each weighted layer of `target` named like a layer of `source` to its weights."""
    for layer in source.layers:
        if layer.weights:
            target.get_layer(layer.name).set_weights(layer.get_weights())


def stage_output_layer_names(backbone):
    """Maps GROUP_NAMES to the backbone's last "conv{2..5}_block{k}_out" layer of each stage."""
    last_block = {}
    for layer in backbone.layers:
        match = _BLOCK_OUTPUT.match(layer.name)
        if match:
            stage, block = int(match.group(1)), int(match.group(2))
            last_block[stage] = max(block, last_block.get(stage, 0))
    names = {}
    for stage, group in enumerate(GROUP_NAMES, start=2):
        if stage not in last_block:
            raise ValueError(
                    f"Backbone {backbone.name!r} has no layer named like "
                    f"'conv{stage}_block<k>_out'.")
        names[group] = f"conv{stage}_block{last_block[stage]}_out"
    return names


def load_backbone_weights(backbone, weights_path):
    """Loads a local .h5 / .weights.h5 file into `backbone`; errors name the path."""
    weights_path = _check_weights_path(weights_path)
    try:
        backbone.load_weights(weights_path)
    except Exception as error:  # h5py, Keras and OS errors all mean the same here.
        raise ValueError(
                f"Could not load the {backbone.name} backbone weights from "
                f"weights_path={weights_path!r}: the file is corrupt or holds another "
                f"architecture's weights. ({type(error).__name__}: {error})") from error


def _check_weights_path(weights_path):
    """Returns `weights_path` as a str after checking it names an existing local .h5 file."""
    if not isinstance(weights_path, (str, os.PathLike)):
        raise ValueError(
                "`weights_path` must be None or a local file path. "
                f"Received: weights_path={weights_path!r}")
    path = os.fspath(weights_path)
    if path.lower() in _DOWNLOAD_NAMES or _URL.match(path):
        raise ValueError(
                "`weights_path` must be a local weights file: downloads are not possible here "
                "(no internet access). Pass the path of a local .h5 or .weights.h5 file of the "
                f"notop backbone weights. Received: weights_path={path!r}")
    if not path.endswith(".h5"):
        raise ValueError(
                "`weights_path` must be a .h5 or .weights.h5 file. "
                f"Received: weights_path={path!r}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No weights file found at weights_path={path!r}")
    return path
