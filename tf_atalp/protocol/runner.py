"""`run_protocol`: the paper's experiments over trained model_dirs, resumable cell by cell.

Plan (each a cell, saved as it finishes; see `cells.py`):
  for each setting (paper, strong) and target: white-box PGD on the target;
  for each target: single-step FGSM (the sanity checks' yardstick);
  for each setting and source: PGD images crafted once per batch on the
    source and scored on every target (gray-box or black-box).
Then, from the cells: Table 1 per setting (markdown, CSV), every point of
every series (CSV; Figure 3's PNG per setting), Figure 4 (attention maps,
PNG and TensorBoard), Figure 6 (loss landscapes), Table 2 (key-region
activation, when masks are given), the sanity checks, protocol_results.json
and report.md.
"""

import dataclasses
import json
import os
import sys
import time

import keras
import numpy as np
from absl import logging

from tf_atalp.analysis.key_regions import KeyRegionTally, load_masks
from tf_atalp.evaluation.config import DEFAULT_EOT_SAMPLES, DEFAULT_RANDOM_DRAWS, EvalConfig
from tf_atalp.evaluation.preparation import prepare_evaluation
from tf_atalp.evaluation.iterate_cache import IterateCache
from tf_atalp.io_utils import atomic_write_json, atomic_write_text
from tf_atalp.output_checks import check_output_dir
from tf_atalp.protocol import analyses, cell_runs
from tf_atalp.protocol.analyses import TENSORBOARD_DIR
from tf_atalp.protocol.cells import CELLS_DIR, CellStore
from tf_atalp.protocol.checks import protocol_checks
from tf_atalp.protocol.data import ProtocolData, load_protocol_data
from tf_atalp.protocol.models import (
    BLACK_BOX_SOURCE, PAIRED_SOURCE, SAME_DEFENSE_SOURCE, TARGET, LoadedModels, ProtocolModel,
    find_protocol_models, scored_targets)
from tf_atalp.protocol.report import write_report
from tf_atalp.protocol.settings import ProtocolConfig
from tf_atalp.protocol.tables import (
    SINGLE_STEP_KIND, TRANSFER_KIND, WHITE_BOX_KIND, collect, sweep_csv, table1_csv,
    table1_rows)
from tf_atalp.reporting import report
from tf_atalp.validation import check

RESULTS_FILE = "protocol_results.json"
FORMAT_VERSION = 1


@dataclasses.dataclass
class Cell:
    """One unit of resumable work: what it is (`spec`), what it depends on, how to run it."""

    key: str
    spec: dict
    fingerprint: dict
    label: str
    run: object  # () -> JSON-ready result


@dataclasses.dataclass
class Protocol:
    """A checked protocol run: config, models, data and the masks for Table 2 (or None).

    `iterate_cache`: black-box sources' iterates kept across protocol runs (in
    one process, or on disk: see `prepare_protocol`); None: crafted in each run.
    """

    config: ProtocolConfig
    models: list[ProtocolModel]
    data: ProtocolData
    masks: np.ndarray | None
    loaded: LoadedModels = dataclasses.field(default_factory=LoadedModels)
    iterate_cache: IterateCache | None = None

    @property
    def targets(self) -> list[ProtocolModel]:
        return [m for m in self.models if m.role == TARGET]

    @property
    def sources(self) -> list[ProtocolModel]:
        return [m for m in self.models if m.role != TARGET]

    def eot(self, model: ProtocolModel) -> tuple[int, int]:
        """(eot_samples, random_draws) for a white-box attack on `model`."""
        if model.randomization is None:
            return 1, 1
        return (self.config.eot_samples or DEFAULT_EOT_SAMPLES,
                self.config.random_draws or DEFAULT_RANDOM_DRAWS)


