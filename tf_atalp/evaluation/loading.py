"""Finding and loading the model to evaluate: a training model_dir, a SavedModel or a .keras file.

`find_model` only looks at files (cheap, used to check flags before any
work); `load_model_for_eval` loads the network and describes it.
"""

import dataclasses
import os

import keras

from tf_atalp.defenses import defense_config
from tf_atalp.export import SAVED_MODEL_FILE, load_serving_model
from tf_atalp.model_dir import CHECKPOINTS_DIR, MODEL_FILE, RUN_CONFIG_FILE
from tf_atalp.models.outputs import symbolic_logits
from tf_atalp.training.config import RunConfig, load_run_config


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """Where a model to evaluate lives.

    Attributes:
      path: the path given (a model_dir, a SavedModel folder or a .keras file).
      format: "keras" or "saved_model".
      model_path: the .keras file or the SavedModel folder that is loaded.
      run_config_dir: the folder holding run_config.json, or None.
      is_model_dir: `path` is a training model_dir.
    """

    path: str
    format: str
    model_path: str
    run_config_dir: str | None
    is_model_dir: bool


def _run_config_dir(folder: str) -> str | None:
    return folder if os.path.isfile(os.path.join(folder, RUN_CONFIG_FILE)) else None


def _unfinished_training_error(model_dir: str) -> FileNotFoundError:
    checkpoints = os.path.join(model_dir, CHECKPOINTS_DIR)
    found = sorted(os.listdir(checkpoints)) if os.path.isdir(checkpoints) else []
    progress = (f"last checkpoint: {CHECKPOINTS_DIR}/{found[-1]}" if found
                else "no checkpoints yet")
    return FileNotFoundError(
        f"Training has not finished in {model_dir!r}: {MODEL_FILE} is missing "
        f"({progress}). Evaluate after train_main.py has written {MODEL_FILE}.")


def find_model(path: str) -> ModelSource:
    """Says what `path` holds, from its files only; raises if it is no model."""
    if not path:
        raise ValueError("The model path must be set. Received: ''")
    path = os.path.abspath(path)
    if os.path.isfile(path) and path.endswith(".keras"):
        return ModelSource(path, "keras", path, _run_config_dir(os.path.dirname(path)), False)
    if os.path.isdir(path):
        if _run_config_dir(path):
            model_file = os.path.join(path, MODEL_FILE)
            if not os.path.isfile(model_file):
                raise _unfinished_training_error(path)
            return ModelSource(path, "keras", model_file, path, True)
        if os.path.isfile(os.path.join(path, SAVED_MODEL_FILE)):
            return ModelSource(path, "saved_model", path,
                               _run_config_dir(os.path.dirname(path)), False)
    raise FileNotFoundError(
        f"No model at {path!r}: expected a training model_dir ({RUN_CONFIG_FILE} and "
        f"{MODEL_FILE}), a SavedModel folder ({SAVED_MODEL_FILE}) or a .keras file.")


def describe_model(source: ModelSource, run_config: RunConfig | None,
                   image_size: int, num_classes: int) -> dict:
    """The model entry of the results document (JSON-ready)."""
    description = {"path": source.path, "format": source.format,
                   "loaded_from": source.model_path, "image_size": image_size,
                   "num_classes": num_classes}
    if run_config is not None:
        description.update(
            architecture=run_config.model.architecture, depth=run_config.model.depth,
            width=run_config.model.width, stem=run_config.model.stem,
            trained_on=run_config.data.dataset, defense=run_config.defense.name,
            defense_config=defense_config(run_config.defense),
            training_attack=run_config.attack.describe(),
            training_attack_batchnorm_training=run_config.train.attack_batchnorm_training)
    return description


def _keras_input_size(network: keras.Model) -> int:
    return int(network.inputs[0].shape[1])


def load_model(source: ModelSource, run_config: RunConfig | None):
    """Loads the model `source` names; returns (model, description).

    `model` maps float images [N, S, S, 3] in [0, 1] to logits (a keras.Model
    with a dict of roles as output, or a `ServingModel`): for a .keras file
    with a run_config.json, the trained defense's `inference_model`.
    `description` is `describe_model`'s dict.
    """
    if source.format == "keras":
        network = keras.models.load_model(source.model_path, compile=False)
        image_size = _keras_input_size(network)
        num_classes = int(symbolic_logits(network).shape[-1])
        # What predicts at test time is the defense's inference model (the network itself
        # unless the defense changes prediction); a SavedModel was exported from it already.
        model = run_config.defense.inference_model(network) if run_config else network
    else:
        model = load_serving_model(source.model_path)
        image_size, num_classes = model.image_size, model.num_classes
    if run_config is not None and run_config.model.image_size != image_size:
        raise ValueError(
            f"The model at {source.model_path!r} takes {image_size}-pixel images, but its "
            f"run_config.json says image_size={run_config.model.image_size}.")
    return model, describe_model(source, run_config, image_size, num_classes)


def load_model_for_eval(path: str):
    """Finds and loads the model at `path` (see `find_model`, `load_model`).

    Returns:
      (model, description, run_config): `run_config` is the training
      RunConfig, or None when no run_config.json is beside the model.
    """
    source = find_model(path)
    run_config = load_run_config(source.run_config_dir) if source.run_config_dir else None
    model, description = load_model(source, run_config)
    return model, description, run_config
