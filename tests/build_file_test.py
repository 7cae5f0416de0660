"""BUILD is kept in step with the code: parsed as Python (Starlark) with `ast`.

Fails when a module, test or entry point has no target, when a target names
a file that is gone, or when a module imports a tf_atalp (or tests helper)
module that its target does not depend on. The imports are read by
tools/update_build.py's walker, the one BUILD is generated from.
"""

import ast
import glob
import importlib.util
import os
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RULES = ("py_library", "py_test", "py_binary")


def parse_build():
    """{rule: {name: {"srcs": [...], "deps": [...]}}} from the BUILD file."""
    with open(os.path.join(ROOT, "BUILD")) as f:
        tree = ast.parse(f.read(), "BUILD")
    targets = {rule: {} for rule in RULES}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in RULES:
            values = {}
            for keyword in node.keywords:
                if keyword.arg in ("name", "srcs", "deps", "main"):
                    values[keyword.arg] = _literal(keyword.value)
            targets[node.func.id][values["name"]] = values
    return targets


def _literal(node):
    if isinstance(node, ast.Call):  # requirement("numpy")
        return f"pip:{node.args[0].value}"
    if isinstance(node, ast.List):
        return [_literal(item) for item in node.elts]
    return node.value


def _update_build():
    """tools/update_build.py as a module: its import walker is the one BUILD is made from."""
    spec = importlib.util.spec_from_file_location(
        "update_build", os.path.join(ROOT, "tools", "update_build.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


UPDATE_BUILD = _update_build()


def repository_imports(path):
    """The tf_atalp and tests modules a file imports, as repository paths."""
    return UPDATE_BUILD.imports(path)[0]


class BuildFileTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.targets = parse_build()
        cls.owner = {}
        for rule in RULES:
            for name, target in cls.targets[rule].items():
                for source in target.get("srcs", []):
                    cls.owner[source] = (rule, name)

    def test_every_module_has_a_library(self):
        modules = sorted(os.path.relpath(p, ROOT) for p in
                         glob.glob(os.path.join(ROOT, "tf_atalp", "**", "*.py"), recursive=True))
        missing = [m for m in modules if self.owner.get(m, (None,))[0] != "py_library"]
        self.assertEqual(missing, [], "modules without a py_library in BUILD")

    def test_every_test_module_has_a_test(self):
        tests = sorted(os.path.relpath(p, ROOT) for p in
                       glob.glob(os.path.join(ROOT, "tests", "*_test.py")))
        missing = [t for t in tests if self.owner.get(t, (None,))[0] != "py_test"]
        self.assertEqual(missing, [], "test modules without a py_test in BUILD")

    def test_entry_points_are_binaries(self):
        for entry in ("train_main.py", "eval_main.py"):
            self.assertEqual(self.owner.get(entry, (None,))[0], "py_binary", entry)

    def test_every_source_exists(self):
        gone = [s for s in self.owner if not os.path.exists(os.path.join(ROOT, s))]
        self.assertEqual(gone, [], "BUILD names files that do not exist")

    def test_deps_exist_and_cover_imports(self):
        libraries = self.targets["py_library"]
        for rule in RULES:
            for name, target in self.targets[rule].items():
                deps = target.get("deps", [])
                local = {d[1:] for d in deps if d.startswith(":")}
                self.assertEqual(local - set(libraries), set(), f"{name}: unknown deps")
                needed = set()
                for source in target.get("srcs", []):
                    for module in repository_imports(source):
                        owner_rule, owner_name = self.owner.get(module, (None, None))
                        self.assertEqual(owner_rule, "py_library", f"{module} has no library")
                        if owner_name != name:
                            needed.add(owner_name)
                self.assertEqual(needed - local, set(), f"{name}: imports without deps")


if __name__ == "__main__":
    unittest.main()
