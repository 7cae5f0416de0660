"""Tests of tf_atalp.evaluation.transfer: crafted once on a source, scored on several targets."""

import numpy as np
import tensorflow as tf

from tests.evaluation_fixtures import CountingModel, conv_data, conv_model, dataset_of
from tf_atalp.attacks import PGD, Restarts, WorstCase, inference_logits
from tf_atalp.evaluation import evaluate_robustness, evaluate_transfer
from tf_atalp.evaluation.per_example import decode_outcomes
from tf_atalp.evaluation.iterate_cache import IterateCache
from tf_atalp.evaluation.transfer import compiled_correct, score_iterates


class IteratesTest(tf.test.TestCase):

    def test_iterates_are_those_of_one_full_run(self):
        model = conv_model()
        images, labels = conv_data(model, n=16)
        attack = PGD(0.05, 0.01, 12)
        model_fn = inference_logits(model)
        iterates = attack.iterates(model_fn, images, labels, at=[0, 5, 12], seed=4)
        for k in (5, 12):
            alone = PGD(0.05, 0.01, k).attack(model_fn, images, labels, seed=4)
            self.assertAllClose(iterates[k], alone.adversarial_images, atol=1e-6)
        self.assertLessEqual(np.max(np.abs(iterates[12].numpy() - images)), 0.05 + 1e-6)
        with self.assertRaisesRegex(ValueError, "must lie in"):
            attack.iterates(model_fn, images, labels, at=[13])


class EvaluateTransferTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.source = conv_model(seed=0)
        cls.images, cls.labels = conv_data(cls.source, n=48)
        cls.dataset = dataset_of(cls.images, cls.labels)
        cls.attack = Restarts(PGD(0.1, 0.01, 20), 1)

    def test_crafted_once_and_scored_on_two_targets(self):
        targets = {"a": CountingModel(conv_model(seed=1)), "b": CountingModel(conv_model(seed=2))}
        source = CountingModel(self.source)
        result = evaluate_transfer(source, targets, self.dataset, [self.attack],
                                   record_at=[10, 20], seed=0)
        self.assertEqual(result["num_examples"], 48)
        self.assertEqual(set(result["models"]), {"source", "a", "b"})
        # Each target runs forward once per example per scored image (clean, k=10, k=20),
        # never for crafting; only the source runs the attack's forward-backward passes.
        self.assertEqual(int(targets["a"].examples.numpy()), 3 * 48)
        self.assertEqual(int(targets["b"].examples.numpy()), 3 * 48)
        self.assertGreater(int(source.examples.numpy()), 20 * 48)

    def test_source_numbers_are_its_white_box_numbers(self):
        result = evaluate_transfer(self.source, {"other": conv_model(seed=1)}, self.dataset,
                                   [self.attack], record_at=[10, 20], seed=0)
        white_box = evaluate_robustness(self.source, self.dataset, [self.attack],
                                        record_at=[10, 20], seed=0)
        source = result["models"]["source"]
        self.assertEqual(source["clean_correct"], white_box["clean_correct"])
        self.assertEqual(source["attacks"][0]["correct"], white_box["attacks"][0]["correct"])
        self.assertEqual(source["per_class"], white_box["per_class"])
        # Worst over the scored counts only: never below worst over every iterate.
        for ours, every in zip(source["attacks"][0]["worst_iterate_correct"],
                               white_box["attacks"][0]["worst_iterate_correct"]):
            self.assertGreaterEqual(ours, every)
        target = result["models"]["other"]
        self.assertEqual(target["worst_case"][0]["robust_correct"],
                         target["attacks"][0]["worst_iterate_correct"][-1])
        robust = decode_outcomes(target["worst_case"][0]["robust_examples"])
        self.assertEqual(int(robust.sum()), target["worst_case"][0]["robust_correct"])
        self.assertFalse(np.any(robust & ~decode_outcomes(target["clean_examples"])))
        self.assertEqual(source["clean_examples"], white_box["clean_examples"])

    def test_a_target_identical_to_the_source_is_attacked_white_box(self):
        twin = conv_model(seed=0)  # the same weights: transfer is then white-box
        result = evaluate_transfer(self.source, {"twin": twin}, self.dataset, [self.attack],
                                   record_at=[20])
        self.assertEqual(result["models"]["twin"]["attacks"][0]["correct"],
                         result["models"]["source"]["attacks"][0]["correct"])

    def test_a_cache_crafts_once_for_later_calls_and_scores_the_same(self):
        cache = IterateCache()
        source = CountingModel(self.source)
        attacks = [self.attack, Restarts(PGD(0.05, 0.01, 20), 1)]
        first = evaluate_transfer(source, {"a": conv_model(seed=1)}, self.dataset, attacks,
                                  record_at=[10, 20], seed=0, cache=cache, cache_key="s")
        crafting = int(source.examples.numpy())
        self.assertEqual(cache.crafted, 2 * 3)  # 2 attacks x 3 batches of 16
        b = conv_model(seed=2)
        second = evaluate_transfer(source, {"b": b}, self.dataset, attacks, record_at=[10, 20],
                                   seed=0, cache=cache, cache_key="s")
        self.assertEqual(cache.crafted, 2 * 3)
        # The second call ran the source only on the clean images: its scores on the
        # iterates (2 counts x 2 attacks) were kept with them.
        self.assertEqual(int(source.examples.numpy()) - crafting, 1 * 48)
        alone = evaluate_transfer(self.source, {"b": b}, self.dataset, attacks,
                                  record_at=[10, 20], seed=0)
        self.assertEqual(second["models"]["b"], alone["models"]["b"])
        self.assertEqual(first["models"]["source"], second["models"]["source"])
        # Another key, seed or attack crafts again.
        evaluate_transfer(source, {"b": b}, self.dataset, attacks[:1], record_at=[10, 20],
                          seed=1, cache=cache, cache_key="s")
        evaluate_transfer(source, {"b": b}, self.dataset, attacks[:1], record_at=[10, 20],
                          seed=0, cache=cache, cache_key="another source")
        self.assertEqual(cache.crafted, 2 * 3 + 3 + 3)
        with self.assertRaisesRegex(ValueError, "go together"):
            evaluate_transfer(source, {"b": b}, self.dataset, attacks, cache=cache)

    def test_compiled_scores_are_the_eager_predictions_and_compiled_once_per_model(self):
        model_fn = inference_logits(self.source)
        correct = compiled_correct(model_fn)
        self.assertIs(compiled_correct(model_fn), correct)
        images, labels = self.images[:16], self.labels[:16]
        iterates = PGD(0.1, 0.01, 6).iterates(model_fn, images, labels, at=[0, 3, 6], seed=1)
        scored = score_iterates(correct, iterates, [6, 0], labels)
        self.assertEqual(scored.shape, (2, 16))
        for row, k in zip(scored, [6, 0]):
            expected = np.argmax(model_fn(iterates[k]).numpy(), axis=-1) == np.asarray(labels)
            self.assertAllEqual(row, expected)

    def test_only_single_untargeted_pgd_runs(self):
        for attack, message in ((Restarts(PGD(0.1, 0.01, 5), 2), "single PGD runs"),
                                (WorstCase([PGD(0.1, 0.01, 5)]), "single PGD runs"),
                                (PGD(0.1, 0.01, 5, targeted=True), "untargeted")):
            with self.assertRaisesRegex(ValueError, message):
                evaluate_transfer(self.source, {"a": self.source}, self.dataset, [attack])
        with self.assertRaisesRegex(ValueError, "not named 'source'"):
            evaluate_transfer(self.source, {"source": self.source}, self.dataset, [self.attack])


if __name__ == "__main__":
    tf.test.main()
