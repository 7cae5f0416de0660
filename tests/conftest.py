"""pytest set-up shared by every test module."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_collection_modifyitems(items):
    # tf.test.TestCase inherits `test_session`, a deprecated helper, not a test.
    items[:] = [item for item in items if item.name != "test_session"]
