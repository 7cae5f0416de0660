"""Checks, before any work, that every output can be written: one-line errors, nothing written.

    check_output_dir(model_dir, needed_bytes, name="model_dir", needed_for="one checkpoint")
    check_output_file(results_file, name="results_file")

Each raises ValueError with one Keras-style line naming the path and the
reason: a file where a folder must be (or the reverse), a folder this
process cannot create files in (probed for real: a temporary folder is made
and removed, so a read-only mount, /proc or missing permissions all show),
or less free space than `needed_bytes`. A folder that does not exist yet is
judged by its nearest existing parent, where it would be created.
"""

import os
import shutil
import tempfile

from tf_atalp.io_utils import TEMPORARY_PREFIX


def format_bytes(count: float) -> str:
    """A byte count for people: "512 B", "3.1 MiB", "1.24 GiB"."""
    units = ("B", "KiB", "MiB", "GiB")
    for unit in units[:-1]:
        if abs(count) < 1024:
            break
        count /= 1024
    else:
        unit = units[-1]
    if unit == "B" or abs(count) >= 1000:
        return f"{count:,.0f} {unit}"
    return f"{count:.3g} {unit}"


def _nearest_existing(path: str) -> str:
    """`path` if it exists, else its nearest parent that does."""
    while not os.path.lexists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _probe(folder: str, name: str, received: str) -> None:
    """Makes and removes a temporary folder in `folder`; ValueError if that fails."""
    try:
        probe = tempfile.mkdtemp(dir=folder, prefix=TEMPORARY_PREFIX + "probe-")
    except OSError as error:
        raise ValueError(
            f"`{name}` cannot be written: {folder!r} does not take new files "
            f"({error.strerror or error}). Received: {name}={received!r}") from None
    os.rmdir(probe)


def _check_folder(folder: str, needed_bytes: int, name: str, needed_for: str,
                  received: str) -> str:
    folder = os.path.abspath(folder)
    existing = _nearest_existing(folder)
    if not os.path.isdir(existing):
        where = "" if existing == folder else f" (on the way to {folder!r})"
        raise ValueError(f"`{name}` must be a folder, but {existing!r}{where} is a file. "
                         f"Received: {name}={received!r}")
    _probe(existing, name, received)
    if needed_bytes > 0:
        free = shutil.disk_usage(existing).free
        if free < needed_bytes:
            raise ValueError(
                f"`{name}` has no space for {needed_for}: it needs {format_bytes(needed_bytes)}, "
                f"{format_bytes(free)} are free in {existing!r}. Received: {name}={received!r}")
    return folder


def check_output_dir(path: str, needed_bytes: int = 0, name: str = "output_dir",
                     needed_for: str = "its outputs") -> str:
    """Checks that `path` is (or can be created as) a folder this process writes.

    Args:
      path: the folder; it need not exist.
      needed_bytes: free bytes the first write needs there (0: no check).
      name: the flag or argument, as the message names it.
      needed_for: what the bytes are for, in the message ("one checkpoint ...").

    Returns: the absolute path. Raises ValueError (one line); writes nothing.
    """
    return _check_folder(path, needed_bytes, name, needed_for, path)


def check_output_file(path: str, needed_bytes: int = 0, name: str = "output_file",
                      needed_for: str = "it") -> str:
    """Checks that `path` can be written as a file (replaced atomically if it exists).

    Its folder must be (or become) a folder this process writes, with
    `needed_bytes` free; `path` itself must not be a folder. Returns the
    absolute path. Raises ValueError (one line); writes nothing.
    """
    if os.path.isdir(path):
        raise ValueError(f"`{name}` must be a file path, not a folder. Received: {name}={path!r}")
    absolute = os.path.abspath(path)
    _check_folder(os.path.dirname(absolute), needed_bytes, name, needed_for, path)
    return absolute
