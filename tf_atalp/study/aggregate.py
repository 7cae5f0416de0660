"""From a study's finished cells to per-image outcomes: which test images each model got right.

Columns (each a bool [N] per target, in test-split order; `COLUMNS` names them):

- "clean": correct on the clean image.
- "white_box <eps>": robust to EVERY white-box attack run at that radius
  (AutoAttack, the paper's and the strong PGD): the strongest attack we have,
  image by image, so the headline robust accuracy.
- "autoattack <eps>": AutoAttack alone.
- "gray_box <eps>": robust to the paired source's PGD (the same defense
  trained with the next seed) under both settings, image by image.
- "black_box <eps>": robust to every black-box source under both settings.
- "gray_box_paper <eps>", "black_box_paper <eps>": the paper setting only
  (PGD-200, step 1/256, from the clean image), as the paper's Table 1 reports.

A transfer image counts as robust only if the target is right on the clean
image and at every scored iterate (the protocol's worst-iterate rule).
"""

import json
import os

import numpy as np

from tf_atalp.evaluation.per_example import decode_outcomes
from tf_atalp.evaluation.results import BLACK_BOX, GRAY_BOX, WHITE_BOX
from tf_atalp.protocol.settings import PAPER

CLEAN = "clean"
AUTOATTACK = "autoattack"
PAPER_SUFFIX = "_paper"
HEADLINE_KINDS = (WHITE_BOX, GRAY_BOX, BLACK_BOX)


def column(kind: str, epsilon: float) -> str:
    """"white_box 0.25" and so on ("clean" has no epsilon)."""
    return f"{kind} {epsilon:g}"


def _series_outcomes(series: dict) -> np.ndarray:
    if "robust_examples" in series:
        return decode_outcomes(series["robust_examples"])
    return decode_outcomes(series["robust_examples_per_draw"][0])  # the first repetition


def _and(store: dict, key: str, outcomes: np.ndarray) -> None:
    store[key] = outcomes if key not in store else store[key] & outcomes


def outcomes_from_protocol(document: dict) -> dict[str, dict[str, np.ndarray]]:
    """{target name: {column: bool [N]}} from protocol_results.json (white-box, gray, black)."""
    outcomes = {}
    for series in document["series"]:
        per_target = outcomes.setdefault(series["target"], {})
        robust = _series_outcomes(series)
        epsilon = series["epsilon"]
        threat = series["threat_model"]
        if threat == WHITE_BOX:
            _and(per_target, column(WHITE_BOX, epsilon), robust)
            continue
        if threat == GRAY_BOX and not series.get("paired"):
            continue  # the study's gray-box attacker is the paired copy
        _and(per_target, column(threat, epsilon), robust)
        if series["setting"] == PAPER:
            _and(per_target, column(threat + PAPER_SUFFIX, epsilon), robust)
    for target, clean in document.get("clean_examples", {}).items():
        outcomes.setdefault(target, {})[CLEAN] = decode_outcomes(clean)
    return outcomes


def add_autoattack(outcomes: dict, target: str, document: dict) -> None:
    """Adds an eval_main AutoAttack document's per-image outcomes to `target`'s columns."""
    per_target = outcomes.setdefault(target, {})
    for entry in document["robust_accuracy"]:
        robust = decode_outcomes(entry["robust_examples"])
        per_target[column(AUTOATTACK, entry["epsilon"])] = robust
        _and(per_target, column(WHITE_BOX, entry["epsilon"]), robust)
    if CLEAN not in per_target and "clean_examples" in document:
        per_target[CLEAN] = decode_outcomes(document["clean_examples"])


def read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def merge_protocol_documents(documents: list[dict]) -> dict:
    """One protocol document from the entries' protocol_results.json documents.

    The entries' targets are distinct, so their series, clean accuracies,
    per-image outcomes, models and cells are put together; the sanity
    checks' messages are joined per check. Every document must score the
    same test images ("data").

    Raises ValueError when there are none or their data differ.
    """
    if not documents:
        raise ValueError("No protocol results to merge.")
    merged = {"data": documents[0]["data"], "series": [], "clean": {}, "clean_examples": {},
              "models": [], "cells": [], "sanity_checks": {}}
    for document in documents:
        if document["data"] != merged["data"]:
            raise ValueError("The entries' protocols scored different test images: "
                             f"{document['data']} and {merged['data']}")
        merged["series"] += document["series"]
        merged["clean"].update(document["clean"])
        merged["clean_examples"].update(document.get("clean_examples", {}))
        merged["models"] += [m for m in document["models"] if m not in merged["models"]]
        merged["cells"] += document["cells"]
        for check, messages in document["sanity_checks"].items():
            merged["sanity_checks"].setdefault(check, []).extend(messages)
    return merged


def study_outcomes(report_dir: str, protocol_document: dict,
                   autoattack_results: dict[str, str]) -> dict[str, dict[str, np.ndarray]]:
    """Every target's per-image outcomes from the (merged) protocol document and the report
    folder's AutoAttack files.

    Checks that every column of every target scores the same number of images.
    """
    outcomes = outcomes_from_protocol(protocol_document)
    for target, path in autoattack_results.items():
        add_autoattack(outcomes, target, read_json(os.path.join(report_dir, path)))
    sizes = {len(v) for per_target in outcomes.values() for v in per_target.values()}
    if len(sizes) > 1:
        raise ValueError(f"The study's results score different numbers of images: {sizes}")
    return outcomes
