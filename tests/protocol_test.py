"""Tests of tf_atalp.protocol: the paper protocol end to end on tiny model_dirs, resume, inputs."""

import csv
import json
import os
from unittest import mock

import numpy as np
import tensorflow as tf

from tests.evaluation_fixtures import conv_data, conv_model, dataset_of, temporary_folder
from tests.protocol_fixtures import protocol_workspace, write_masks
from tf_atalp.attacks import Restarts
from tf_atalp.evaluation import evaluate_robustness
from tf_atalp.evaluation.loading import load_model_for_eval
from tf_atalp.evaluation.iterate_cache import IterateCache
from tf_atalp.protocol import (
    ProtocolConfig, paper_setting, prepare_protocol, run_protocol, strong_setting)
from tf_atalp.protocol import cell_runs
from tf_atalp.protocol.cells import CELLS_DIR
from tf_atalp.protocol.tables import SAME_DEFENSE_COLUMN

EPSILONS = (0.03125, 0.5)
SETTINGS = (paper_setting(record_at=(2, 4)), strong_setting(iterations=4))


def protocol_config(dirs, output_dir, **overrides):
    options = dict(targets=(dirs["none"], dirs["at_alp"]), output_dir=output_dir,
                   gray_box_sources=(dirs["gray"],), black_box_sources=(dirs["black"],),
                   epsilons=EPSILONS, settings=SETTINGS, dataset="folder",
                   data_dir=dirs["images"], figure_images=2, landscape_grid=3, batch_size=4)
    options.update(overrides)
    return ProtocolConfig(**options)


class PaperProtocolTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        root = temporary_folder(cls)
        cls.dirs = protocol_workspace(root)
        cls.masks = os.path.join(root, "masks")
        write_masks(cls.dirs["images"], cls.masks)
        cls.output = os.path.join(root, "protocol")
        cls.protocol = prepare_protocol(protocol_config(cls.dirs, cls.output,
                                                        masks_dir=cls.masks))
        cls.document = run_protocol(cls.protocol, command=["eval_main.py", "--protocol=paper"])

    def test_writes_report_tables_figures_and_cells(self):
        out = self.output
        for name in ("report.md", "protocol_results.json", "table1.csv", "sweep.csv",
                     "figure3_paper.png", "figure3_strong.png", "figure6_loss_landscape.png"):
            self.assertGreater(os.path.getsize(os.path.join(out, name)), 100, name)
        self.assertLen(self.document["figures"]["figure4"], 2)
        for png in self.document["figures"]["figure4"]:
            self.assertGreater(os.path.getsize(os.path.join(out, png)), 1000)
        self.assertNotEmpty(os.listdir(os.path.join(out, "tensorboard")))
        # 2 settings x 2 targets white-box + 2 FGSM + 2 settings x 2 sources transfer.
        self.assertLen(os.listdir(os.path.join(out, CELLS_DIR)), 10)
        report = open(os.path.join(out, "report.md")).read()
        for text in ("Table 1", "### paper setting", "### strong setting", "Figure 3",
                     "Figure 4", "Figure 6", "Table 2", "Sanity checks", "train.flags",
                     "--defense=at_alp"):
            self.assertIn(text, report)

    def test_table1_has_a_cell_per_setting_target_and_column(self):
        with open(os.path.join(self.output, "table1.csv")) as f:
            rows = list(csv.DictReader(f))
        # Columns: gray-box, black-box and white-box at each of the 2 epsilons.
        self.assertLen(rows, 2 * 2 * 6)
        self.assertEqual({r["column"] for r in rows},
                         {f"{tm} {e:g}" for tm in ("gray_box", "black_box", "white_box")
                          for e in EPSILONS})
        gray = [r for r in rows if r["column"].startswith("gray_box")]
        self.assertEqual({r["source"] for r in gray}, {"gray_source"})
        for row in rows:
            self.assertBetween(float(row["robust_accuracy"]), 0.0, float(row["clean_accuracy"]))

    def test_white_box_numbers_equal_a_direct_evaluation(self):
        model, _, _ = load_model_for_eval(self.dirs["none"])
        setting = SETTINGS[1]
        direct = evaluate_robustness(
            model, self.protocol.data.batches,
            [Restarts(setting.pgd(e, early_stop=True), 1) for e in EPSILONS],
            record_at=setting.record_at, seed=0)
        table = {row["model"]: row for row in self.document["table1"]["strong"]}
        for entry in direct["worst_case"]:
            cell = table["target_none"]["cells"][f"white_box {entry['epsilon']:g}"]
            self.assertEqual(cell["robust_accuracy"], entry["robust_accuracy"])
        self.assertEqual(table["target_none"]["clean_accuracy"], direct["clean_accuracy"])

    def test_sweep_csv_holds_every_recorded_point(self):
        with open(os.path.join(self.output, "sweep.csv")) as f:
            rows = list(csv.DictReader(f))
        paper_white = [r for r in rows if r["setting"] == "paper"
                       and r["threat_model"] == "white_box" and r["target"] == "target_none"]
        self.assertEqual(sorted({int(r["iterations"]) for r in paper_white}), [2, 4])
        # With step 1/256, 4 steps cannot reach either epsilon: every point says so.
        self.assertTrue(all(r["can_reach_boundary"] == "False" for r in paper_white))

    def test_table2_has_clean_and_transfer_columns_in_the_unit_range(self):
        table = self.document["table2"]
        self.assertEqual(set(table), {"target_none", "target_at_alp"})
        columns = set(table["target_none"])
        self.assertIn("clean", columns)
        self.assertIn("gray_box 0.5 (gray_source)", columns)
        self.assertIn("black_box 0.03125 (black_source)", columns)
        for row in table.values():
            for value in row.values():
                self.assertBetween(value["mean"], 0.0, 1.0)
                self.assertContainsSubset({"conv2_x", "conv5_x"}, value)

    def test_sanity_checks_are_listed_and_the_paper_setting_is_flagged(self):
        checks = self.document["sanity_checks"]
        self.assertEqual(set(checks), {
            "iterative_vs_single_step", "white_box_vs_transfer", "non_increasing_in_epsilon",
            "non_increasing_in_iterations", "majority_class_at_grey"})
        with open(os.path.join(self.output, "protocol_results.json")) as f:
            self.assertEqual(json.load(f)["sanity_checks"], checks)

    def test_an_interrupted_run_resumes_where_it_stopped(self):
        output = os.path.join(temporary_folder(self), "resumed")
        config = protocol_config(self.dirs, output, masks_dir=self.masks)
        with mock.patch.object(cell_runs, "transfer_cell",
                               side_effect=KeyboardInterrupt("stopped")):
            with self.assertRaises(KeyboardInterrupt):
                run_protocol(prepare_protocol(config))
        # The white-box and FGSM cells before the interruption were kept.
        self.assertLen(os.listdir(os.path.join(output, CELLS_DIR)), 6)
        counting = mock.Mock(wraps=cell_runs.white_box_cell)
        with mock.patch.object(cell_runs, "white_box_cell", counting):
            document = run_protocol(prepare_protocol(config))
        counting.assert_not_called()
        self.assertEqual(document["table1"], self.document["table1"])
        self.assertEqual(document["table2"], self.document["table2"])

    def test_a_same_defense_source_has_its_own_column_for_its_defense_only(self):
        output = os.path.join(temporary_folder(self), "same_defense")
        document = run_protocol(prepare_protocol(protocol_config(
            self.dirs, output, gray_box_sources=(), black_box_sources=(),
            same_defense_sources=(self.dirs["at_alp_copy"],), figure_images=0,
            landscape_grid=0)))
        rows = {row["model"]: row for row in document["table1"]["paper"]}
        column = "gray_box_same_defense 0.5"
        self.assertEqual(rows["target_at_alp"]["cells"][column]["source"], "at_alp_copy")
        self.assertIsNone(rows["target_none"]["cells"][column])
        with open(os.path.join(output, "report.md")) as f:
            self.assertIn("gray-box (same defense) eps 0.5", f.read())

    def test_a_changed_setting_is_recomputed(self):
        output = os.path.join(temporary_folder(self), "changed")
        config = protocol_config(self.dirs, output, figure_images=0, landscape_grid=0,
                                 black_box_sources=(), gray_box_sources=())
        run_protocol(prepare_protocol(config))
        counting = mock.Mock(wraps=cell_runs.white_box_cell)
        with mock.patch.object(cell_runs, "white_box_cell", counting):
            run_protocol(prepare_protocol(protocol_config(
                self.dirs, output, figure_images=0, landscape_grid=0, black_box_sources=(),
                gray_box_sources=(), seed=1)))
        self.assertEqual(counting.call_count, 4)  # 2 settings x 2 targets


    def test_runs_sharing_an_iterate_cache_craft_the_black_box_images_once(self):
        # A study's entries: one protocol per target set, the same black-box source.
        cache = IterateCache()
        root = temporary_folder(self)
        documents = []
        for name in ("none", "at_alp"):
            documents.append(run_protocol(prepare_protocol(protocol_config(
                self.dirs, os.path.join(root, name), targets=(self.dirs[name],),
                gray_box_sources=(), figure_images=0, landscape_grid=0),
                iterate_cache=cache)))
            if name == "none":
                crafted = cache.crafted
        self.assertGreater(crafted, 0)
        self.assertEqual(cache.crafted, crafted)  # the second run only scored them
        # The same numbers as the run without a cache, for each target.
        series = {(s["target"], s["setting"], s["epsilon"]): s["points"]
                  for s in self.document["series"] if s["threat_model"] == "black_box"}
        for document in documents:
            for s in document["series"]:
                if s["threat_model"] == "black_box":
                    self.assertEqual(s["points"],
                                     series[(s["target"], s["setting"], s["epsilon"])])


