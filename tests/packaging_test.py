"""requirements.txt and pyproject.toml name the same runtime dependencies."""

import os
import re
import tomllib
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def requirement_lines(path):
    with open(path) as f:
        return sorted(line.strip() for line in f if line.strip() and not line.startswith("#"))


class PackagingTest(unittest.TestCase):

    def test_requirements_match_pyproject(self):
        with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
            pyproject = tomllib.load(f)
        self.assertEqual(sorted(pyproject["project"]["dependencies"]),
                         requirement_lines(os.path.join(ROOT, "requirements.txt")))

    def test_version_matches_package(self):
        with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
            version = tomllib.load(f)["project"]["version"]
        with open(os.path.join(ROOT, "tf_atalp", "__init__.py")) as f:
            self.assertEqual(re.search(r'__version__ = "(.+)"', f.read()).group(1), version)


if __name__ == "__main__":
    unittest.main()
