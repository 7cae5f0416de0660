"""End-to-end tests of study_main.py on a tiny synthetic study: report, resume, changes, bad input."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import tensorflow as tf
from absl import flags

from tf_atalp.run_lock import RunLock
from tf_atalp.study import flags as study_flags
from tf_atalp.study.runner import prepare_study, write_report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_FLAGS = ["--dataset=synthetic", "--synthetic_train_size=128", "--synthetic_test_size=32",
               "--image_size=32", "--depth=10", "--width=4", "--epochs=1", "--batch_size=32",
               "--epsilon=0.03", "--step_size=0.01", "--pgd_iterations=1",
               "--mixed_precision=float32", "--robust_accuracy_examples=32",
               "--robust_accuracy_iterations=2", "--attention_map_images=2",
               "--export_saved_model=false"]
STUDY_FLAGS = ["--defenses=pat,at_alp", "--seeds=0,1", "--black_box=wide_none",
               "--entry_flags=wide_none:--defense=none", "--entry_flags=wide_none:--width=8",
               "--paper_iterations=2,4", "--strong_iterations=4", "--autoattack_iterations=3",
               "--square_queries=10", "--eval_batch_size=16", "--max_examples=16",
               "--bootstrap_samples=100", "--study_name=tiny",
               # pat watches for catastrophic overfitting (on by default for fast_at, free_at
               # only), so the cost table's record of the check is tested end to end.
               "--entry_flags=pat:--overfitting_check=true"]


def study_command(study_dir, *extra):
    flags = [f"--train_flags={flag}" for flag in TRAIN_FLAGS]
    return [sys.executable, os.path.join(ROOT, "study_main.py"), f"--study_dir={study_dir}",
            *flags, *STUDY_FLAGS, *extra]


def run_study(study_dir, *extra, timeout=900):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(study_command(study_dir, *extra), cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=environment)


def processes_mentioning(text):
    """pids of running processes whose command line contains `text`."""
    found = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    found.append(int(pid))
        except (OSError, ValueError):
            continue
    return found


def cell_times(report_dir):
    folder = os.path.join(report_dir, "cells")
    return {name: os.stat(os.path.join(folder, name)).st_mtime_ns
            for name in sorted(os.listdir(folder))}


class StudyMainTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp()
        cls.study_dir = os.path.join(cls.tmp, "study")
        cls.report = os.path.join(cls.study_dir, "report")
        first_cell = os.path.join(cls.report, "cells", "train__pat_seed0.json")
        # Start, kill -9 once the first model is recorded, then resume with the same command.
        environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        killed = subprocess.Popen(study_command(cls.study_dir), cwd=ROOT, env=environment,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 600
        while not os.path.exists(first_cell) and killed.poll() is None \
                and time.time() < deadline:
            time.sleep(0.5)
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        time.sleep(2)
        cls.orphans = processes_mentioning(cls.study_dir)
        cls.first_cell_time = os.stat(first_cell).st_mtime_ns
        cls.first_log_time = os.stat(os.path.join(cls.study_dir, "logs",
                                                  "pat_seed0.log")).st_mtime_ns
        cls.resumed = run_study(cls.study_dir)
        with open(os.path.join(cls.report, "study_results.json")) as f:
            cls.results = json.load(f)

    def test_resumed_study_finishes_without_retraining_what_was_done(self):
        self.assertEqual(self.resumed.returncode, 0, self.resumed.stderr[-3000:])
        self.assertEqual(self.orphans, [])  # the trainer died with the killed study
        self.assertIn("train pat_seed0: done", self.resumed.stdout)
        self.assertEqual(os.stat(os.path.join(self.report, "cells",
                                              "train__pat_seed0.json")).st_mtime_ns,
                         self.first_cell_time)
        self.assertEqual(os.stat(os.path.join(self.study_dir, "logs",
                                              "pat_seed0.log")).st_mtime_ns,
                         self.first_log_time)
        self.assertIn("estimated time", self.resumed.stdout)
        self.assertRegex(self.resumed.stdout, r"\[study\] cell \d+/\d+: .*done, about .* left")

    def test_report_tables_comparisons_and_figures(self):
        for name in ("report.md", "study_results.json", "table1.csv", "comparisons.csv",
                     "figure3_paper.png", "robust_against_cost.png", "training_curves.png",
                     "study.json", "protocol/pat/protocol_results.json",
                     "protocol/at_alp/protocol_results.json", "protocol/at_alp/report.md",
                     "autoattack/at_alp_seed1.json"):
            self.assertTrue(os.path.isfile(os.path.join(self.report, name)), name)
        report = open(os.path.join(self.report, "report.md")).read()
        for text in ("Table 1 in the paper's layout", "at_alp against every other entry",
                     "McNemar", "python train_main.py", "python eval_main.py --protocol=paper",
                     "Table 2", "## Time"):
            self.assertIn(text, report)
        columns = {row["column"] for row in self.results["comparisons"]}
        self.assertEqual(columns, {"clean"} | {f"{kind} {e:g}" for kind in
                                               ("white_box", "gray_box", "black_box")
                                               for e in (0.03, 0.25, 0.5)})
        for row in self.results["comparisons"]:
            self.assertEqual((row["reference"], row["other"], row["seed_pairs"]),
                             ("at_alp", "pat", 2))
            self.assertIn(row["verdict"], ("higher", "lower", "not distinguishable"))
        self.assertEqual(self.results["num_examples"], 16)

    def test_cost_table_sets_each_entry_against_pat(self):
        costs = self.results["costs"]
        self.assertEqual((costs["baseline"], costs["column"]), ("pat", "white_box 0.03"))
        rows = {row["entry"]: row for row in costs["rows"]}
        self.assertEqual(set(rows), {"pat", "at_alp"})
        self.assertIsNone(rows["pat"]["against_baseline"])
        self.assertAlmostEqual(rows["pat"]["time_vs_baseline"], 1.0)
        seconds = self.results["training_seconds"]
        self.assertAlmostEqual(rows["at_alp"]["time_vs_baseline"],
                               sum(seconds["at_alp"]) / sum(seconds["pat"]))
        self.assertEqual(rows["at_alp"]["robust"],
                         self.results["accuracy"]["at_alp"]["white_box 0.03"])
        # at_alp minus pat is the reference comparison on the same column: the same test.
        paired = rows["at_alp"]["against_baseline"]
        reference = next(r for r in self.results["comparisons"]
                         if r["other"] == "pat" and r["column"] == "white_box 0.03")
        for key in ("difference", "interval", "a_only", "b_only", "p_value", "verdict"):
            self.assertEqual(paired[key], reference[key], key)
        report = open(os.path.join(self.report, "report.md")).read()
        self.assertIn("## What each defense costs and buys", report)
        # Every cell names the machine it ran on; one machine ran them all here.
        with open(os.path.join(self.report, "cells", "autoattack__pat_seed0.json")) as f:
            self.assertEqual(json.load(f)["machine"], self.results["machine"])
        self.assertIn(f"Machine of every cell: {self.results['machine']}.", report)
        self.assertIn("| defense | training s | x pat's time |", report)
        # One epoch: the check ran on each pat training and could not fire; at_alp had none.
        self.assertEqual([(s["seed"], s["checked"], s["detected"]) for s in
                          rows["pat"]["catastrophic_overfitting"]["seeds"]],
                         [(0, True, False), (1, True, False)])
        self.assertIsNone(rows["at_alp"]["catastrophic_overfitting"])
        self.assertIn("- pat: not detected in any seed checked.", report)

    def test_each_target_is_attacked_from_its_next_seed(self):
        pairs = {}
        for entry in ("pat", "at_alp"):
            with open(os.path.join(self.report, "protocol", entry, "protocol_results.json")) as f:
                models = json.load(f)["models"]
            pairs.update({m["paired_target"]: m["name"] for m in models
                          if m["role"] == "paired_source"})
            # Each entry's protocol holds its own targets and the black-box source only.
            self.assertEqual({m["name"] for m in models if m["role"] == "target"},
                             {f"{entry}_seed0", f"{entry}_seed1"})
            self.assertIn("wide_none", {m["name"] for m in models if m["role"] == "black_box_source"})
        self.assertEqual(pairs, {"pat_seed0": "pat_seed1", "pat_seed1": "pat_seed0",
                                 "at_alp_seed0": "at_alp_seed1", "at_alp_seed1": "at_alp_seed0"})

    def test_headline_is_the_worst_case_over_the_white_box_attacks(self):
        for name, per in self.results["per_target"].items():
            for epsilon in ("0.03", "0.25", "0.5"):
                self.assertLessEqual(per[f"white_box {epsilon}"], per[f"autoattack {epsilon}"])
                self.assertLessEqual(per[f"white_box {epsilon}"], per["clean"])
                self.assertLessEqual(per[f"gray_box {epsilon}"],
                                     per[f"gray_box_paper {epsilon}"])

    def test_a_changed_setting_recomputes_only_its_cells(self):
        before = cell_times(self.report)
        changed = run_study(self.study_dir, "--autoattack_iterations=4")
        self.assertEqual(changed.returncode, 0, changed.stderr[-3000:])
        # The two recorded protocol cells calibrate the estimate; no AutoAttack cell is left.
        self.assertRegex(changed.stdout, r"estimated time .* \(from measured steps; protocol "
                         r"cells x [0-9.]+, the seconds of the 2 cells recorded on this machine")
        after = cell_times(self.report)
        self.assertEqual(set(before), set(after))
        recomputed = {name for name in after if after[name] != before[name]}
        self.assertEqual(recomputed, {f"autoattack__{t}.json" for t in
                                      ("pat_seed0", "pat_seed1", "at_alp_seed0", "at_alp_seed1")})
        restored = run_study(self.study_dir)  # back to the settings the other tests use
        self.assertEqual(restored.returncode, 0, restored.stderr[-3000:])


    def test_a_partial_report_holds_the_finished_entries_and_names_the_others(self):
        def study(*extra):
            values = flags.FlagValues()
            study_flags.define_study_flags(values)
            values(study_command(self.study_dir, *extra)[1:])
            return prepare_study(study_flags.study_config_from_flags(values))

        partial = write_report(study("--defenses=pat,at_alp,alp"), ["study_main.py"], "")
        self.assertEqual(partial["unfinished_entries"], ["alp"])
        self.assertEqual(set(partial["accuracy"]), {"pat", "at_alp"})
        self.assertEqual({row["other"] for row in partial["comparisons"]}, {"pat"})
        report = open(os.path.join(self.report, "report.md")).read()
        self.assertIn("**Partial report**: 2 of 3 entries finished; not yet run: alp.", report)
        # The reference unfinished: no report (every comparison is with it).
        self.assertIsNone(write_report(study("--defenses=pat,alp", "--reference=alp"),
                                       ["study_main.py"], ""))
        whole = write_report(study(), ["study_main.py"], "")
        self.assertEqual(whole["unfinished_entries"], [])
        self.assertNotIn("Partial report", open(os.path.join(self.report, "report.md")).read())

    def test_a_new_process_scores_the_stored_black_box_images(self):
        iterates = os.path.join(self.study_dir, "iterates")

        def stored():
            return {name: os.stat(os.path.join(iterates, name)).st_mtime_ns
                    for name in os.listdir(iterates)}

        def black_box_series():
            with open(os.path.join(self.report, "protocol", "pat", "protocol_results.json")) as f:
                series = json.load(f)["series"]
            return [s for s in series if s["column"] == "black_box"]

        before, numbers = stored(), black_box_series()
        self.assertTrue(before and all(name.endswith(".npz") for name in before))
        self.assertTrue(numbers)
        # pat's protocol is lost: the next process runs it again, crafting nothing.
        shutil.rmtree(os.path.join(self.report, "protocol", "pat"))
        os.remove(os.path.join(self.report, "cells", "protocol__pat.json"))
        rerun = run_study(self.study_dir)
        self.assertEqual(rerun.returncode, 0, rerun.stderr[-3000:])
        self.assertIn("paper protocol on pat (2 seed(s)): to run", rerun.stdout)
        self.assertEqual(stored(), before)  # read, not written again
        self.assertEqual(black_box_series(), numbers)

    def test_a_study_resumed_on_a_new_machine_keeps_the_finished_entries(self):
        # A new machine: no trained model (runs/ is never committed), and at_alp unfinished
        # (its cells were not recorded). Only the black-box source and at_alp train again.
        shutil.rmtree(os.path.join(self.study_dir, "runs"))
        for name in os.listdir(os.path.join(self.report, "cells")):
            if "at_alp" in name:
                os.remove(os.path.join(self.report, "cells", name))
        before = cell_times(self.report)
        resumed = run_study(self.study_dir)
        self.assertEqual(resumed.returncode, 0, resumed.stderr[-3000:])
        for line in ("train pat_seed0: done", "train pat_seed1: done", "train wide_none: to run",
                     "train at_alp_seed0: to run", "paper protocol on pat (2 seed(s)): done"):
            self.assertIn(line, resumed.stdout)
        after = cell_times(self.report)
        self.assertEqual({name for name in before if after[name] != before[name]},
                         {"train__wide_none.json"})
        self.assertEqual(set(after) - set(before),
                         {"train__at_alp_seed0.json", "train__at_alp_seed1.json",
                          "protocol__at_alp.json", "autoattack__at_alp_seed0.json",
                          "autoattack__at_alp_seed1.json"})
        with open(os.path.join(self.report, "study_results.json")) as f:
            results = json.load(f)
        self.assertEqual({entry for found in results["black_box_weights"]["wide_none"].values()
                          for entry in found}, {"pat", "at_alp"})
        self.assertEqual(len(results["comparisons"]), 10)


    def test_report_only_rewrites_the_report_and_runs_no_cell(self):
        before = cell_times(self.report)
        report = os.path.join(self.report, "report.md")
        os.remove(report)
        rewritten = run_study(self.study_dir, "--report_only")
        self.assertEqual(rewritten.returncode, 0, rewritten.stderr[-3000:])
        self.assertEqual(cell_times(self.report), before)
        self.assertNotIn("[study] cell", rewritten.stdout)
        text = open(report).read()
        self.assertIn("## What each defense costs and buys", text)
        self.assertNotIn("report_only", text)  # its command and flags are the study's


class StudyInputsTest(tf.test.TestCase):

    def check_refused(self, message, *extra):
        study_dir = os.path.join(tempfile.mkdtemp(), "study")
        run = run_study(study_dir, *extra, timeout=300)
        self.assertEqual(run.returncode, 2, run.stderr[-2000:])
        self.assertIn(message, run.stderr)
        self.assertNotIn("Traceback", run.stderr)
        self.assertFalse(os.path.exists(study_dir))  # nothing written

    def test_one_seed_cannot_give_a_faithful_gray_box_source(self):
        self.check_refused("needs at least 2 seeds", "--seeds=3")

    def test_an_unknown_defense_is_refused(self):
        self.check_refused("Entry 'nonsense'", "--defenses=nonsense,pat,at_alp")

    def test_models_with_other_classes_are_refused(self):
        self.check_refused("must have the same classes",
                           "--entry_flags=wide_none:--synthetic_num_classes=3")

    def test_a_second_study_on_the_same_folder_refuses(self):
        study_dir = os.path.join(tempfile.mkdtemp(), "study")
        with RunLock(study_dir, name="study_dir"):
            run = run_study(study_dir, timeout=300)
        self.assertEqual(run.returncode, 1, run.stderr[-2000:])
        self.assertIn(f"`study_dir` {study_dir!r} is in use by process {os.getpid()} ", run.stderr)
        self.assertNotIn("Traceback", run.stderr)
        self.assertFalse(os.path.exists(os.path.join(study_dir, "runs")))

    def test_report_only_and_plan_only_together_are_refused(self):
        self.check_refused("`plan_only` and `report_only` cannot both be set", "--plan_only",
                           "--report_only")

    def test_report_only_before_the_reference_finished_writes_no_report(self):
        study_dir = os.path.join(tempfile.mkdtemp(), "study")
        run = run_study(study_dir, "--report_only", timeout=300)
        self.assertEqual(run.returncode, 1, run.stderr[-2000:])
        self.assertIn("No report written: the reference entry 'at_alp' has not finished",
                      run.stderr)
        self.assertFalse(os.path.exists(os.path.join(study_dir, "report")))
        self.assertFalse(os.path.exists(os.path.join(study_dir, "runs")))

    def test_a_missing_data_folder_is_refused(self):
        self.check_refused("Entry 'pat'", "--entry_flags=pat:--dataset=folder",
                           "--entry_flags=pat:--data_dir=/nonexistent/images")


if __name__ == "__main__":
    tf.test.main()
