"""The study report's machine lines (one machine, several, cells that predate the record) and its
catastrophic-overfitting lines."""

import unittest

from tf_atalp.study import report


class MachineLinesTest(unittest.TestCase):

    def test_one_machine_is_named_once(self):
        results = {"machine": "B", "cells": [{"cell": "train a", "seconds": 1.0, "machine": "A"},
                                             {"cell": "train b", "seconds": 2.0, "machine": "A"}]}
        self.assertEqual(report._machine_lines(results),
                         ["Machine of every cell: A. Report written on B."])

    def test_several_machines_are_counted_and_old_cells_say_so(self):
        cells = [{"cell": "train a", "seconds": 1.0, "machine": None},
                 {"cell": "train b", "seconds": 2.0, "machine": "A"},
                 {"cell": "train c", "seconds": 3.0, "machine": "A"}]
        lines = report._machine_lines({"machine": "A", "cells": cells})
        self.assertEqual(report._machines(cells), [report.NOT_RECORDED, "A"])
        self.assertIn(f"- machine 1: {report.NOT_RECORDED} (1 cells)", lines)
        self.assertIn("- machine 2: A (2 cells)", lines)
        self.assertEqual(lines[-1], "Report written on A.")


RULE = "a drop of more than 0.2"


def train_records(label, checks):
    """Stored training cells of `label`, seed i with `checks[i]` as its check record."""
    return {f"{label}_seed{seed}": {"result": {} if check is False else
                                    {"catastrophic_overfitting": check}}
            for seed, check in enumerate(checks)}


def check(*epochs):
    return {"detected": bool(epochs), "epochs": list(epochs), "rule": RULE}


class OverfittingLinesTest(unittest.TestCase):

    def test_an_entry_without_the_check_has_no_record_and_no_line(self):
        # None: the training ran without the check; False: a cell that predates the record.
        train = train_records("pat", [None, False])
        self.assertIsNone(report._overfitting(train, "pat", [0, 1]))
        self.assertEqual(report._overfitting_lines(
            {"rows": [{"entry": "pat", "catastrophic_overfitting": None}]}), [])

    def test_seeds_that_fired_are_named_with_their_epochs(self):
        train = train_records("fast_at", [check(), check(7, 12), None])
        record = report._overfitting(train, "fast_at", [0, 1, 2])
        self.assertEqual(record["rule"], RULE)
        self.assertEqual([(s["seed"], s["checked"], s["detected"], s["epochs"])
                          for s in record["seeds"]],
                         [(0, True, False, []), (1, True, True, [7, 12]), (2, False, False, [])])
        free = report._overfitting(train_records("free_at", [check(), check()]), "free_at", [0, 1])
        lines = report._overfitting_lines({"rows": [
            {"entry": "pat", "catastrophic_overfitting": None},
            {"entry": "fast_at", "catastrophic_overfitting": record},
            {"entry": "free_at", "catastrophic_overfitting": free}]})
        self.assertEqual(lines, [
            "", "Catastrophic overfitting, checked after every epoch by the trainings that "
            f"watch for it; the rule: {RULE}.", "",
            "- fast_at: **detected**: seed 1 after epoch 7, 12 (seed 2 not checked).",
            "- free_at: not detected in any seed checked."])


if __name__ == "__main__":
    unittest.main()
