"""Tests of tf_atalp.model_card: the card eval_main writes, merged over evaluations."""

import json
import os
import subprocess
import sys

import tensorflow as tf

from tests.evaluation_fixtures import make_model_dir, temporary_folder
from tf_atalp import model_card
from tf_atalp.evaluation import EvalConfig, prepare_evaluation, run_evaluation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def evaluate(model_dir, **kwargs):
    settings = dict(iterations=(2,), step_size=0.02, batch_size=32, max_examples=32)
    settings.update(kwargs)
    return run_evaluation(prepare_evaluation(EvalConfig(model_dir=model_dir, **settings)))


class ModelCardTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.model_dir = os.path.join(temporary_folder(cls), "run")
        make_model_dir(cls.model_dir)
        evaluate(cls.model_dir, epsilons=(0.03,))
        evaluate(cls.model_dir, epsilons=(0.03, 0.1), restarts=2)
        with open(os.path.join(cls.model_dir, "model_card.json")) as f:
            cls.card = json.load(f)

    def test_the_card_describes_the_model(self):
        card = self.card
        self.assertEqual(card["defense"]["name"], "at_alp")
        self.assertIn("beta", card["defense"])
        self.assertEqual((card["training_attack"]["epsilon"], card["training_attack"]["norm"]),
                         (8 / 255, "linf"))
        self.assertEqual(card["data"]["dataset"], "synthetic")
        self.assertEqual(card["clean_accuracy"]["num_examples"], 32)

    def test_every_figure_names_how_it_was_measured(self):
        for figure in self.card["robustness"]:
            for key in ("threat_model", "attack", "epsilon", "iterations", "restarts",
                        "num_examples", "date_utc", "accuracy"):
                self.assertIsNotNone(figure.get(key), (key, figure))
            self.assertEqual(figure["threat_model"], "white_box")

    def test_figures_of_both_evaluations_are_kept(self):
        points = {(f["kind"], f["epsilon"], f["restarts"]) for f in self.card["robustness"]}
        self.assertEqual(points, {("attack_point", 0.03, 1), ("worst_case", 0.03, 1),
                                  ("attack_point", 0.03, 2), ("worst_case", 0.03, 2),
                                  ("attack_point", 0.1, 2), ("worst_case", 0.1, 2)})

    def test_measuring_again_replaces_the_figure(self):
        model_dir = os.path.join(temporary_folder(self), "run")
        make_model_dir(model_dir)
        evaluate(model_dir, epsilons=(0.05,))
        evaluate(model_dir, epsilons=(0.05,))
        with open(os.path.join(model_dir, "model_card.json")) as f:
            self.assertLen(json.load(f)["robustness"], 2)  # one point, one worst case

    def test_the_saved_model_carries_the_card(self):
        with open(os.path.join(self.model_dir, "saved_model", "assets", "model_card.json")) as f:
            self.assertEqual(json.load(f), self.card)

    def test_a_figure_without_a_threat_model_is_refused(self):
        document = {"dataset": {"name": "x", "split": "test"}, "results": [{"epsilon": 0.1}]}
        with self.assertRaisesRegex(ValueError, "needs its threat model"):
            model_card.update_model_card(self.model_dir, {**document, "clean_accuracy": 1.0})

    def test_printed_as_a_table(self):
        result = subprocess.run([sys.executable, "-m", "tf_atalp.model_card", self.model_dir],
                                cwd=ROOT, capture_output=True, text=True, timeout=300,
                                env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        self.assertIn("defense   at_alp", result.stdout)
        self.assertIn("white_box", result.stdout)
        self.assertEqual(len([line for line in result.stdout.splitlines()
                              if line.startswith("white_box")]), 6)
        missing = subprocess.run([sys.executable, "-m", "tf_atalp.model_card",
                                  temporary_folder(self)], cwd=ROOT, capture_output=True,
                                 text=True, timeout=300)
        self.assertEqual(missing.returncode, 2)
        self.assertIn("run eval_main.py", missing.stderr)


if __name__ == "__main__":
    tf.test.main()
