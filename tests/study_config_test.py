"""StudyConfig: the order in which a study's entries are trained and evaluated."""

import unittest

from tf_atalp.study.config import Entry, StudyConfig


def config(**overrides):
    values = dict(name="s", study_dir="/tmp/s", train_flags=(),
                  entries=tuple(Entry(label) for label in ("none", "pat", "trades", "at_alp")),
                  seeds=(0, 1))
    return StudyConfig(**{**values, **overrides})


def labels(entries):
    return [entry.label for entry in entries]


class RunOrderTest(unittest.TestCase):

    def test_the_reference_runs_first_then_the_entries_in_order(self):
        self.assertEqual(labels(config().run_order), ["at_alp", "none", "pat", "trades"])
        self.assertEqual(labels(config(reference="pat").run_order),
                         ["pat", "none", "trades", "at_alp"])

    def test_run_first_comes_before_the_reference(self):
        self.assertEqual(labels(config(run_first=("trades", "pat")).run_order),
                         ["trades", "pat", "at_alp", "none"])
        self.assertEqual(labels(config(run_first=("pat", "at_alp")).run_order),
                         ["pat", "at_alp", "none", "trades"])

    def test_tables_keep_the_entries_order(self):
        self.assertEqual(labels(config(run_first=("trades",)).entries),
                         ["none", "pat", "trades", "at_alp"])

    def test_run_first_must_name_distinct_entries(self):
        with self.assertRaisesRegex(ValueError, "`run_first` must name distinct entries"):
            config(run_first=("mart",))
        with self.assertRaisesRegex(ValueError, "`run_first` must name distinct entries"):
            config(run_first=("pat", "pat"))


if __name__ == "__main__":
    unittest.main()
