"""Tests of tf_atalp.evaluation.transfer_warning: the flag "transfer beats white-box"."""

import json
import os

import tensorflow as tf

from tests.evaluation_fixtures import temporary_folder
from tf_atalp.evaluation.transfer_warning import (
    FLAG, flag_transfer_beats_white_box, read_protocol_results, target_name)


def protocol(target_path, transfer_correct, epsilon=0.25, num_examples=100):
    """A protocol document with one target, a white-box and a gray-box series at `epsilon`."""
    series = [{"target": "t", "threat_model": "white_box", "epsilon": epsilon,
               "num_examples": num_examples, "robust_correct": 0, "source": None,
               "setting": "paper"},
              {"target": "t", "threat_model": "gray_box", "epsilon": epsilon,
               "num_examples": num_examples, "robust_correct": transfer_correct,
               "source": "s", "setting": "paper"}]
    models = [{"name": "t", "role": "target", "path": target_path},
              {"name": "s", "role": "gray_box", "path": "/elsewhere"}]
    return {"series": series, "models": models}


def runs(robust_correct, epsilon=0.25):
    return [{"epsilon": epsilon, "robust_correct": robust_correct, "flags": []}]


class TransferWarningTest(tf.test.TestCase):

    def test_flag_when_a_transfer_series_leaves_fewer_robust(self):
        found = runs(30)
        notes = flag_transfer_beats_white_box(found, protocol("/m/t", 20), "/m/t", 100)
        self.assertEqual(notes, [])
        self.assertEqual([f["name"] for f in found[0]["flags"]], [FLAG])
        self.assertIn("20/100", found[0]["flags"][0]["message"])
        self.assertIn("gray-box", found[0]["flags"][0]["message"])

    def test_silent_when_white_box_is_at_least_as_strong(self):
        for transfer_correct in (30, 45):
            found = runs(30)
            flag_transfer_beats_white_box(found, protocol("/m/t", transfer_correct), "/m/t", 100)
            self.assertEqual(found[0]["flags"], [])

    def test_white_box_series_of_the_protocol_are_not_transfer(self):
        document = protocol("/m/t", 50)  # its white-box series has 0 robust: not compared
        found = runs(30)
        flag_transfer_beats_white_box(found, document, "/m/t", 100)
        self.assertEqual(found[0]["flags"], [])

    def test_other_sizes_epsilons_and_models_are_not_compared(self):
        found = runs(30)
        notes = flag_transfer_beats_white_box(found, protocol("/m/t", 20, num_examples=50),
                                              "/m/t", 100)
        self.assertEqual(found[0]["flags"], [])
        self.assertIn("not compared", notes[0])
        found = runs(30, epsilon=0.5)
        flag_transfer_beats_white_box(found, protocol("/m/t", 20), "/m/t", 100)
        self.assertEqual(found[0]["flags"], [])
        notes = flag_transfer_beats_white_box(runs(30), protocol("/m/t", 20), "/m/other", 100)
        self.assertIn("not a target", notes[0])
        self.assertIsNone(target_name(protocol("/m/t", 20), "/m/s"))

    def test_bad_files_are_refused(self):
        folder = temporary_folder(self)
        with self.assertRaisesRegex(ValueError, "no file"):
            read_protocol_results(os.path.join(folder, "missing.json"))
        corrupt = os.path.join(folder, "corrupt.json")
        with open(corrupt, "w") as handle:
            handle.write("{not json")
        with self.assertRaisesRegex(ValueError, "not readable JSON"):
            read_protocol_results(corrupt)
        other = os.path.join(folder, "other.json")
        with open(other, "w") as handle:
            json.dump({"results": []}, handle)
        with self.assertRaisesRegex(ValueError, "protocol_results.json"):
            read_protocol_results(other)
