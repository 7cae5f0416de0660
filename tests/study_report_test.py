"""The study report's machine lines: one machine, several, and cells that predate the record."""

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


if __name__ == "__main__":
    unittest.main()
