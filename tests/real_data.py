"""Finds the real image data (read-only, at `<project root>/../shared/data`) for tests.

Missing data skips the test, unless TF_ATALP_REQUIRE_REAL_DATA=1 (CI sets it):
then it fails, so real-data tests are never silently skipped there.
"""

import os
import unittest

REQUIRE_ENV = "TF_ATALP_REQUIRE_REAL_DATA"
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def shared_data_dir(name: str) -> str:
    """The path of `<project root>/../shared/data/<name>`; skips (or fails in CI) if missing."""
    path = os.path.normpath(os.path.join(PROJECT_ROOT, os.pardir, "shared", "data", name))
    if not os.path.isdir(path):
        reason = f"real data not found at {path}; CI requires it"
        if os.environ.get(REQUIRE_ENV) == "1":
            raise AssertionError(f"{reason} ({REQUIRE_ENV}=1)")
        raise unittest.SkipTest(reason)
    return path