def prepare_protocol(config: ProtocolConfig,
                     iterate_cache: IterateCache | None = None) -> Protocol:
    """Checks every model_dir, the data and the masks; reads the test examples once.

    `iterate_cache`: shared by protocol runs over the same black-box sources
    and data (a study's entries): each source's PGD iterates are crafted once
    and scored on every run's targets.
    """
    for folder in (config.output_dir, os.path.join(config.output_dir, CELLS_DIR),
                   os.path.join(config.output_dir, TENSORBOARD_DIR)):
        check_output_dir(folder, name="output_dir")
    models = find_protocol_models(config.targets, config.gray_box_sources,
                                  config.black_box_sources, config.same_defense_sources,
                                  config.paired_sources)
    names = {m.name for m in models if m.role == TARGET}
    unknown = sorted(set(config.figure_targets or ()) - names)
    check(not unknown, f"`figure_targets` must name targets (folder names). Received "
          f"{unknown}; targets: {sorted(names)}")
    classes = {m.run_config.model.num_classes for m in models}
    check(len(classes) == 1, "Every protocol model must have the same classes. Received: "
          + ", ".join(f"{m.name}: {m.run_config.model.num_classes}" for m in models))
    first = models[0]
    prepared = prepare_evaluation(EvalConfig(
        model_dir=first.source.path, dataset=config.dataset, data_dir=config.data_dir,
        epsilons=config.epsilons, batch_size=config.batch_size), check_outputs=False)
    data_config = prepared.data_config(first.run_config.model.image_size, classes.pop())
    masks_dir = config.masks_dir
    check(masks_dir is None or os.path.isdir(masks_dir),
          f"`masks_dir` must be an existing folder. Received: {masks_dir!r}")
    check(masks_dir is None or data_config.resolved_source == "folder",
          "`masks_dir` needs image-folder data (masks mirror the image files). Received data "
          f"source: {data_config.resolved_source!r}")
    data = load_protocol_data(data_config, config.max_examples)
    masks = None
    if masks_dir is not None:
        masks = load_masks(data.image_paths, data_config.data_dir, masks_dir,
                           data_config.image_size, data_config.resize)
    return Protocol(config, models, data, masks, iterate_cache=iterate_cache)


def _common_fingerprint(protocol: Protocol) -> dict:
    config = protocol.config
    return {"data": protocol.data.record, "epsilons": list(config.epsilons),
            "seed": config.seed, "batch_size": config.batch_size,
            "masks_dir": config.masks_dir}


def _key_region_observer(protocol: Protocol, tally: dict, networks: dict):
    """observe(...) for a transfer cell: key-region activation of each target per epsilon."""
    offsets = protocol.data.offsets()

    def observe(batch_index, images, labels, epsilon, iterate):
        start = offsets[batch_index]
        masks = protocol.masks[start:start + int(labels.shape[0])]
        for name, network in networks.items():
            tally.setdefault(name, KeyRegionTally()).add(f"{epsilon:g}", network, iterate, masks)
    return observe


def _plan(protocol: Protocol) -> list[Cell]:
    config, cells = protocol.config, []
    common = _common_fingerprint(protocol)
    batches, loaded = protocol.data.batches, protocol.loaded
    for setting in config.settings:
        for target in protocol.targets:
            samples, draws = protocol.eot(target)
            cells.append(Cell(
                f"{setting.name}__{WHITE_BOX_KIND}__{target.name}",
                {"kind": WHITE_BOX_KIND, "setting": setting.name, "target": target.name},
                {**common, "setting": setting.describe(), "model": target.fingerprint(),
                 "drop_broken": config.drop_broken, "eot": [samples, draws]},
                f"white-box {setting.name} PGD on {target.name}",
                lambda s=setting, t=target, n=samples, d=draws: cell_runs.white_box_cell(
                    loaded(t), batches, s, config.epsilons, seed=config.seed,
                    drop_broken=config.drop_broken, eot_samples=n, random_draws=d)))
    for target in protocol.targets:
        samples, _ = protocol.eot(target)
        cells.append(Cell(
            f"single_step__{target.name}",
            {"kind": SINGLE_STEP_KIND, "target": target.name},
            {**common, "model": target.fingerprint(), "eot": samples},
            f"FGSM on {target.name}",
            lambda t=target, n=samples: _single_step(protocol, t, n)))
    for setting in config.settings:
        for source in protocol.sources:
            scored = scored_targets(source, protocol.targets)
            cells.append(Cell(
                f"{setting.name}__{source.threat_model}__{source.cell_name}",
                {"kind": TRANSFER_KIND, "setting": setting.name, "source": source.name,
                 "threat_model": source.threat_model,
                 "same_defense": source.role in (SAME_DEFENSE_SOURCE, PAIRED_SOURCE),
                 "paired": source.role == PAIRED_SOURCE},
                {**common, "setting": setting.describe(), "source": source.fingerprint(),
                 "targets": [t.fingerprint() for t in scored]},
                f"{source.threat_model.replace('_', '-')} {setting.name} PGD crafted on "
                f"{source.name}, scored on "
                + (source.paired_target if source.paired_target else f"{len(scored)} target(s)"),
                lambda s=setting, src=source, ts=scored: _transfer(protocol, s, src, ts)))
    return cells


def _single_step(protocol: Protocol, target: ProtocolModel, samples: int) -> dict:
    model = protocol.loaded(target)
    result = cell_runs.single_step_cell(model, protocol.data.batches, protocol.config.epsilons,
                                        eot_samples=samples)
    if protocol.masks is not None:
        result["key_regions"] = analyses.clean_key_regions(protocol, model)
    return result


