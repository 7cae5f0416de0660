"""Resumable protocol cells: each finished cell is one JSON file, written atomically.

A cell is one unit of work (a white-box evaluation of one target under one
setting, or one source's transfer images scored on its targets). Its file
holds a fingerprint of everything the numbers depend on (models, data,
attacks); a rerun skips a cell whose file has the same fingerprint and
recomputes one whose fingerprint changed, so an interrupted run resumes
where it stopped and a changed flag never reuses stale numbers.
"""

import datetime
import json
import os
import re

from tf_atalp.io_utils import atomic_write_json
from tf_atalp.machine import machine_summary

CELLS_DIR = "cells"


def cell_file_name(key: str) -> str:
    """A file name for `key` (letters, digits, '.', '-', '_' kept; others become '_')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", key) + ".json"


class CellStore:
    """The finished cells under `<output_dir>/cells/`."""

    def __init__(self, output_dir: str):
        self.folder = os.path.join(output_dir, CELLS_DIR)

    def path(self, key: str) -> str:
        return os.path.join(self.folder, cell_file_name(key))

    def load(self, key: str, fingerprint: dict) -> dict | None:
        """The stored result of `key` if it was made with `fingerprint`, else None."""
        path = self.path(key)
        if not os.path.isfile(path):
            return None
        try:
            with open(path) as f:
                stored = json.load(f)
        except (OSError, json.JSONDecodeError):
            return None  # unreadable: recomputed and replaced
        if stored.get("key") != key or stored.get("fingerprint") != _canonical(fingerprint):
            return None
        return stored

    def save(self, key: str, fingerprint: dict, result: dict, seconds: float) -> dict:
        """Writes the cell (atomically) and returns what was written, with the machine it
        ran on and when it finished (a study's cells may run on several machines)."""
        stored = {"key": key, "fingerprint": _canonical(fingerprint), "result": result,
                  "seconds": round(seconds, 1), "machine": machine_summary(),
                  "finished_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
                      timespec="seconds")}
        atomic_write_json(self.path(key), stored)
        return stored


def _canonical(value):
    """`value` as it reads back from JSON (tuples become lists, keys strings)."""
    return json.loads(json.dumps(value, sort_keys=True))
