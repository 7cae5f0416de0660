"""Every flagfile in configs/ parses into a valid, runnable configuration."""

import glob
import os
import tempfile

import tensorflow as tf
from absl import flags
from absl.testing import parameterized

from tests.real_data import shared_data_dir
from tf_atalp.training import flags as train_flags
from tf_atalp.training import run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Training flagfiles (study_*.flags configure study_main: tests/study_configs_test.py).
CONFIGS = sorted(p for p in glob.glob(os.path.join(ROOT, "configs", "*.flags"))
                 if not os.path.basename(p).startswith("study_"))
EXPECTED_CLASSES = {"flowers17": 17, "imagenet4": 4, "dogs_vs_cats": 2, "synthetic": 4}

train_flags.define_train_flags()


def parse(path, *extra):
    values = flags.FLAGS
    values.unparse_flags()
    values(["train_main", f"--flagfile={path}", *extra])
    return train_flags.run_config_from_flags(values)


class ConfigFilesTest(tf.test.TestCase, parameterized.TestCase):

    def test_the_expected_configs_exist(self):
        names = {os.path.basename(p) for p in CONFIGS}
        for dataset in ("flowers17", "imagenet4", "dogs_vs_cats"):
            self.assertContainsSubset({f"{dataset}.flags", f"{dataset}_cpu.flags"}, names)
        self.assertIn("quickstart.flags", names)

    @parameterized.parameters(*[os.path.basename(p) for p in CONFIGS])
    def test_config_prepares_on_the_local_data(self, name):
        config = parse(os.path.join(ROOT, "configs", name))
        dataset = config.data.dataset
        extra = [f"--model_dir={tempfile.mkdtemp()}/run"]
        if dataset != "synthetic":
            extra.append(f"--data_dir={shared_data_dir(dataset)}")
        prepared = run.prepare_run(parse(os.path.join(ROOT, "configs", name), *extra))
        self.assertEqual(prepared.config.model.num_classes, EXPECTED_CLASSES[dataset])
        self.assertGreater(prepared.steps_per_epoch, 0)
        if name.endswith("_cpu.flags"):
            self.assertEqual(prepared.config.model.image_size, 64)
        self.assertEqual(prepared.config.defense.name, "at_alp")

    @parameterized.parameters(*[os.path.basename(p) for p in CONFIGS])
    def test_config_lets_the_machine_choose_the_precision(self, name):
        # A forced bf16 runs about 8x slower on CPUs without bf16 units.
        self.assertEqual(parse(os.path.join(ROOT, "configs", name)).train.mixed_precision, "auto")

    def tearDown(self):
        flags.FLAGS.unparse_flags()
        super().tearDown()


if __name__ == "__main__":
    tf.test.main()
