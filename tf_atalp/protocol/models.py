"""The protocol's models: every target and source checked from its files, loaded on demand.

Each is a training model_dir (run_config.json names its defense and
architecture, train.flags the command that made it). A gray-box source must
have every target's architecture (other weights), a black-box source a
different one; `transfer_threat_model` decides, and a source listed under
the wrong threat model is refused before any work starts.
"""

import dataclasses
import os

from tf_atalp.evaluation.loading import ModelSource, find_model, load_model
from tf_atalp.evaluation.preparation import model_randomization, transfer_threat_model
from tf_atalp.evaluation.results import BLACK_BOX, GRAY_BOX
from tf_atalp.model_dir import FLAGFILE, MODEL_FILE
from tf_atalp.training.config import RunConfig, load_run_config
from tf_atalp.validation import check

TARGET = "target"
GRAY_BOX_SOURCE = "gray_box_source"
BLACK_BOX_SOURCE = "black_box_source"
SAME_DEFENSE_SOURCE = "same_defense_source"
SOURCE_THREAT_MODELS = {GRAY_BOX_SOURCE: GRAY_BOX, SAME_DEFENSE_SOURCE: GRAY_BOX,
                        BLACK_BOX_SOURCE: BLACK_BOX}


@dataclasses.dataclass(frozen=True)
class ProtocolModel:
    """One model_dir of the protocol.

    Attributes:
      name: its folder name (unique in the run; the label in every table).
      role: TARGET or one of the *_SOURCE roles.
      source: where it is (`find_model`).
      run_config: its training RunConfig.
      randomization: what it draws per prediction, or None.
      train_flags: the text of its train.flags ("" when missing).
    """

    name: str
    role: str
    source: ModelSource
    run_config: RunConfig
    randomization: str | None
    train_flags: str

    @property
    def defense(self) -> str:
        return self.run_config.defense.name

    @property
    def threat_model(self) -> str | None:
        """GRAY_BOX / BLACK_BOX for a source, None for a target."""
        return SOURCE_THREAT_MODELS.get(self.role)

    def architecture(self) -> str:
        model = self.run_config.model
        return f"{model.architecture}-{model.depth} width {model.width} stem {model.stem}"

    def fingerprint(self) -> dict:
        """What its numbers depend on: the path and the weights file's size and time."""
        weights = os.stat(self.source.model_path)
        return {"path": self.source.path, "size": weights.st_size,
                "mtime_ns": weights.st_mtime_ns}

    def describe(self) -> dict:
        return {"name": self.name, "role": self.role, "path": self.source.path,
                "defense": self.defense, "architecture": self.architecture(),
                "image_size": self.run_config.model.image_size,
                "randomization": self.randomization}


def _find(path: str, role: str) -> ProtocolModel:
    try:
        source = find_model(path)
    except (FileNotFoundError, ValueError) as error:
        raise ValueError(f"The {role.replace('_', ' ')} {path!r} holds no model: {error}") \
            from error
    check(source.is_model_dir,
          f"Every protocol model must be a training model_dir (run_config.json and "
          f"{MODEL_FILE}). Received for the {role.replace('_', ' ')}: {path!r}")
    run_config = load_run_config(source.run_config_dir)
    flags_path = os.path.join(source.path, FLAGFILE)
    train_flags = open(flags_path).read() if os.path.isfile(flags_path) else ""
    return ProtocolModel(os.path.basename(os.path.normpath(source.path)), role, source,
                         run_config, model_randomization(source, run_config), train_flags)


def find_protocol_models(targets, gray_box_sources=(), black_box_sources=(),
                         same_defense_sources=()) -> list[ProtocolModel]:
    """Checks every model_dir and the threat model of every source; loads no weights.

    Raises ValueError naming the first problem.
    """
    models = [_find(p, TARGET) for p in targets]
    for role, paths in ((GRAY_BOX_SOURCE, gray_box_sources),
                        (BLACK_BOX_SOURCE, black_box_sources),
                        (SAME_DEFENSE_SOURCE, same_defense_sources)):
        models += [_find(p, role) for p in paths]
    names = [m.name for m in models]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    check(not duplicates, "Every protocol model_dir must have its own folder name (the "
          f"tables label models by it). Received the same name twice: {duplicates}")
    target_models = [m for m in models if m.role == TARGET]
    sizes = {m.run_config.model.image_size for m in models}
    check(len(sizes) == 1, "Every protocol model must take the same image size. Received: "
          + ", ".join(f"{m.name}: {m.run_config.model.image_size}" for m in models))
    for source in (m for m in models if m.role != TARGET):
        scored = scored_targets(source, target_models)
        check(bool(scored), f"The same-defense source {source.name!r} ({source.defense}) "
              "has no target trained with its defense.")
        for target in scored:
            actual = transfer_threat_model(target.run_config, source.run_config)
            check(actual == source.threat_model,
                  f"{source.name!r} is listed as a {source.threat_model.replace('_', '-')} "
                  f"source but is {actual.replace('_', '-')} for {target.name!r}: "
                  f"{source.architecture()} against {target.architecture()} (gray-box: same "
                  "architecture, other weights; black-box: another architecture).")
    return models


def scored_targets(source: ProtocolModel, targets: list[ProtocolModel]) -> list[ProtocolModel]:
    """The targets a source's images are scored on (same defense only for SAME_DEFENSE_SOURCE)."""
    if source.role == SAME_DEFENSE_SOURCE:
        return [t for t in targets if t.defense == source.defense]
    return list(targets)


class LoadedModels:
    """Loads each protocol model once, when a cell first needs it."""

    def __init__(self):
        self._loaded = {}

    def __call__(self, model: ProtocolModel):
        if model.name not in self._loaded:
            self._loaded[model.name] = load_model(model.source, model.run_config)[0]
        return self._loaded[model.name]