class PairedSourceTest(tf.test.TestCase):
    """The paper's gray-box attacker: the target's defense and architecture, other weights."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        root = temporary_folder(cls)
        cls.dirs = protocol_workspace(root)
        cls.output = os.path.join(root, "paired")
        cls.document = run_protocol(prepare_protocol(protocol_config(
            cls.dirs, cls.output, gray_box_sources=(), black_box_sources=(),
            # The copy is also a target here: a source may be another target of the run.
            targets=(cls.dirs["none"], cls.dirs["at_alp"], cls.dirs["at_alp_copy"]),
            paired_sources=((cls.dirs["at_alp"], cls.dirs["at_alp_copy"]),),
            figure_targets=("target_at_alp",), figure_images=1, landscape_grid=3)))

    def test_the_copy_is_scored_on_its_one_target(self):
        transfer = [s for s in self.document["series"] if s["source"] is not None]
        self.assertNotEmpty(transfer)
        self.assertEqual({s["target"] for s in transfer}, {"target_at_alp"})
        self.assertTrue(all(s["paired"] and s["threat_model"] == "gray_box"
                            and s["column"] == SAME_DEFENSE_COLUMN for s in transfer))
        self.assertEqual({s["source"] for s in transfer}, {"at_alp_copy"})
        cells = os.listdir(os.path.join(self.output, CELLS_DIR))
        self.assertIn("paper__gray_box__at_alp_copy__to__target_at_alp.json", cells)
        row = {r["model"]: r for r in self.document["table1"]["paper"]}["target_at_alp"]
        self.assertIsNotNone(row["cells"][f"{SAME_DEFENSE_COLUMN} 0.5"])
        for series in transfer:  # per-image outcomes travel with every series
            self.assertEqual(series["robust_examples"].count("1"), series["robust_correct"])

    def test_figures_draw_only_the_chosen_targets(self):
        self.assertLen(self.document["figures"]["figure4"], 1)
        self.assertEqual(set(self.document["clean_examples"]),
                         {"target_none", "target_at_alp", "at_alp_copy"})


class ProtocolInputsTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = temporary_folder(cls)
        cls.dirs = protocol_workspace(cls.root)

    def check_refused(self, message, **overrides):
        with self.assertRaisesRegex(ValueError, message):
            prepare_protocol(protocol_config(self.dirs, os.path.join(self.root, "out"),
                                             **overrides))

    def test_a_source_under_the_wrong_threat_model_is_refused(self):
        self.check_refused("listed as a gray-box source but is black-box",
                           gray_box_sources=(self.dirs["black"],), black_box_sources=())
        self.check_refused("listed as a black-box source but is gray-box",
                           black_box_sources=(self.dirs["gray"],), gray_box_sources=())

    def test_bad_paths_and_names_are_refused(self):
        self.check_refused("holds no model", targets=(os.path.join(self.root, "missing"),))
        self.check_refused("same name twice", targets=(self.dirs["none"], self.dirs["none"]))
        self.check_refused("masks_dir", masks_dir=os.path.join(self.root, "no_masks"))
        a_file = os.path.join(self.root, "a_file")
        open(a_file, "w").close()
        with self.assertRaisesRegex(ValueError, "must be a folder"):
            prepare_protocol(protocol_config(self.dirs, a_file))
        with self.assertRaisesRegex(ValueError, "^`output_dir` cannot be written: '/proc'"):
            prepare_protocol(protocol_config(self.dirs, "/proc/nowhere/protocol"))
        tensorboard_is_a_file = os.path.join(self.root, "output_with_a_file")
        os.makedirs(tensorboard_is_a_file)
        open(os.path.join(tensorboard_is_a_file, "tensorboard"), "w").close()
        with self.assertRaisesRegex(ValueError, "tensorboard' is a file"):
            prepare_protocol(protocol_config(self.dirs, tensorboard_is_a_file))

    def test_a_paired_source_must_be_another_model_of_its_targets_defense(self):
        self.check_refused("trained with its target's defense",
                           paired_sources=((self.dirs["none"], self.dirs["at_alp_copy"]),))
        self.check_refused("another model than its target",
                           paired_sources=((self.dirs["at_alp"], self.dirs["at_alp"]),))
        self.check_refused("names a target that is not in `targets`",
                           paired_sources=((self.dirs["gray"], self.dirs["at_alp_copy"]),))
        self.check_refused("`figure_targets` must name targets", figure_targets=("nobody",))

    def test_a_same_defense_source_needs_a_target_of_its_defense(self):
        self.check_refused("has no target trained with its defense",
                           targets=(self.dirs["at_alp"],), gray_box_sources=(),
                           black_box_sources=(), same_defense_sources=(self.dirs["gray"],))

    def test_settings_and_config_check_their_fields(self):
        with self.assertRaisesRegex(ValueError, "record_at"):
            paper_setting(record_at=(0, 3))
        with self.assertRaisesRegex(ValueError, "targets"):
            ProtocolConfig(targets=(), output_dir="x")
        with self.assertRaisesRegex(ValueError, "epsilons"):
            ProtocolConfig(targets=("a",), output_dir="x", epsilons=(0.0,))
        self.assertAlmostEqual(strong_setting(iterations=10).step_for(0.5), 0.125)
        self.assertAlmostEqual(paper_setting().step_for(0.5), 1 / 256)


class CellRunsTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.model = conv_model(seed=0)
        images, labels = conv_data(cls.model, n=32)
        cls.batches = list(dataset_of(images, labels))

    def robust(self, result):
        return {r["epsilon"]: r["robust_correct"] for r in result["robust"]}

    def test_one_and_several_sweep_points_give_the_same_final_number(self):
        one = cell_runs.white_box_cell(self.model, self.batches,
                                       paper_setting(record_at=(12,), step_size=0.01),
                                       (0.05,), seed=0, drop_broken=False)
        several = cell_runs.white_box_cell(self.model, self.batches,
                                           paper_setting(record_at=(3, 6, 12), step_size=0.01),
                                           (0.05,), seed=0, drop_broken=False)
        self.assertLen(one["points"], 1)
        self.assertLen(several["points"], 3)
        self.assertEqual(one["points"][0]["accuracy"], several["points"][-1]["accuracy"])
        self.assertEqual(self.robust(one), self.robust(several))
        worst = [p["worst_iterate_accuracy"] for p in several["points"]]
        self.assertEqual(worst, sorted(worst, reverse=True))

    def test_dropping_broken_examples_changes_no_worst_iterate_number(self):
        setting = strong_setting(iterations=20)
        kept, dropped = (cell_runs.white_box_cell(self.model, self.batches, setting,
                                                  (0.02, 0.1), seed=3, drop_broken=drop)
                         for drop in (False, True))
        self.assertEqual(self.robust(kept), self.robust(dropped))
        self.assertEqual([p["worst_iterate_accuracy"] for p in kept["points"]],
                         [p["worst_iterate_accuracy"] for p in dropped["points"]])

    def test_transfer_cell_scores_every_target_and_observes_every_batch(self):
        seen = []
        result = cell_runs.transfer_cell(
            self.model, {"a": conv_model(seed=1), "b": conv_model(seed=2)}, self.batches,
            strong_setting(iterations=10), (0.05,), threat_model="gray_box", seed=0,
            observe=lambda b, images, labels, epsilon, iterate: seen.append(
                (b, epsilon, float(np.max(np.abs(iterate - images))))))
        self.assertEqual(set(result["targets"]), {"a", "b"})
        self.assertEqual(result["targets"]["a"]["points"][0]["threat_model"], "gray_box")
        self.assertEqual([(b, e) for b, e, _ in seen], [(b, 0.05) for b in range(2)])
        self.assertTrue(all(0 < distance <= 0.05 + 1e-6 for _, _, distance in seen))
