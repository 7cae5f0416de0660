"""bench/harness.py and bench/run.py: entries, goals, the results file, selection (no timing)."""

import json
import os
import sys
import tempfile
import unittest
from unittest import mock

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "bench"))

import harness  # noqa: E402
import run as bench_run  # noqa: E402

MACHINE = {"cpus": 2, "cpu_model": "test"}


def _entry(benchmark="b", comparison="c", subject=2.0, reference=1.0, **kwargs):
    return harness.entry(benchmark, comparison, harness.side("s", subject, "s/step"),
                         harness.side("r", reference, "s/step"), settings={"k": 7},
                         machine_info=MACHINE, **kwargs)


class EntryTest(unittest.TestCase):

    def test_ratio_is_subject_over_reference_by_default(self):
        self.assertAlmostEqual(_entry(subject=3.0, reference=1.5)["ratio"], 2.0)

    def test_an_explicit_ratio_wins(self):
        self.assertAlmostEqual(_entry(ratio=10.5)["ratio"], 10.5)

    def test_entry_has_the_stable_schema(self):
        e = _entry()
        for key in ("id", "benchmark", "comparison", "subject", "reference", "ratio",
                    "ratio_definition", "goal", "settings", "machine", "notes", "skipped"):
            self.assertIn(key, e)
        self.assertEqual(e["id"], "b/c")
        self.assertEqual(e["machine"], MACHINE)
        json.dumps(e)  # JSON-ready

    def test_goal_is_judged_on_the_ratio(self):
        at_most = harness.goal("within 10%", 1.10, "<=", None)
        self.assertTrue(_entry(subject=1.05, reference=1.0, goal=at_most)["goal"]["met"])
        self.assertFalse(_entry(subject=1.2, reference=1.0, goal=at_most)["goal"]["met"])
        at_least = harness.goal("2x", 2.0, ">=", None)
        self.assertTrue(_entry(subject=4.0, reference=1.0, goal=at_least)["goal"]["met"])
        self.assertFalse(_entry(subject=1.5, reference=1.0, goal=at_least)["goal"]["met"])

    def test_goal_rejects_an_unknown_relation(self):
        with self.assertRaisesRegex(ValueError, "relation"):
            harness.goal("x", 1.0, "<", None)

    def test_skipped_entry_says_which_package(self):
        e = harness.skipped_entry("pgd_peers", "ours vs ART", "adversarial-robustness-toolbox",
                                  harness.settings_for("quick"), MACHINE)
        self.assertTrue(e["skipped"].startswith(
            "skipped: adversarial-robustness-toolbox not installed"))
        self.assertIsNone(e["ratio"])
        self.assertIn("skipped: adversarial-robustness-toolbox", harness.table([e]))


class DocumentTest(unittest.TestCase):

    def test_add_benchmark_replaces_only_its_own_entries(self):
        document = harness.new_document("cmd", "quick", MACHINE)
        harness.add_benchmark(document, "a", [_entry("a", "1"), _entry("a", "2")], 1.0)
        harness.add_benchmark(document, "b", [_entry("b", "1")], 1.0)
        harness.add_benchmark(document, "a", [_entry("a", "3")], 2.0)
        self.assertEqual(sorted(e["id"] for e in document["entries"]), ["a/3", "b/1"])
        self.assertEqual(document["benchmarks"]["a"]["entries"], 1)

    def test_written_document_loads_back(self):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "results.json")
            document = harness.add_benchmark(harness.new_document("cmd", "quick", MACHINE), "a",
                                             [_entry("a", "1")], 1.0)
            harness.write_document(path, document)
            self.assertEqual(harness.load_document(path)["entries"][0]["id"], "a/1")
            self.assertEqual(os.listdir(folder), ["results.json"])  # no temporary left

    def test_load_ignores_missing_and_foreign_files(self):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "results.json")
            self.assertIsNone(harness.load_document(path))
            with open(path, "w") as f:
                json.dump({"schema_version": -1}, f)
            self.assertIsNone(harness.load_document(path))


class TimingTest(unittest.TestCase):

    def test_every_variant_gets_a_median_of_its_rounds(self):
        calls = []
        times = harness.time_alternating({"a": lambda: calls.append("a"),
                                          "b": lambda: calls.append("b")}, rounds=3, reps=2)
        self.assertEqual(set(times), {"a", "b"})
        self.assertEqual(len(times["a"]["samples_s"]), 3)
        # Warm-up once each, then alternated: a a b b, a a b b, ...
        self.assertEqual(calls[:2], ["a", "b"])
        self.assertEqual(calls[2:6], ["a", "a", "b", "b"])


class SettingsAndSelectionTest(unittest.TestCase):

    def test_modes(self):
        self.assertTrue(harness.settings_for("quick").quick)
        self.assertFalse(harness.settings_for("full").quick)
        with self.assertRaisesRegex(ValueError, "mode"):
            harness.settings_for("fast")

    def test_only_keeps_the_run_order_and_rejects_unknown_names(self):
        self.assertEqual(bench_run.selected("sweep,training_cost"), ["training_cost", "sweep"])
        self.assertEqual(bench_run.selected(""), list(bench_run.BENCHMARKS))
        with self.assertRaises(SystemExit):
            bench_run.selected("nope")

    def test_markdown_prints_the_results_file_without_running(self):
        import contextlib
        import io

        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "results.json")
            document = harness.add_benchmark(harness.new_document("cmd", "quick", MACHINE),
                                             "sweep", [_entry("sweep", "x")], 1.0)
            harness.write_document(path, document)
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                self.assertEqual(bench_run.main(["--markdown", f"--output={path}"]), 0)
            self.assertIn("| sweep/x | s: 2.00 s/step | r: 1.00 s/step | 2 |", printed.getvalue())

    def test_the_default_images_are_the_shared_flowers(self):
        data_dir = harness.settings_for("quick").data_dir
        self.assertEqual(data_dir, harness.shared_data("flowers17"))
        self.assertEqual(data_dir, os.path.join(os.path.dirname(harness.ROOT), "shared", "data",
                                                "flowers17"))

    def test_a_single_scripts_results_file_holds_the_machine(self):
        with tempfile.TemporaryDirectory() as folder, \
                mock.patch.object(harness, "RESULTS_DIR", folder), \
                mock.patch.object(harness, "machine", return_value=MACHINE):
            path = harness.write_results("probe", "python bench/probe.py", {"x": 1})
            self.assertEqual(path, os.path.join(folder, "probe.json"))
            with open(path) as f:
                written = json.load(f)
        self.assertEqual({k: written[k] for k in ("benchmark", "command", "results", "machine")},
                         {"benchmark": "probe", "command": "python bench/probe.py",
                          "results": {"x": 1}, "machine": MACHINE})
        self.assertIn("utc", written)

    def test_every_benchmark_module_exists(self):
        for module in bench_run.BENCHMARKS.values():
            self.assertTrue(os.path.exists(os.path.join(harness.BENCH_DIR, module + ".py")),
                            module)


if __name__ == "__main__":
    unittest.main()