def _transfer(protocol: Protocol, setting, source: ProtocolModel,
              targets: list[ProtocolModel]) -> dict:
    models = {t.name: protocol.loaded(t) for t in targets}
    tally, observe = {}, None
    if protocol.masks is not None:
        observe = _key_region_observer(protocol, tally, analyses.with_features(models))
    cache = protocol.iterate_cache if source.role == BLACK_BOX_SOURCE else None
    result = cell_runs.transfer_cell(
        protocol.loaded(source), models, protocol.data.batches, setting,
        protocol.config.epsilons, threat_model=source.threat_model, seed=protocol.config.seed,
        observe=observe, cache=cache,
        cache_key=None if cache is None else json.dumps(
            [source.fingerprint(), protocol.data.record], sort_keys=True))
    if observe is not None:
        result["key_regions"] = {name: t.means() for name, t in tally.items()}
    return result


def _run_cells(protocol: Protocol, cells: list[Cell], on_cell=None) -> list[dict]:
    """Runs (or reads back) every cell, with a progress bar over cells and the time left.

    `on_cell(index, pending, label, seconds)`, if given, is called before each
    cell to compute (seconds None) and after it (its seconds).
    """
    store = CellStore(protocol.config.output_dir)
    stored_cells = {c.key: store.load(c.key, c.fingerprint) for c in cells}  # read once
    pending = sum(1 for stored in stored_cells.values() if stored is None)
    report(f"Protocol: {len(cells)} cells, {len(cells) - pending} already done in "
           f"{store.folder}.")
    bar = keras.utils.Progbar(pending, unit_name="cell") if pending else None
    done = []
    for cell in cells:
        stored = stored_cells[cell.key]
        if stored is None:
            report(f"\n[{len(done) + 1}/{len(cells)}] {cell.label}")
            computed = sum(1 for c in cells[:len(done)] if stored_cells[c.key] is None)
            if on_cell is not None:
                on_cell(computed, pending, cell.label, None)
            started = time.time()
            stored = store.save(cell.key, cell.fingerprint, cell.run(), time.time() - started)
            if on_cell is not None:
                on_cell(computed + 1, pending, cell.label, stored["seconds"])
            bar.add(1)
        done.append({**stored, "spec": cell.spec, "label": cell.label})
    return done


def pending_cells(protocol: Protocol) -> list[str]:
    """The labels of the cells a run would compute (not finished with these settings)."""
    store = CellStore(protocol.config.output_dir)
    return [c.label for c in _plan(protocol) if store.load(c.key, c.fingerprint) is None]


def run_protocol(protocol: Protocol, command=None, on_cell=None) -> dict:
    """Runs every cell (resuming), then writes the tables, figures, checks and report.md.

    `on_cell`: see `_run_cells` (progress of a caller, such as a study).
    """
    started = time.time()
    config = protocol.config
    os.makedirs(config.output_dir, exist_ok=True)
    cells = _run_cells(protocol, _plan(protocol), on_cell)
    collected = collect(cells)
    targets = [t.describe() for t in protocol.targets]
    tables = {s.name: table1_rows(collected, targets, s.name, config.epsilons)
              for s in config.settings}
    checks = protocol_checks(collected)
    for messages in checks.values():
        for message in messages:
            logging.warning("%s", message)
    out = config.output_dir
    atomic_write_text(os.path.join(out, "table1.csv"), table1_csv(tables))
    atomic_write_text(os.path.join(out, "sweep.csv"), sweep_csv(collected["series"]))
    figures = analyses.draw_figures(protocol, collected)
    document = {
        "format_version": FORMAT_VERSION,
        "command": list(sys.argv if command is None else command),
        "data": protocol.data.record,
        "settings": [s.describe() | {"step_size_at": {f"{e:g}": s.step_for(e)
                                                        for e in config.epsilons}}
                     for s in config.settings],
        "protocol": {"epsilons": list(config.epsilons), "seed": config.seed,
                     "batch_size": config.batch_size, "drop_broken": config.drop_broken,
                     "max_examples": config.max_examples},
        "models": [m.describe() for m in protocol.models],
        "cells": [{"key": c["key"], "label": c["label"], "seconds": c["seconds"]}
                  for c in cells],
        "cell_seconds": round(sum(c["seconds"] for c in cells), 1),
        "series": collected["series"], "clean": collected["clean"],
        "clean_examples": collected["clean_examples"],
        "single_step": {t: {f"{e:g}": v for e, v in per.items()}
                        for t, per in collected["single_step"].items()},
        "sources": collected["sources"], "table1": tables,
        "table2": analyses.table2(cells), "figures": figures,
        "sanity_checks": checks,
        "seconds_this_run": None,
    }
    document["seconds_this_run"] = round(time.time() - started, 1)
    atomic_write_json(os.path.join(out, RESULTS_FILE), document)
    write_report(protocol, document)
    return document
