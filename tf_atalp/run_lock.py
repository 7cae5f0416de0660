"""`RunLock`: one process at a time writes a run folder.

    with RunLock(model_dir, name="model_dir"):
        ...  # only this process writes model_dir

The lock is the file `<folder>/run.lock` (`LOCK_FILE`), locked with flock(2)
for as long as the `with` block runs and holding who has it: pid, host, when
it took the lock and its command line. A second process refuses with
`FolderInUseError`, one line naming the holder. The kernel drops the flock
of a process that ends, kill -9 included, so the file a killed process left
is stale: the next process takes it over with a warning naming the dead
holder, and a kill-and-rerun goes on as before. Where the file system has no
flock (some network file systems), a lock whose pid is alive on this host,
or that names another host, is respected and one whose pid is gone is taken over.
"""

import dataclasses
import errno
import fcntl
import json
import os
import socket
import sys
import time

from absl import logging

from tf_atalp.model_dir import LOCK_FILE


class FolderInUseError(RuntimeError):
    """Another live process holds the folder's lock (the message names it)."""


@dataclasses.dataclass(frozen=True)
class LockHolder:
    """Who holds (or held) a lock: pid, host, when it took it (UTC) and its command line."""

    pid: int
    host: str
    since_utc: str
    command: str = ""

    @classmethod
    def this_process(cls) -> "LockHolder":
        return cls(os.getpid(), socket.gethostname(),
                   time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                   " ".join(os.path.basename(a) if i == 0 else a
                            for i, a in enumerate(sys.argv)))

    @classmethod
    def parse(cls, text: str) -> "LockHolder | None":
        """The holder a lock file's text names; None for an empty or unreadable file."""
        try:
            values = json.loads(text)
            return cls(int(values["pid"]), str(values["host"]), str(values["since_utc"]),
                       str(values.get("command", "")))
        except (ValueError, KeyError, TypeError):
            return None

    def to_text(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    def describe(self) -> str:
        shown = self.command if len(self.command) <= 120 else self.command[:117] + "..."
        command = f", running {shown!r}" if shown else ""
        return f"process {self.pid} on host {self.host} (since {self.since_utc}{command})"

    def is_alive(self) -> bool:
        """Whether the process still runs; True when it is on another host (not knowable)."""
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # another user's process
        return True


def _flock(handle: int) -> bool | None:
    """Takes the exclusive flock without waiting: True, False (held elsewhere) or None (no flock here)."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as error:
        if error.errno in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
            return None
        raise


def _read(handle: int) -> str:
    os.lseek(handle, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(handle, 65536):
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


class RunLock:
    """Holds `<folder>/<lock_file>` while the `with` block runs (the folder is created).

    Args:
      folder: the run folder (a model_dir, a study cell).
      name: what the error message calls the folder ("model_dir").
      lock_file: the lock's file name in `folder`.

    Attributes:
      path: the lock file.
      took_over: the holder of a stale lock this one replaced, or None.

    Raises FolderInUseError on entering when another live process holds it.
    """

    def __init__(self, folder: str, name: str = "folder", lock_file: str = LOCK_FILE):
        self.folder = folder
        self.name = name
        self.path = os.path.join(folder, lock_file)
        self.took_over: LockHolder | None = None
        self._handle: int | None = None

    def _refuse(self, holder: LockHolder | None) -> None:
        who = holder.describe() if holder else "another process"
        raise FolderInUseError(
            f"`{self.name}` {self.folder!r} is in use by {who}: one process at a time writes "
            f"it. Wait for that run to end (or stop it), or use another {self.name}. "
            f"Lock file: {self.path}")

    def _open_locked(self) -> int:
        """The lock file's handle, locked; the file is the one at `path` (not one removed meanwhile)."""
        while True:
            handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                locked = _flock(handle)
                holder = LockHolder.parse(_read(handle))
                if locked is False or (locked is None and holder is not None
                                       and holder.pid != os.getpid() and holder.is_alive()):
                    self._refuse(holder)
                if os.path.exists(self.path) and os.path.samestat(os.fstat(handle),
                                                                  os.stat(self.path)):
                    return handle
            except BaseException:
                os.close(handle)
                raise
            os.close(handle)  # its holder removed it as we opened it: take the new one

    def __enter__(self) -> "RunLock":
        os.makedirs(self.folder, exist_ok=True)
        handle = self._open_locked()
        previous = LockHolder.parse(_read(handle))
        if previous is not None and previous.pid != os.getpid():
            self.took_over = previous
            logging.warning("Took over the stale lock %s of %s, which has ended (killed?).",
                            self.path, previous.describe())
        os.ftruncate(handle, 0)
        os.lseek(handle, 0, os.SEEK_SET)
        os.write(handle, LockHolder.this_process().to_text().encode())
        os.fsync(handle)
        self._handle = handle
        return self

    def __exit__(self, *exc_info) -> None:
        handle, self._handle = self._handle, None
        if handle is None:
            return
        try:
            if os.path.exists(self.path) and os.path.samestat(os.fstat(handle),
                                                              os.stat(self.path)):
                os.remove(self.path)  # removed while still locked, so no one locks it meanwhile
        finally:
            os.close(handle)
