"""Tests of tf_atalp.evaluation.text_table: a results document as text for the terminal."""

import tensorflow as tf

from tests.results_fixtures import document, two_draws
from tf_atalp.evaluation import format_table, results_document
from tf_atalp.evaluation.results import average_over_draws, randomized_section


class FormatTableTest(tf.test.TestCase):

    def test_table_rows_are_epsilons_and_columns_are_counts_then_worst_iterate(self):
        lines = format_table(document()).splitlines()
        self.assertIn("Clean accuracy: 0.7500 (15/20)", lines)
        self.assertIn("Data: synthetic test split, 20 examples", lines)
        self.assertIn("Model: /runs/a (keras, defense at_alp)", lines)
        header = lines.index("epsilon        10       20  worst-iterate")
        self.assertIn("white-box L-inf PGD", lines[header - 1])
        self.assertIn("step size 0.00390625", lines[header - 1])
        self.assertIn("2 restart(s)", lines[header - 1])
        # Starred: 10 and 20 steps of 1/256 cannot reach epsilon 0.25 or 0.5.
        self.assertEqual(lines[header + 1].split(), ["0.25", "0.4000*", "0.4500*", "0.3500"])
        self.assertEqual(lines[header + 2].split(), ["0.5", "0.1500*", "0.1000*", "0.0500"])

    def test_attacks_with_other_settings_get_their_own_table(self):
        doc = document()
        doc["results"][2]["step_size"] = doc["results"][3]["step_size"] = 0.01
        text = format_table(doc)
        self.assertEqual(text.count("worst-iterate"), 2)
        self.assertIn("step size 0.01,", text)

    def test_robust_accuracy_is_listed_per_epsilon(self):
        self.assertIn("epsilon 0.25: 0.3500 (7/20)", format_table(document()))

    def test_cells_that_cannot_reach_the_boundary_are_starred_and_explained(self):
        table = format_table(document())  # 20 steps of 1/256 cannot reach 0.25
        self.assertIn("0.4500*", table)
        self.assertIn("cannot reach the epsilon boundary", table)

    def test_a_randomized_model_says_what_it_averages(self):
        draws = two_draws()
        table = format_table(results_document(
            average_over_draws(draws), dataset={"name": "synthetic", "split": "test"},
            model={"path": "/runs/a", "format": "keras"}, command=["eval_main.py"],
            randomized=randomized_section(draws, "noise on every call", eot_samples=30)))
        self.assertIn("Randomized model (noise on every call)", table)
        self.assertIn("averages 30 draws (EoT)", table)
        self.assertIn("epsilon 0.25: 0.2500 (5/20), std 0.1000 over repetitions", table)


if __name__ == "__main__":
    tf.test.main()
