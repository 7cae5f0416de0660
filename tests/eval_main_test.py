"""End-to-end tests of eval_main.py, run as a subprocess on a tiny model_dir."""

import json
import os
import shutil
import subprocess
import sys

import tensorflow as tf
from absl.testing import parameterized

from tests.evaluation_fixtures import make_model_dir, temporary_folder

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_eval_main(*args) -> subprocess.CompletedProcess:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": PROJECT_ROOT}
    return subprocess.run([sys.executable, os.path.join(PROJECT_ROOT, "eval_main.py"), *args],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, env=environment,
                          timeout=300)


class EvalMainTest(tf.test.TestCase, parameterized.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.model_dir = os.path.join(temporary_folder(cls), "run")
        make_model_dir(cls.model_dir)
        cls.results_file = os.path.join(cls.model_dir, "eval_results.json")

    def setUp(self):
        super().setUp()
        if os.path.exists(self.results_file):
            os.remove(self.results_file)

    def evaluate(self, *args):
        """(the finished eval_main run on the tiny model_dir, its results document)."""
        run = run_eval_main(f"--model_dir={self.model_dir}", *args)
        self.assertEqual(run.returncode, 0, run.stderr)
        with open(self.results_file) as f:
            return run, json.load(f)

    def test_evaluates_a_model_dir_and_writes_the_results(self):
        run, document = self.evaluate("--epsilons=0.03", "--iterations=2,5", "--max_examples=64")
        self.assertEqual(document["dataset"]["name"], "synthetic")
        self.assertEqual(document["dataset"]["split"], "test")
        self.assertEqual(document["dataset"]["num_examples"], 64)
        self.assertEqual(document["model"]["format"], "keras")
        self.assertEqual(document["model"]["defense"], "at_alp")
        self.assertIn("--epsilons=0.03", document["command"])
        clean = document["clean_accuracy"]
        self.assertEqual(clean, document["clean_correct"] / 64)
        points = document["results"]
        self.assertEqual([(p["epsilon"], p["iterations"]) for p in points],
                         [(0.03, 2), (0.03, 5)])
        for point in points:
            self.assertEqual((point["threat_model"], point["norm"], point["step_size"],
                              point["run_iterations"], point["restarts"], point["num_examples"]),
                             ("white_box", "linf", 0.00390625, 5, 1, 64))
            self.assertLessEqual(point["worst_iterate_accuracy"], point["accuracy"])
            self.assertLessEqual(point["accuracy"], clean)
        self.assertIn(f"Clean accuracy: {clean:.4f}", run.stdout)
        self.assertIn("epsilon         2        5  worst-iterate", run.stdout)
        self.assertEqual(sorted(os.listdir(self.model_dir)),
                         ["checkpoints", "eval_results.json", "eval_results.png", "model.keras",
                          "model_card.json", "run_config.json", "saved_model"])
        self.assertIn("Model card:", run.stdout)
        self.assertGreater(document["seconds"], 0.0)
        self.assertIsNone(document["dataset"]["subset"])  # max_examples covers the split
        per_class = document["per_class"]
        self.assertEqual(per_class["class_names"], [f"class_{k}" for k in range(4)])
        self.assertEqual(sum(per_class["num_examples"]), 64)
        self.assertLen(per_class["attacks"], 1)
        self.assertEqual(per_class["attacks"][0]["iterations"], 5)

    def test_apgd_runs_as_the_attack_and_is_named_in_the_results(self):
        run, document = self.evaluate("--epsilons=0.03", "--iterations=5,10", "--max_examples=16",
                                      "--attack=apgd-ce")
        self.assertEqual({p["attack"] for p in document["results"]}, {"apgd-ce"})
        self.assertEqual({p["step_size"] for p in document["results"]}, {None})
        self.assertEqual(document["robust_accuracy"][0]["attacks"][0]["loss"], "cross_entropy")
        self.assertIn("L-inf APGD-CE, cross_entropy objective, adaptive step size", run.stdout)
        run = run_eval_main(f"--model_dir={self.model_dir}", "--epsilons=0.03",
                            "--iterations=10", "--max_examples=16", "--attack=square")
        self.assertEqual(run.returncode, 0, run.stderr)
        with open(self.results_file) as f:
            described = json.load(f)["robust_accuracy"][0]["attacks"][0]
        self.assertEqual((described["attack"], described["queries"]), ("square", 10))

    def test_autoattack_standard_reports_each_attack_and_its_flags(self):
        run, document = self.evaluate("--epsilons=0.03,0.1", "--max_examples=8",
                                      "--attack=autoattack", "--version=standard",
                                      "--autoattack_iterations=3", "--square_queries=5")
        runs = document["autoattack"]
        self.assertEqual([r["epsilon"] for r in runs], [0.03, 0.1])
        for entry, run_ in zip(document["robust_accuracy"], runs):
            self.assertEqual(list(run_["robust_after"]), ["apgd-ce", "apgd-t", "fab-t", "square"])
            self.assertEqual(entry["robust_accuracy"], run_["robust_accuracy"])
            self.assertEqual(entry["robust_accuracy"], run_["robust_after"]["square"])
            self.assertEqual([a["attack"] for a in entry["attacks"]],
                             ["apgd-ce", "apgd-t", "fab-t", "square"])
            self.assertIsInstance(run_["flags"], list)
            robust = entry["robust_examples"]  # one '0'/'1' per image, for paired tests
            self.assertLen(robust, 8)
            self.assertEqual(robust.count("1"), entry["robust_correct"])
            self.assertEqual(run_["robust_examples"], robust)
        self.assertLen(document["clean_examples"], 8)
        self.assertEqual(document["clean_examples"].count("1"), document["clean_correct"])
        self.assertIn("AutoAttack (standard, epsilon 0.03)", run.stdout)

    def test_autoattack_flags_a_transfer_attack_that_beats_it(self):
        folder = temporary_folder(self)
        protocol_file = os.path.join(folder, "protocol_results.json")
        series = [{"target": "run", "threat_model": "gray_box", "epsilon": epsilon,
                   "num_examples": 64, "robust_correct": correct, "source": "s",
                   "setting": "paper"} for epsilon, correct in ((0.0001, 0), (0.03, 64))]
        with open(protocol_file, "w") as f:
            json.dump({"series": series,
                       "models": [{"name": "run", "role": "target", "path": self.model_dir}]}, f)
        run, document = self.evaluate("--epsilons=0.0001,0.03", "--max_examples=64",
                                      "--attack=autoattack", "--version=custom",
                                      "--autoattack_attacks=apgd-ce", "--autoattack_iterations=3",
                                      f"--transfer_results={protocol_file}")
        tiny, larger = document["autoattack"]
        self.assertGreater(tiny["robust_correct"], 0)  # 0.0001 moves no prediction
        self.assertIn("transfer_beats_white_box", [flag["name"] for flag in tiny["flags"]])
        self.assertNotIn("transfer_beats_white_box", [flag["name"] for flag in larger["flags"]])
        self.assertIn("WARNING: gradient masking flag 'transfer_beats_white_box'", run.stdout)

    def test_transfer_results_are_checked_before_any_work(self):
        missing = os.path.join(temporary_folder(self), "missing.json")
        run = run_eval_main(f"--model_dir={self.model_dir}", "--attack=autoattack",
                            f"--transfer_results={missing}")
        self.assertNotEqual(run.returncode, 0)
        self.assertIn("--transfer_results: no file at", run.stderr)
        run = run_eval_main(f"--model_dir={self.model_dir}", f"--transfer_results={missing}")
        self.assertIn("use `attack=autoattack`", run.stderr)

    def test_fab_and_fab_t_run_as_the_attack_and_record_their_settings(self):
        for attack, name in (("fab-t", "FAB-T"), ("fab", "FAB")):
            run = run_eval_main(f"--model_dir={self.model_dir}", "--epsilons=0.03",
                                "--iterations=3", "--max_examples=8", f"--attack={attack}",
                                "--restarts=2")
            self.assertEqual(run.returncode, 0, run.stderr)
            with open(self.results_file) as f:
                document = json.load(f)
            self.assertEqual([(p["attack"], p["iterations"], p["restarts"])
                              for p in document["results"]], [(attack, 3, 2)])
            described = document["robust_accuracy"][0]["attacks"][0]
            self.assertEqual((described["attack"], described["epsilon"], described["iterations"],
                              described["restarts"]), (attack, 0.03, 3, 2))
            self.assertEqual(described.get("target_classes"), 9 if attack == "fab-t" else None)
            self.assertEqual(document["results"][0]["attack_settings"], described)
            self.assertIn(f"L-inf {name}, minimal perturbation counted within epsilon",
                          run.stdout)

    def test_autoattack_plus_runs_its_six_attacks_in_order(self):
        plus = ["apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"]
        run, document = self.evaluate("--epsilons=0.03", "--max_examples=8", "--attack=autoattack",
                                      "--version=plus", "--autoattack_iterations=2",
                                      "--square_queries=5")
        (run_,) = document["autoattack"]
        self.assertCountEqual(run_["robust_after"], plus)  # the JSON sorts keys
        after = [run_["robust_after"][name] for name in plus]
        self.assertEqual(after, sorted(after, reverse=True))
        self.assertEqual(run_["described"]["version"], "plus")
        self.assertEqual(run_["described"]["restarts"], dict(zip(plus, [5, 5, 5, 1, 1, 1])))
        entry = document["robust_accuracy"][0]
        self.assertEqual(entry["robust_accuracy"], run_["robust_after"]["fab-t"])
        self.assertEqual([a["attack"] for a in entry["attacks"]], plus)
        self.assertEqual(entry["autoattack"]["version"], "plus")
        self.assertIn("AutoAttack (plus, epsilon 0.03)", run.stdout)

    def test_autoattack_rand_runs_the_attacks_it_is_given(self):
        run, document = self.evaluate("--epsilons=0.03", "--max_examples=8", "--attack=autoattack",
                                      "--version=rand", "--autoattack_attacks=apgd-ce",
                                      "--autoattack_iterations=2", "--eot_samples=2")
        (run_,) = document["autoattack"]
        self.assertEqual(list(run_["robust_after"]), ["apgd-ce"])
        self.assertEqual((run_["described"]["version"], run_["described"]["eot_samples"]),
                         ("rand", 2))
        self.assertEqual([c["attack"] for c in run_["described"]["components"]], ["apgd-ce"])
        self.assertLen(run_["robust_examples"], 8)

    def test_max_examples_takes_a_class_balanced_subset(self):
        run, document = self.evaluate("--epsilons=0.03", "--iterations=1", "--max_examples=8")
        self.assertEqual(document["dataset"]["num_examples"], 8)
        subset = document["dataset"]["subset"]
        self.assertEqual(subset["per_class"], {f"class_{k}": 2 for k in range(4)})
        self.assertIn("class-balanced", subset["rule"])
        self.assertEqual(document["per_class"]["num_examples"], [2, 2, 2, 2])

    def test_defaults_add_the_training_epsilon_and_mark_weak_cells(self):
        # Default epsilons: the paper's 0.25 and 0.5 and the training epsilon 8/255. With
        # step 1/256, 10 steps reach 10/256 >= 8/255 but not 0.25 or 0.5.
        run, document = self.evaluate("--iterations=10", "--max_examples=4")
        reach = {point["epsilon"]: point["can_reach_boundary"] for point in document["results"]}
        self.assertEqual(reach, {8 / 255: True, 0.25: False, 0.5: False})
        self.assertIn("(epsilon 0.25, 10 steps), (epsilon 0.5, 10 steps)", run.stderr)
        self.assertIn("0.0000*", run.stdout)
        self.assertIn("cannot reach the epsilon boundary", run.stdout)

    def test_evaluates_the_saved_model_like_the_keras_model(self):
        saved_model = shutil.copytree(os.path.join(self.model_dir, "saved_model"),
                                      os.path.join(temporary_folder(self), "exported"))
        results = os.path.join(temporary_folder(self), "results.json")
        common = ["--epsilons=0.03", "--iterations=3", "--max_examples=16",
                  "--norandom_start"]
        served = run_eval_main(f"--model_dir={saved_model}", "--dataset=synthetic",
                               "--split=test",
                               f"--results_file={results}", *common)
        self.assertEqual(served.returncode, 0, served.stderr)
        with open(results) as f:
            document = json.load(f)
        self.assertEqual(document["model"]["format"], "saved_model")
        self.assertNotIn("defense", document["model"])
        self.assertEqual(document["dataset"]["num_examples"], 16)
        self.assertEqual(document["results"][0]["random_start"], False)

    def test_a_randomized_model_is_evaluated_with_eot_over_repeated_draws(self):
        model_dir = os.path.join(temporary_folder(self), "rat")
        make_model_dir(model_dir, defense="rat")
        run = run_eval_main(f"--model_dir={model_dir}", "--epsilons=0.03", "--iterations=2",
                            "--max_examples=16", "--eot_samples=3", "--random_draws=2")
        self.assertEqual(run.returncode, 0, run.stderr)
        with open(os.path.join(model_dir, "eval_results.json")) as f:
            document = json.load(f)
        randomized = document["randomized"]
        self.assertIn("noise", randomized["randomization"])
        self.assertEqual((randomized["eot_samples"], randomized["random_draws"]), (3, 2))
        self.assertLen(randomized["clean_accuracy"]["values"], 2)
        self.assertAllClose(document["clean_accuracy"],
                            sum(randomized["clean_accuracy"]["values"]) / 2)
        self.assertEqual(document["settings"]["eot_samples"], 3)
        self.assertIn("expectation over 3 draws", run.stdout)
        self.assertIn("std", run.stdout)
        # The SavedModel says it is randomized, so evaluating it picks EoT by default.
        saved = run_eval_main(f"--model_dir={model_dir}/saved_model", "--dataset=synthetic",
                              "--epsilons=0.03", "--iterations=1", "--max_examples=8",
                              "--random_draws=1",
                              f"--results_file={os.path.join(model_dir, 'served.json')}")
        self.assertEqual(saved.returncode, 0, saved.stderr)
        with open(os.path.join(model_dir, "served.json")) as f:
            self.assertEqual(json.load(f)["randomized"]["eot_samples"], 30)

    def test_transfer_from_a_source_is_gray_or_black_box(self):
        folder = temporary_folder(self)
        target = os.path.join(folder, "target")
        make_model_dir(target)
        for name, width, expected in (("same_architecture", 8, "gray_box"),
                                      ("wider", 16, "black_box")):
            source = os.path.join(folder, name)
            make_model_dir(source, width=width, seed=5)
            run = run_eval_main(f"--model_dir={target}", f"--transfer_from={source}",
                                "--epsilons=0.1", "--iterations=2,4", "--step_size=0.05",
                                "--max_examples=16")
            self.assertEqual(run.returncode, 0, run.stderr)
            path = os.path.join(target, f"eval_results_{expected}_from_{name}.json")
            with open(path) as f:
                document = json.load(f)
            self.assertEqual(document["threat_model"], expected)
            self.assertEqual({p["threat_model"] for p in document["results"]}, {expected})
            self.assertEqual(document["source_model"]["path"], source)
            self.assertEqual(document["source_model"]["width"], width)
            self.assertEqual([p["iterations"] for p in document["results"]], [2, 4])
            self.assertEqual(document["source_model"]["white_box"][0]["threat_model"],
                             "white_box")
            self.assertIn(f"Attack crafted on: {source}", run.stdout)
        with open(os.path.join(target, "model_card.json")) as f:
            threat_models = {f["threat_model"] for f in json.load(f)["robustness"]}
        self.assertContainsSubset({"gray_box", "black_box"}, threat_models)
        refused = run_eval_main(f"--model_dir={target}", f"--transfer_from={source}",
                                "--restarts=2")
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("`restarts` must be 1 with `transfer_from`", refused.stderr)

    @parameterized.named_parameters(
        ("epsilon_above_one", ["--epsilons=1.5"], r"`epsilons` must be in \[0, 1\]"),
        ("zero_iterations", ["--iterations=0"], "`iterations` must be counts >= 1"),
        ("results_file_that_cannot_be_written",  # refused before the attack, not after
         ["--results_file=/proc/nowhere/r.json", "--attack=autoattack"],
         r"eval_main.py: error: `results_file` cannot be written: '/proc' does not take new "
         r"files \(.+\)\. Received: results_file='/proc/nowhere/r.json'\n"))
    def test_bad_flags_exit_nonzero_and_write_nothing(self, args, message):
        run = run_eval_main(f"--model_dir={self.model_dir}", *args)
        self.assertNotEqual(run.returncode, 0)
        self.assertRegex(run.stderr + run.stdout, message)
        self.assertNotIn("Traceback", run.stderr)
        self.assertNotIn("Evaluating", run.stdout)  # no work started
        self.assertFalse(os.path.exists(self.results_file))

    def test_errors_come_alone_without_the_flag_listing(self):
        run = run_eval_main(f"--model_dir={self.model_dir}", "--dataset=flowers17",
                            "--data_dir=/no/such/folder")
        self.assertNotEqual(run.returncode, 0)
        self.assertIn("eval_main.py: error:", run.stderr)
        self.assertIn("/no/such/folder", run.stderr)
        self.assertNotIn("Traceback", run.stderr)
        self.assertNotIn("Random restarts per example.", run.stderr + run.stdout)

    def test_missing_model_dir_exits_nonzero(self):
        run = run_eval_main("--epsilons=0.03")
        self.assertNotEqual(run.returncode, 0)
        self.assertIn("`model_dir` must be set", run.stderr)

    def test_paper_protocol_runs_from_the_command_line(self):
        output = os.path.join(temporary_folder(self), "protocol")
        run = run_eval_main("--protocol=paper", f"--targets={self.model_dir}",
                            f"--output_dir={output}", "--iterations=2", "--epsilons=0.5",
                            "--strong_iterations=2", "--max_examples=8",
                            "--figure_images=0", "--landscape_grid=0")
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("Report:", run.stdout)
        self.assertIn("cell", run.stdout)  # the progress bar counts cells
        with open(os.path.join(output, "protocol_results.json")) as f:
            document = json.load(f)
        self.assertEqual([s["record_at"] for s in document["settings"]], [[2], [2]])
        self.assertEqual(document["data"]["num_examples"], 8)
        with open(os.path.join(output, "report.md")) as f:
            self.assertIn("## Sanity checks", f.read())
        refused = run_eval_main("--protocol=paper", f"--targets={self.model_dir}")
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("`output_dir` must be set", refused.stderr)

    def test_model_dir_without_model_exits_nonzero(self):
        empty = temporary_folder(self)
        run = run_eval_main(f"--model_dir={empty}")
        self.assertNotEqual(run.returncode, 0)
        self.assertIn("No model at", run.stderr)
        self.assertEqual(os.listdir(empty), [])


if __name__ == "__main__":
    tf.test.main()
