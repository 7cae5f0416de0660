"""Works around a missing TFDS dependency; import before preparing any TFDS dataset.

tensorflow-datasets 4.9.10 imports the `importlib_resources` backport in
`DatasetBuilder.code_path` (reached by every `download_and_prepare`) but does
not declare it (tensorflow/datasets#11212). On Python >= 3.11 the standard
library's `importlib.resources` has the same API, so when the backport is not
installed this registers the standard module under its name.
"""

import importlib.resources
import importlib.resources.abc
import importlib.util
import sys


def ensure_importlib_resources() -> None:
    """Makes `import importlib_resources` work (the backport if installed, else the stdlib)."""
    if "importlib_resources" not in sys.modules and (
            importlib.util.find_spec("importlib_resources") is None):
        sys.modules["importlib_resources"] = importlib.resources


ensure_importlib_resources()
