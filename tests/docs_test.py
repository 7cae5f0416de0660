"""README.md and docs/*.md: every quoted figure equals its results file, every link resolves.

A figure quoted from a results file carries a marker right after it, an HTML
comment that rendered Markdown hides:

    AutoAttack leaves **20.2%**<!-- figure: results/x/aa.json robust_accuracy[0].robust_accuracy .1% -->

- the path is relative to the repository root;
- the key path is dict keys and list items joined by dots: `clean`, `[3]` (a
  list index), `[setting=paper,epsilon=0.03125]` (the one list item whose
  fields have those values; numbers compare as numbers);
- the format is a Python format spec applied to the value (`.4f`, `.1%`,
  `d`); a figure formatted with a `%` spec may be quoted without its % sign
  (in a table whose columns are in %).

The text right before the marker, less Markdown emphasis (`*`, `_`) and
spaces, must end with the formatted value (and not inside a longer number).

Every relative link `[text](path#anchor)` outside code must name an existing
file and, with an anchor, one of that file's headings under GitHub's rule.
No TensorFlow: this runs in a second.
"""

import glob
import json
import os
import re
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKER = re.compile(r"<!--\s*figure:\s*(\S+)\s+(\S+)\s+(\S+)\s*-->")
KEY_SEGMENT = re.compile(r"\[([^\]]*)\]|([^.\[\]]+)")
FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.DOTALL | re.MULTILINE)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]\n]*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
EXTERNAL = ("http://", "https://", "mailto:")


def markdown_files() -> list[str]:
    """README.md and docs/*.md, relative to the repository root."""
    return ["README.md"] + sorted(os.path.relpath(p, ROOT)
                                  for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))


def read(path: str) -> str:
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def _matches(field, wanted: str) -> bool:
    if isinstance(field, (int, float)) and not isinstance(field, bool):
        try:
            return float(wanted) == field
        except ValueError:
            return False
    return str(field) == wanted


def follow(value, key_path: str):
    """The value at `key_path` (see the module docstring); KeyError naming the failing step."""
    position = 0
    for match in KEY_SEGMENT.finditer(key_path):
        if match.start() != position:
            raise KeyError(f"cannot parse the key path at {key_path[position:]!r}")
        position = match.end() + (1 if key_path[match.end():match.end() + 1] == "." else 0)
        bracket, key = match.groups()
        if key is not None:
            if not isinstance(value, dict) or key not in value:
                raise KeyError(f"no key {key!r}")
            value = value[key]
        elif re.fullmatch(r"-?\d+", bracket):
            if not isinstance(value, list) or not -len(value) <= int(bracket) < len(value):
                raise KeyError(f"no list item [{bracket}]")
            value = value[int(bracket)]
        else:
            wanted = dict(pair.split("=", 1) for pair in bracket.split(","))
            found = [item for item in (value if isinstance(value, list) else [])
                     if isinstance(item, dict)
                     and all(k in item and _matches(item[k], v) for k, v in wanted.items())]
            if len(found) != 1:
                raise KeyError(f"[{bracket}] matches {len(found)} list items, not one")
            value = found[0]
    if position < len(key_path):
        raise KeyError(f"cannot parse the key path at {key_path[position:]!r}")
    return value


def quoted_before(text: str, formatted: str, spec: str) -> bool:
    """Whether `text` (what precedes a marker) ends with the figure `formatted`."""
    text = text.rstrip(" *_")
    candidates = [formatted] + ([formatted[:-1]] if spec.endswith("%") else [])
    for candidate in candidates:
        if text.endswith(candidate):
            before = text[:-len(candidate)][-1:]
            if not (before.isdigit() or before == "."):
                return True
    return False


def figure_markers(path: str):
    """(line, results file, key path, spec, the text before the marker) per marker."""
    text = read(path)
    for match in MARKER.finditer(text):
        line_start = text.rfind("\n", 0, match.start()) + 1
        before = MARKER.sub("", text[line_start:match.start()])
        yield (text.count("\n", 0, match.start()) + 1, *match.groups(), before)


