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
# The paper's gray-box attacker: same architecture AND defense, other weights (another seed),
# scored on one target only (it may itself be another target of the run).
PAIRED_SOURCE = "paired_source"
SOURCE_THREAT_MODELS = {GRAY_BOX_SOURCE: GRAY_BOX, SAME_DEFENSE_SOURCE: GRAY_BOX,
                        PAIRED_SOURCE: GRAY_BOX, BLACK_BOX_SOURCE: BLACK_BOX}


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
      paired_target: for a PAIRED_SOURCE, the name of the one target it is scored on.
    """

    name: str
    role: str
    source: ModelSource
    run_config: RunConfig
    randomization: str | None
    train_flags: str
    paired_target: str | None = None

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

    @property
    def cell_name(self) -> str:
        """The source's name in cell keys ("<name>__to__<target>" for a paired source)."""
        return self.name if self.paired_target is None else f"{self.name}__to__{self.paired_target}"

    def describe(self) -> dict:
        return {"name": self.name, "role": self.role, "path": self.source.path,
                "defense": self.defense, "architecture": self.architecture(),
                "image_size": self.run_config.model.image_size,
                "randomization": self.randomization, "paired_target": self.paired_target}


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


def _paired(pairs, targets: list[ProtocolModel]) -> list[ProtocolModel]:
    """A PAIRED_SOURCE per (target path, source path): same defense, scored on that target."""
    by_path = {os.path.realpath(t.source.path): t for t in targets}
    paired = []
    for target_path, source_path in pairs:
        target = by_path.get(os.path.realpath(target_path))
        check(target is not None, f"The paired source {source_path!r} names a target that is "
              f"not in `targets`: {target_path!r}")
        source = dataclasses.replace(_find(source_path, PAIRED_SOURCE),
                                     paired_target=target.name)
        check(os.path.realpath(source.source.path) != os.path.realpath(target.source.path),
              f"A paired source must be another model than its target. Received "
              f"{source_path!r} for itself.")
        check(source.defense == target.defense,
              f"A paired (faithful gray-box) source must be trained with its target's defense: "
              f"{source.name!r} is {source.defense}, {target.name!r} is {target.defense}.")
        paired.append(source)
    return paired


def _check_names(models: list[ProtocolModel]) -> None:
    """Folder names label the models: one name, one model_dir (a paired source may be a target)."""
    paths = {}
    for model in models:
        paths.setdefault(model.name, set()).add(os.path.normpath(model.source.path))
    duplicates = sorted(name for name, found in paths.items() if len(found) > 1)
    check(not duplicates, "Every protocol model_dir must have its own folder name (the "
          f"tables label models by it). Received the same name twice: {duplicates}")
    unpaired = [m.name for m in models if m.role != PAIRED_SOURCE]
    repeated = sorted({n for n in unpaired if unpaired.count(n) > 1})
    check(not repeated, "Every protocol model_dir must be listed once (a paired source may "
          f"also be a target). Received the same name twice: {repeated}")


def find_protocol_models(targets, gray_box_sources=(), black_box_sources=(),
                         same_defense_sources=(), paired_sources=()) -> list[ProtocolModel]:
    """Checks every model_dir and the threat model of every source; loads no weights.

    `paired_sources`: (target path, source path) pairs: the source (same
    architecture and defense, other weights) is scored on that target only.
    Raises ValueError naming the first problem.
    """
    models = [_find(p, TARGET) for p in targets]
    for role, paths in ((GRAY_BOX_SOURCE, gray_box_sources),
                        (BLACK_BOX_SOURCE, black_box_sources),
                        (SAME_DEFENSE_SOURCE, same_defense_sources)):
        models += [_find(p, role) for p in paths]
    models += _paired(paired_sources, [m for m in models if m.role == TARGET])
    _check_names(models)
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
    if source.role == PAIRED_SOURCE:
        return [t for t in targets if t.name == source.paired_target]
    return list(targets)


class LoadedModels:
    """Loads each protocol model once, when a cell first needs it."""

    def __init__(self):
        self._loaded = {}

    def __call__(self, model: ProtocolModel):
        if model.name not in self._loaded:
            self._loaded[model.name] = load_model(model.source, model.run_config)[0]
        return self._loaded[model.name]
