"""Every study flagfile in configs/ parses and prepares (every training run checked) on the local data."""

import glob
import os

import tensorflow as tf
from absl import flags
from absl.testing import parameterized

from tests.real_data import shared_data_dir
from tf_atalp.study import flags as study_flags
from tf_atalp.study.runner import prepare_study

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STUDIES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "configs",
                                                                       "study_*.flags")))
PAPER_ROWS = ("none", "igr", "pat", "rat", "randomization", "alp", "fd", "adp", "at", "at_alp")


def parse(name):
    values = flags.FlagValues()
    study_flags.define_study_flags(values)
    values(["study_main", f"--flagfile={os.path.join(ROOT, 'configs', name)}"])
    return study_flags.study_config_from_flags(values)


class StudyConfigsTest(tf.test.TestCase, parameterized.TestCase):

    def test_a_study_per_paper_dataset(self):
        for dataset in ("flowers17", "imagenet4", "dogs_vs_cats"):
            self.assertIn(f"study_{dataset}.flags", STUDIES)

    @parameterized.parameters(*STUDIES)
    def test_study_prepares_on_the_local_data(self, name):
        config = parse(name)
        dataset = name[len("study_"):-len(".flags")]
        if dataset in ("flowers17", "imagenet4", "dogs_vs_cats"):
            shared_data_dir(dataset)
            self.assertEqual(tuple(e.label for e in config.entries), PAPER_ROWS)
            self.assertGreaterEqual(len(config.seeds), 2)
        cwd = os.getcwd()
        os.chdir(ROOT)  # flagfiles name paths from the project root, as study_main runs
        try:
            study = prepare_study(config)
        finally:
            os.chdir(cwd)
        self.assertEqual(len(study.targets), len(config.entries) * len(config.seeds))
        self.assertEqual(study.config.reference, "at_alp")


if __name__ == "__main__":
    tf.test.main()
