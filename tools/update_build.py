"""Regenerates BUILD from the imports of every module, test and entry point.

    python tools/update_build.py          # rewrites BUILD
    python tools/update_build.py --check  # exit 1 if BUILD is not up to date

One py_library per tf_atalp module (name: its path under tf_atalp/ with "/"
as "_", a package by its folder), one per helper module in tests/
("tests_<name>", testonly when it imports test-only code), a py_binary per
entry point and a py_test per tests/*_test.py. Deps are the tf_atalp and
tests modules imported, and requirement(...) for third-party packages.
Attributes other than name, srcs and deps (data, size, testonly, ...) are
kept from the current BUILD, by target name. tests/build_file_test.py checks
the result.
"""

import ast
import glob
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRY_POINTS = ("train_main", "eval_main")
PACKAGES = {"tensorflow": "tensorflow", "keras": "keras", "numpy": "numpy", "absl": "absl-py",
            "tensorflow_datasets": "tensorflow-datasets", "matplotlib": "matplotlib",
            "h5py": "h5py"}
HEADER = '''# Bazel targets for tf_atalp. tests/build_file_test.py fails when a module,
# test or entry point is missing here, or an import has no matching dep.
# Regenerate with: python tools/update_build.py

load("@pypi//:requirements.bzl", "requirement")
load("@rules_python//python:defs.bzl", "py_binary", "py_library", "py_test")

package(default_visibility = ["//visibility:public"])
'''


def target_name(path: str) -> str:
    """The target of a repository path."""
    if path.startswith("tests/"):
        return os.path.splitext(path)[0].replace("/", "_") if not path.endswith("_test.py") \
            else os.path.basename(path)[:-3]
    if path.startswith("tf_atalp/"):
        inner = os.path.relpath(path, "tf_atalp")
        if inner == "__init__.py":
            return "tf_atalp"
        if inner.endswith("/__init__.py"):
            inner = os.path.dirname(inner)
        return os.path.splitext(inner)[0].replace("/", "_")
    return os.path.splitext(path)[0]


def resolve(dotted: str) -> str | None:
    base = os.path.join(*dotted.split("."))
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.exists(os.path.join(ROOT, candidate)):
            return candidate
    return None


def imports(path: str) -> tuple[set[str], set[str]]:
    """(repository modules imported, third-party packages imported) of a file."""
    with open(os.path.join(ROOT, path)) as f:
        tree = ast.parse(f.read(), path)
    local, packages = set(), set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            top = name.split(".")[0]
            if top in ("tf_atalp", "tests"):
                module = resolve(name)
                if module:
                    local.add(module)
            elif top in PACKAGES:
                packages.add(PACKAGES[top])
    return local, packages


def current_extras() -> dict[str, list[str]]:
    """{target: [source text of each attribute other than name, srcs, deps]}."""
    path = os.path.join(ROOT, "BUILD")
    if not os.path.exists(path):
        return {}
    text = open(path).read()
    extras = {}
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "").startswith("py_"):
            keywords = {k.arg: k for k in node.keywords}
            name = keywords["name"].value.value
            extras[name] = [f"{k.arg} = {ast.get_source_segment(text, k.value)}"
                            for k in node.keywords if k.arg not in ("name", "srcs", "deps")]
    return extras


def render(rule: str, name: str, path: str, deps: list[str], extras: list[str]) -> str:
    lines = [f"{rule}(", f'    name = "{name}",', f'    srcs = ["{path}"],']
    lines += [f"    {extra}," for extra in extras]
    if deps:
        lines.append("    deps = [")
        lines += [f"        {d}," for d in deps]
        lines.append("    ],")
    return "\n".join(lines + [")"])


def deps_of(path: str) -> list[str]:
    local, packages = imports(path)
    own = target_name(path)
    names = sorted({target_name(m) for m in local} - {own})
    return [f'":{n}"' for n in names] + [f'requirement("{p}")' for p in sorted(packages)]


def build_text() -> str:
    extras = current_extras()
    modules = sorted(os.path.relpath(p, ROOT) for p in
                     glob.glob(os.path.join(ROOT, "tf_atalp", "**", "*.py"), recursive=True))
    modules.sort(key=lambda p: (target_name(p) != "tf_atalp", target_name(p)))
    helpers = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "tests",
                                                                               "*.py"))
                     if not p.endswith("_test.py") and not p.endswith("conftest.py")
                     and not p.endswith("__init__.py"))
    tests = sorted(os.path.relpath(p, ROOT) for p in
                   glob.glob(os.path.join(ROOT, "tests", "*_test.py")))
    blocks = [HEADER, "# ---- library modules\n"]
    for path in modules + helpers:
        name = target_name(path)
        blocks.append(render("py_library", name, path, deps_of(path), extras.get(name, [])) + "\n")
    blocks.append("# ---- entry points\n")
    for entry in ENTRY_POINTS:
        path = f"{entry}.py"
        blocks.append(render("py_binary", entry, path, deps_of(path), extras.get(entry, [])) + "\n")
    blocks.append("# ---- tests\n")
    for path in tests:
        name = target_name(path)
        blocks.append(render("py_test", name, path, deps_of(path), extras.get(name, [])) + "\n")
    return "\n".join(blocks)


def main(argv) -> int:
    text = build_text()
    path = os.path.join(ROOT, "BUILD")
    if "--check" in argv:
        current = open(path).read() if os.path.exists(path) else ""
        if current != text:
            print("BUILD is not up to date: run python tools/update_build.py")
            return 1
        return 0
    with open(path, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
