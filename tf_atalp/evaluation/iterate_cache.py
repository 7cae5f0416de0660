"""Transfer iterates crafted once and kept: in memory, and on disk when given a folder.

A black-box source's PGD iterates depend only on the source's weights, the
data, the attack, the scored counts, the batch and its seed, so every target
of a study can be scored on the same images. `IterateCache` keeps them in
memory; given a `directory`, it also writes each batch's iterates there (one
`.npz` file per key, written atomically), so a study resumed by a new
process scores the stored images instead of crafting them again.

A file is found by the SHA-256 of its key and holds the key itself: a file
whose key differs, or that cannot be read (a torn or corrupt file), is
crafted again and replaced, with a warning. Files of keys no longer asked
for (other weights, other settings) are left in place; removing the folder
only costs the crafting.

Disk: every scored iterate of every batch, float32, e.g. 500 images of
32 x 32 x 3 is 6.1 MB per scored count, per source, attack and radius.
"""

import hashlib
import json
import os
import zipfile
from collections.abc import Callable

import numpy as np
import tensorflow as tf
from absl import logging

from tf_atalp.io_utils import atomic_save

ITERATES = "iterates"  # {count: images [B, H, W, C] float32}
_KEY = "key"
_COUNTS = "counts"
_ITERATE = "iterate_{}"  # one array per scored count
_SUFFIX = ".npz"


def key_text(key: tuple) -> str:
    """The key as canonical JSON (tuples as lists), what a stored file is named by and holds."""
    return json.dumps(list(key), sort_keys=True)


class IterateCache:
    """Iterates crafted on a source, and the source's own predictions on them, kept so that
    scoring them on other targets later crafts (and rescores) nothing again.

    One cache serves many `evaluate_transfer` calls (a study runs the protocol
    once per entry, every time with the same black-box sources and test
    images): each call names what its iterates depend on beyond the attack
    and the batch (`cache_key`: the source's weights and the data), and a
    later call with the same key, attack, counts, batch and seed gets the
    same tensors back. Memory: every scored iterate of every batch, e.g.
    272 images of 32 px x 20 counts x 3 radii is about 200 MB per source
    and setting; the same again on disk with a `directory`.

    Args:
      directory: where each key's iterates are also stored (created when
        first written); None: memory only, as long as the process lives.
    """

    def __init__(self, directory: str | None = None):
        self.directory = directory
        self._iterates = {}
        self.crafted = 0  # batches crafted (the others came from memory or disk)
        self.loaded = 0  # batches read back from `directory`

    def iterates(self, key: tuple, craft: Callable[[], dict]) -> dict:
        """What is stored under `key`: {"iterates": {count: tensor}, name: bool array, ...}
        (the iterates and the source's scores on them), made by `craft()` when neither
        memory nor `directory` holds it.

        `key` is a tuple of JSON values (strings, numbers, tuples of them).
        """
        if key in self._iterates:
            return self._iterates[key]
        path = self._path(key)
        stored = None if path is None else _read(path, key_text(key))
        if stored is None:
            stored = craft()
            self.crafted += 1
            if path is not None:
                _write(path, key_text(key), stored)
        else:
            self.loaded += 1
        self._iterates[key] = stored
        return stored

    def stored_files(self) -> int:
        """How many keys `directory` holds (0 without a directory)."""
        if self.directory is None or not os.path.isdir(self.directory):
            return 0
        return sum(name.endswith(_SUFFIX) for name in os.listdir(self.directory))

    def _path(self, key: tuple) -> str | None:
        if self.directory is None:
            return None
        digest = hashlib.sha256(key_text(key).encode()).hexdigest()
        return os.path.join(self.directory, digest + _SUFFIX)


def _write(path: str, text: str, stored: dict) -> None:
    """Writes `stored` ({"iterates": {count: tensor}, name: array, ...}) and its key text."""
    counts = sorted(stored[ITERATES])
    arrays = {_KEY: np.array(text), _COUNTS: np.array(counts, np.int64)}
    arrays.update({_ITERATE.format(k): np.asarray(stored[ITERATES][k]) for k in counts})
    arrays.update({name: np.asarray(value) for name, value in stored.items() if name != ITERATES})

    def save(temporary):
        with open(temporary, "wb") as f:
            np.savez(f, **arrays)
    atomic_save(path, save)


def _read(path: str, text: str) -> dict | None:
    """The stored dict under `path` if it holds the key `text`; None if absent, for another
    key, or unreadable (logged)."""
    if not os.path.exists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored[_KEY]) != text:
                logging.warning("Iterate cache file %s holds another key; crafting again.", path)
                return None
            counts = [int(k) for k in stored[_COUNTS]]
            result = {ITERATES: {k: tf.constant(stored[_ITERATE.format(k)]) for k in counts}}
            result.update({name: stored[name] for name in stored.files
                           if name not in (_KEY, _COUNTS)
                           and not name.startswith(_ITERATE.format(""))})
            return result
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        logging.warning("Iterate cache file %s cannot be read (%s); crafting again.", path, error)
        return None
