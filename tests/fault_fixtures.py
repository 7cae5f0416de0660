"""Runs train_main.py with one fault of the machine injected at a chosen write (tests only).

    python tests/fault_fixtures.py kill h5:4:5 -- <train_main.py flags>
    python tests/fault_fixtures.py enospc commit:1 -- <train_main.py flags>
    python tests/fault_fixtures.py kill export -- <train_main.py flags>

Faults: `kill` (the process sends itself SIGKILL, as a power cut or the OOM
killer ends it: nothing is cleaned up) and `enospc` (the write raises
OSError ENOSPC, as a full disk does). Points, counted in this process:
  h5:F:D    the D-th HDF5 dataset of the F-th weights file written; each
            epoch writes its checkpoint (file 2k-1 of the k-th epoch this
            process runs), then its backup (file 2k)
  commit:N  the N-th backup commit (training_metadata.json), once the
            weights it names are written
  export    inside the SavedModel export: written to its staging folder,
            not yet renamed into place
"""

import errno
import os
import runpy
import signal
import sys

import h5py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_MAIN = os.path.join(ROOT, "train_main.py")


def command(fault: str, point: str, *flags: str) -> list[str]:
    """The command line that runs train_main.py with `flags` and the fault."""
    return [sys.executable, os.path.abspath(__file__), fault, point, "--", *flags]


def _fault(kind: str, path: str):
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


def _at_h5_dataset(kind: str, file_index: int, dataset_index: int) -> None:
    files, counts = [], {}
    original = h5py.Group.create_dataset

    def create_dataset(group, *args, **kwargs):
        name = group.file.filename
        if name not in counts:
            files.append(name)
            counts[name] = 0
        counts[name] += 1
        if len(files) == file_index and counts[name] == dataset_index:
            _fault(kind, name)
        return original(group, *args, **kwargs)
    h5py.Group.create_dataset = create_dataset


def _at_commit(kind: str, number: int) -> None:
    from tf_atalp.training import backup
    original, seen = backup.atomic_write_text, [0]

    def commit(path, text):
        seen[0] += 1
        if seen[0] == number:
            _fault(kind, path)
        return original(path, text)
    backup.atomic_write_text = commit


def _at_export(kind: str) -> None:
    from tf_atalp import export
    original = export._check_assets_written  # called once the staging folder is written

    def check_assets_written(saved_model_dir, sources):
        original(saved_model_dir, sources)
        _fault(kind, saved_model_dir)
    export._check_assets_written = check_assets_written


def main(argv: list[str]) -> None:
    kind, point, separator, *flags = argv[1:]
    if kind not in ("kill", "enospc") or separator != "--":
        raise SystemExit(__doc__)
    where, *numbers = point.split(":")
    numbers = [int(n) for n in numbers]
    if where == "h5":
        _at_h5_dataset(kind, *numbers)
    elif where == "commit":
        _at_commit(kind, *numbers)
    elif where == "export":
        _at_export(kind)
    else:
        raise SystemExit(__doc__)
    sys.argv = [TRAIN_MAIN, *flags]
    runpy.run_path(TRAIN_MAIN, run_name="__main__")


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    main(sys.argv)
