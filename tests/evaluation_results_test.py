"""Tests of tf_atalp.evaluation.results: the JSON document and its atomic write."""

import datetime
import json
import os

import keras
import tensorflow as tf

import tf_atalp
from tests.evaluation_fixtures import temporary_folder
from tests.results_fixtures import document, evaluation, two_draws
from tf_atalp.attacks import Restarts
from tf_atalp.evaluation import results_document, write_results
from tf_atalp.evaluation.results import (
    average_over_draws, can_reach_boundary, randomized_section, weak_cells)


POINT_KEYS = {
    "threat_model", "attack", "norm", "epsilon", "step_size", "iterations", "run_iterations",
    "random_start", "restarts", "objective", "batchnorm_training", "accuracy", "correct",
    "worst_iterate_accuracy", "worst_iterate_correct", "num_examples", "can_reach_boundary",
    "attack_settings"}


class ResultsDocumentTest(tf.test.TestCase):

    def test_every_attack_point_names_how_it_was_measured(self):
        points = document()["results"]
        self.assertLen(points, 4)
        for point in points:
            self.assertEqual(set(point), POINT_KEYS)
            self.assertEqual((point["threat_model"], point["attack"], point["norm"]),
                             ("white_box", "pgd", "linf"))
            self.assertEqual((point["step_size"], point["restarts"], point["run_iterations"]),
                             (1 / 256, 2, 20))
            self.assertTrue(point["random_start"])
            self.assertEqual(point["objective"], "cross_entropy")
            self.assertEqual(point["num_examples"], 20)
            self.assertEqual(point["attack_settings"]["restarts"], 2)
        first = points[1]  # epsilon 0.25 after 20 steps
        self.assertEqual((first["epsilon"], first["iterations"]), (0.25, 20))
        self.assertEqual((first["correct"], first["accuracy"]), (9, 0.45))
        self.assertEqual((first["worst_iterate_correct"], first["worst_iterate_accuracy"]),
                         (7, 0.35))


    def test_robust_accuracy_is_the_worst_case_per_epsilon(self):
        robust = document()["robust_accuracy"]
        self.assertEqual([(r["epsilon"], r["robust_correct"]) for r in robust],
                         [(0.25, 7), (0.5, 1)])
        self.assertEqual(robust[0]["attacks"][0]["attack"], "pgd")

    def test_points_that_cannot_reach_the_boundary_are_marked(self):
        # Step 1/256: 10 and 20 steps move a pixel at most 10/256 and 20/256 < 0.25.
        for point in document()["results"]:
            self.assertFalse(point["can_reach_boundary"])
        self.assertTrue(can_reach_boundary(0.25, 1 / 256, 64))
        self.assertFalse(can_reach_boundary(0.25, 1 / 256, 63))
        self.assertEqual(weak_cells([8 / 256, 0.25], 1 / 256, [5, 10, 100]),
                         [(8 / 256, 5), (0.25, 5), (0.25, 10)])

    def test_per_class_accuracy_with_names_and_empty_classes(self):
        per_class = document(class_names=["cat", "dog"])["per_class"]
        self.assertEqual(per_class["class_names"], ["cat", "dog"])
        self.assertEqual(per_class["clean_accuracy"], [0.75, None])
        self.assertEqual(per_class["attacks"][0],
                         {"epsilon": 0.25, "iterations": 20, "accuracy": [0.45, None],
                          "worst_iterate_accuracy": [0.35, None]})
        with self.assertRaisesRegex(ValueError, "`class_names` must have 2 entries"):
            document(class_names=["cat"])

    def test_document_records_data_model_command_and_versions(self):
        doc = document(settings={"seed": 3})
        self.assertEqual(doc["dataset"], {"name": "synthetic", "split": "test",
                                          "num_examples": 20})
        self.assertEqual(doc["model"]["path"], "/runs/a")
        self.assertEqual((doc["clean_accuracy"], doc["clean_correct"]), (0.75, 15))
        self.assertEqual(doc["command"], ["eval_main.py", "--model_dir=/runs/a"])
        self.assertEqual(doc["settings"], {"seed": 3})
        self.assertEqual(doc["tf_atalp_version"], tf_atalp.__version__)
        self.assertEqual(doc["tensorflow_version"], tf.__version__)
        self.assertEqual(doc["keras_version"], keras.__version__)
        stamp = datetime.datetime.fromisoformat(doc["timestamp_utc"])
        self.assertEqual(stamp.utcoffset(), datetime.timedelta(0))
        self.assertIn("worst_iterate_accuracy", doc["definitions"])
        self.assertEqual(json.loads(json.dumps(doc)), doc)