def without_fences(text: str) -> str:
    """`text` with its fenced code blocks blanked (line numbers kept)."""
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def github_anchors(text: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown text."""
    anchors, seen = set(), {}
    for heading in HEADING.findall(without_fences(text)):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def relative_links(path: str):
    """(line, target) of every link in `path` that is not to another site."""
    text = INLINE_CODE.sub("", without_fences(read(path)))
    for match in LINK.finditer(text):
        target = match.group(1)
        if not target.startswith(EXTERNAL):
            yield text.count("\n", 0, match.start()) + 1, target


class FiguresTest(unittest.TestCase):

    def test_the_readme_and_the_results_page_quote_figures(self):
        for path in ("README.md", os.path.join("docs", "results.md")):
            self.assertGreaterEqual(len(list(figure_markers(path))), 5, path)

    def test_every_quoted_figure_equals_its_results_file(self):
        for path in markdown_files():
            for line, results_file, key_path, spec, before in figure_markers(path):
                where = f"{path}:{line}: figure {results_file} {key_path} {spec}"
                with self.subTest(where):
                    full = os.path.join(ROOT, results_file)
                    self.assertTrue(os.path.isfile(full), f"{where}: no such results file")
                    with open(full) as f:
                        data = json.load(f)
                    try:
                        value = follow(data, key_path)
                    except KeyError as error:
                        self.fail(f"{where}: {error.args[0]}")
                    formatted = format(value, spec)
                    self.assertTrue(
                        quoted_before(before, formatted, spec),
                        f"{where}: the file says {formatted} (from {value!r}), the text before "
                        f"the marker says {before.strip()[-40:]!r}")


class LinksTest(unittest.TestCase):

    def test_every_relative_link_names_a_file_and_a_heading(self):
        anchors = {}
        for path in markdown_files():
            for line, target in relative_links(path):
                where = f"{path}:{line}: link {target}"
                with self.subTest(where):
                    file_part, _, anchor = target.partition("#")
                    linked = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) \
                        if file_part else path
                    self.assertTrue(os.path.exists(os.path.join(ROOT, linked)),
                                    f"{where}: {linked} does not exist")
                    if anchor and linked.endswith(".md"):
                        if linked not in anchors:
                            anchors[linked] = github_anchors(read(linked))
                        self.assertIn(anchor, anchors[linked],
                                      f"{where}: {linked} has no heading #{anchor}")

    def test_anchors_follow_githubs_rule(self):
        text = ("# Layout, and extending tf_atalp\n## The paper's experiments (`--protocol=paper`)\n"
                "```\n# not a heading\n```\n## Faults\n## Faults\n")
        self.assertEqual(github_anchors(text), {
            "layout-and-extending-tf_atalp", "the-papers-experiments---protocolpaper",
            "faults", "faults-1"})


class MarkerSyntaxTest(unittest.TestCase):

    def test_key_paths(self):
        data = {"series": [{"setting": "paper", "epsilon": 0.03125, "acc": 0.25},
                           {"setting": "strong", "epsilon": 0.03125, "acc": 0.5}],
                "clean": {"a": [1, 2]}}
        self.assertEqual(follow(data, "series[setting=strong,epsilon=0.03125].acc"), 0.5)
        self.assertEqual(follow(data, "series[1].acc"), 0.5)
        self.assertEqual(follow(data, "clean.a[-1]"), 2)
        for bad in ("series[epsilon=0.03125].acc", "clean.b", "series[2]", "clean.a[0].x"):
            with self.assertRaises(KeyError, msg=bad):
                follow(data, bad)

    def test_a_figure_must_end_the_text_before_its_marker(self):
        self.assertTrue(quoted_before("robust: **20.2%**", "20.2%", ".1%"))
        self.assertTrue(quoted_before("| 20.2", "20.2%", ".1%"))
        self.assertFalse(quoted_before("| 120.2", "20.2%", ".1%"))
        self.assertFalse(quoted_before("| 20.2 s", "20.2", ".1f"))
        self.assertFalse(quoted_before("0.2574 ", "0.2575", ".4f"))


if __name__ == "__main__":
    unittest.main()
