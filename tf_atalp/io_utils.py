"""Atomic file writes: a result file is either the old one or the new one, never half."""

import json
import os
import tempfile


def atomic_write_text(path: str, text: str) -> None:
    """Writes `text` to `path` through a temporary file in the same folder."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        os.chmod(temporary, 0o666 & ~current_umask())  # mkstemp makes files 0600
        with os.fdopen(handle, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_json(path: str, value) -> None:
    """Writes `value` as indented JSON to `path`, atomically."""
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")