class RandomDrawsTest(tf.test.TestCase):

    def test_average_is_the_mean_of_every_count_and_accuracy(self):
        averaged = average_over_draws(two_draws())
        self.assertEqual(averaged["clean_correct"], 14)
        self.assertAllClose(averaged["clean_accuracy"], 14 / 20)
        self.assertEqual(averaged["attacks"][0]["correct"], [7, 7])
        self.assertAllClose(averaged["attacks"][0]["accuracy"], [7 / 20, 7 / 20])
        self.assertEqual(averaged["attacks"][1]["correct"], [3, 2])  # equal in both draws
        self.assertAllClose(averaged["worst_case"][0]["robust_accuracy"], 5 / 20)
        self.assertEqual(averaged["num_examples"], 20)
        self.assertIs(average_over_draws([evaluation()])["attacks"][0]["attack"].__class__,
                      Restarts)

    def test_section_reports_mean_spread_and_values(self):
        section = randomized_section(two_draws(), "noise", eot_samples=30)
        self.assertEqual((section["eot_samples"], section["random_draws"]), (30, 2))
        self.assertAllClose(section["clean_accuracy"]["mean"], 0.7)
        self.assertAllClose(section["clean_accuracy"]["std"], 0.05)  # population std of .75, .65
        robust = section["robust_accuracy"][0]
        self.assertEqual(robust["epsilon"], 0.25)
        self.assertAllClose(robust["values"], [0.35, 0.15])
        self.assertAllClose(robust["std"], 0.1)

    def test_document_of_a_randomized_model(self):
        draws = two_draws()
        doc = results_document(
            average_over_draws(draws), dataset={"name": "synthetic", "split": "test"},
            model={"path": "/runs/a", "format": "keras"}, command=["eval_main.py"],
            randomized=randomized_section(draws, "noise on every call", eot_samples=30))
        self.assertEqual(doc["randomized"]["randomization"], "noise on every call")
        self.assertIn("randomized", doc["definitions"])
        self.assertIsNone(document()["randomized"])

    def test_draws_of_different_sizes_are_refused(self):
        with self.assertRaisesRegex(ValueError, "same examples"):
            average_over_draws([evaluation(20), evaluation(10)])


class WriteResultsTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.folder = temporary_folder(self)
        self.path = os.path.join(self.folder, "eval_results.json")

    def test_write_leaves_only_the_file(self):
        write_results(self.path, document())
        self.assertEqual(os.listdir(self.folder), ["eval_results.json"])
        with open(self.path) as f:
            self.assertEqual(json.load(f)["results"], document()["results"])

    def test_an_existing_file_is_replaced_whole(self):
        long_doc = {**document(), "padding": "x" * 10000}
        write_results(self.path, long_doc)
        short_doc = {"clean_accuracy": 0.5}
        write_results(self.path, short_doc)
        with open(self.path) as f:
            self.assertEqual(json.load(f), short_doc)
        self.assertEqual(os.listdir(self.folder), ["eval_results.json"])

    def test_a_failed_write_keeps_the_old_file_and_no_temp_file(self):
        write_results(self.path, document())
        with self.assertRaises(TypeError):
            write_results(self.path, {"not_json": object()})
        with open(self.path) as f:
            self.assertEqual(json.load(f)["clean_correct"], 15)
        self.assertEqual(os.listdir(self.folder), ["eval_results.json"])


if __name__ == "__main__":
    tf.test.main()
