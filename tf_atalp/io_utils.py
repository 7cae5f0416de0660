"""Writes that lose nothing: whole files or none, and a full disk said in one line.

- `atomic_save(path, save)`: `save` writes a temporary file beside `path`,
  which is then synced and renamed into place; `atomic_write_text` and
  `atomic_write_json` are its text forms. A reader sees the old file or the
  new one, never half of one, also after a kill.
- `writing(path, *temporaries)`: around any write; on failure it removes the
  temporaries, and a full disk (or quota) becomes `NoSpaceError(path)`.
- `no_space_error(error, path)`: any error of a full disk (OSError, h5py's,
  TensorFlow's) as a `NoSpaceError`, or None.
- `remove_temporary_files(folder)`: what killed writes left (`.tmp-*`).
"""

import contextlib
import errno
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator

TEMPORARY_PREFIX = ".tmp-"  # every temporary file or folder of a write starts so
_NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# TensorFlow and h5py raise their own errors and put the system's message in the text.
_NO_SPACE_TEXTS = tuple(os.strerror(code) for code in _NO_SPACE_ERRNOS)
# TensorFlow names the file before the message: "<path>; No space left on device".
_PATH_BEFORE_TEXT = re.compile(r"([^\s;{}]+); (?:" + "|".join(map(re.escape, _NO_SPACE_TEXTS)) + ")")


class NoSpaceError(OSError):
    """A write failed because the disk (or the quota) is full.

    Attributes:
      path: the file or folder being written.
      last_checkpoint: what a rerun resumes from (a path, with what it
        holds), or None when there is nothing to resume from.
    """

    def __init__(self, path: str, last_checkpoint: str | None = None):
        super().__init__(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        self.path = path
        self.last_checkpoint = last_checkpoint

    def __str__(self) -> str:
        kept = (f"the last complete checkpoint is {self.last_checkpoint}, "
                if self.last_checkpoint else "")
        return (f"no space left on device while writing {self.path}; {kept}"
                "rerun the same command after freeing space")


def _chain(error: BaseException | None) -> Iterator[BaseException]:
    """`error` and the errors it was raised from or while handling, newest first."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def is_no_space(error: BaseException) -> bool:
    """Whether `error`, or an error behind it, is a full disk or an exceeded quota."""
    return any((isinstance(e, OSError) and e.errno in _NO_SPACE_ERRNOS)
               or any(text in str(e) for text in _NO_SPACE_TEXTS) for e in _chain(error))


def no_space_error(error: BaseException, path: str) -> NoSpaceError | None:
    """`error` as a NoSpaceError (None when it is not a full disk).

    The path is the one a NoSpaceError behind `error` names, else the file
    the error names (OSError.filename, or TensorFlow's "<path>; No space
    left on device"), else `path`.
    """
    if not is_no_space(error):
        return None
    for e in _chain(error):
        if isinstance(e, NoSpaceError):
            return e
    for e in _chain(error):
        named = getattr(e, "filename", None) if isinstance(e, OSError) else None
        match = _PATH_BEFORE_TEXT.search(str(e))
        if named or match:
            return NoSpaceError(str(named or match.group(1)))
    return NoSpaceError(path)


def remove_path(path: str) -> None:
    """Removes a file or a folder tree; nothing if it does not exist."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


@contextlib.contextmanager
def writing(path: str, *temporaries: str) -> Iterator[None]:
    """Cleans up after a failed write of `path`; a full disk raises NoSpaceError(path).

    On any exception inside the block, each of `temporaries` (files or
    folders) is removed; an error of a full disk or quota is raised again as
    NoSpaceError naming `path` (a NoSpaceError of an inner write as it is),
    any other error as it is.
    """
    try:
        yield
    except BaseException as error:
        for temporary in temporaries:
            remove_path(temporary)
        if (not isinstance(error, Exception) or isinstance(error, NoSpaceError)
                or not is_no_space(error)):
            raise
        raise NoSpaceError(path) from error


def temporary_path(path: str) -> str:
    """A new temporary name beside `path` that ends like it (Keras checks the suffix)."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f"{TEMPORARY_PREFIX}{uuid.uuid4().hex[:8]}-{name}")


def _fsync(path: str) -> None:
    if os.path.isfile(path):
        handle = os.open(path, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def atomic_save(path: str, save: Callable[[str], object]) -> str:
    """Runs `save(temporary)`, then syncs and renames the temporary file to `path`.

    The temporary file is beside `path` (same file system), named by
    `temporary_path`; on any error it is removed and the old `path` is
    untouched. Returns `path`. Raises NoSpaceError on a full disk.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = temporary_path(path)
    with writing(path, temporary):
        save(temporary)
        _fsync(temporary)
        os.replace(temporary, path)
    return path


def atomic_write_text(path: str, text: str) -> None:
    """Writes `text` to `path` through a temporary file in the same folder."""
    def write(temporary):
        with open(temporary, "w") as f:
            f.write(text)
    atomic_save(path, write)


def atomic_write_json(path: str, value) -> None:
    """Writes `value` as indented JSON to `path`, atomically."""
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def remove_temporary_files(folder: str) -> list[str]:
    """Removes the temporary files and folders (TEMPORARY_PREFIX) that killed writes left
    in `folder` (not below it); returns their names. Only for a folder no other process writes."""
    if not os.path.isdir(folder):
        return []
    names = sorted(n for n in os.listdir(folder) if n.startswith(TEMPORARY_PREFIX))
    for name in names:
        remove_path(os.path.join(folder, name))
    return names
