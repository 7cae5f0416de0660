"""Tests of tf_atalp.evaluation.robustness: a hand-derived linear case and the guarantees."""

import os

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tests.evaluation_fixtures import (
    CountingModel, conv_data, conv_model, dataset_of, temporary_folder)
from tf_atalp.attacks import PGD, Restarts, WorstCase, inference_logits
from tf_atalp.evaluation import evaluate_robustness
from tf_atalp.evaluation.per_example import decode_outcomes
from tf_atalp.export import export_saved_model, load_serving_model

def pgd_attack(*args, restarts=1, **kwargs):
    """A PGD attack with `restarts` random starts (an example must survive them all)."""
    return Restarts(PGD(*args, **kwargs), restarts)


LINEAR_SHAPE = (2, 2, 3)
BOUNDARY_GAP = 1e-3  # examples this close to the decision boundary are left out


def linear_problem(epsilon, step_size, iterations, n=240, seed=0):
    """A binary linear classifier, data, and the hand-derived PGD path margins.

    logits = flatten(x) @ W + b; the margin of label y is m(x) = d . x + c with
    d = W[:, y] - W[:, o], c = b_y - b_o. Both objectives have input gradient
    along -d, so PGD without a random start moves every pixel by -step *
    sign(d) per step, clipped to the epsilon-ball and [0, 1]; the exact
    worst case over the ball is that path's end, the vertex argmin d . x.

    Returns (model, images, labels, margins float64 [iterations + 1, n] along
    the path, worst-case margins float64 [n]), keeping only examples whose
    margins all lie BOUNDARY_GAP away from 0 (float32 rounding cannot flip them).
    """
    rng = np.random.default_rng(seed)
    size = int(np.prod(LINEAR_SHAPE))
    weights = (0.5 * rng.normal(size=(size, 2))).astype(np.float32)
    bias = (0.2 * rng.normal(size=2)).astype(np.float32)
    inputs = keras.Input(LINEAR_SHAPE)
    dense = keras.layers.Dense(2)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([weights, bias])

    images = rng.uniform(size=(n, *LINEAR_SHAPE)).astype(np.float32)
    x = images.reshape(n, size).astype(np.float64)
    predicted = np.argmax(x @ weights + bias, axis=1)
    labels = np.where(rng.uniform(size=n) < 0.8, predicted, 1 - predicted)
    w, b = weights.astype(np.float64), bias.astype(np.float64)
    d = (w[:, labels] - w[:, 1 - labels]).T  # [n, size]
    c = b[labels] - b[1 - labels]
    low, high = np.maximum(x - epsilon, 0.0), np.minimum(x + epsilon, 1.0)
    steps = np.arange(iterations + 1)[:, None, None] * step_size
    path = np.clip(x[None] - steps * np.sign(d)[None], low[None], high[None])
    margins = np.einsum("knd,nd->kn", path, d) + c
    worst = np.einsum("nd,nd->n", np.where(d > 0, low, high), d) + c
    keep = (np.abs(margins).min(axis=0) > BOUNDARY_GAP) & (np.abs(worst) > BOUNDARY_GAP)
    return model, images[keep], labels[keep], margins[:, keep], worst[keep]


class LinearModelTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.parameters("cross_entropy", "margin")
    def test_accuracy_after_every_step_matches_the_hand_derived_path(self, objective):
        epsilon, step, iterations = 0.1, 0.02, 10
        model, images, labels, margins, worst = linear_problem(epsilon, step, iterations)
        attack = pgd_attack(epsilon, step, iterations, random_start=False, objective=objective)
        record_at = list(range(iterations + 1))
        result = evaluate_robustness(model, dataset_of(images, labels), [attack], record_at)

        clean = margins[0] > 0
        expected = [int(np.sum(clean & (m > 0))) for m in margins]
        self.assertEqual(result["num_examples"], len(labels))
        self.assertEqual(result["clean_correct"], int(clean.sum()))
        self.assertEqual(result["attacks"][0]["correct"], expected)
        # The margin falls along the path, so the worst iterate is the current one.
        self.assertEqual(result["attacks"][0]["worst_iterate_correct"], expected)
        # 10 steps of 0.02 cross the ball: the end is the exact L-inf worst case.
        self.assertEqual(expected[-1], int(np.sum(worst > 0)))
        # The case is not trivial: the attack turns some correct examples wrong.
        self.assertLess(expected[-1], expected[0])
        self.assertGreater(expected[-1], 0)

    @parameterized.parameters(1, 3)
    def test_random_start_reaches_the_exact_robust_accuracy(self, restarts):
        epsilon, step, iterations = 0.1, 0.02, 10  # 10 * 0.02 = 2 epsilon: any start arrives
        model, images, labels, _, worst = linear_problem(epsilon, step, iterations, seed=1)
        attack = pgd_attack(epsilon, step, iterations, random_start=True, restarts=restarts)
        result = evaluate_robustness(model, dataset_of(images, labels), [attack])
        self.assertEqual(result["attacks"][0]["record_at"], [iterations])
        self.assertEqual(result["attacks"][0]["correct"], [int(np.sum(worst > 0))])
        self.assertAllClose(result["attacks"][0]["accuracy"], [np.mean(worst > 0)])


class DropBrokenExamplesTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.parameters((25, 1, True), (40, 2, True), (7, 1, False), (0, 1, True))
    def test_dropping_broken_examples_changes_no_worst_iterate_number(self, iterations,
                                                                       restarts, random_start):
        model = conv_model()
        images, labels = conv_data(model, n=48)
        dataset = dataset_of(images, labels)
        record_at = sorted({0, iterations // 2, iterations})

        def evaluate(early_stop):
            counting = CountingModel(model)
            attack = pgd_attack(0.05, 0.004, iterations, random_start=random_start,
                                restarts=restarts, early_stop=early_stop)
            result = evaluate_robustness(counting, dataset, [attack], record_at, seed=3)
            return result, int(counting.examples.numpy())

        full, full_cost = evaluate(False)
        dropped, dropped_cost = evaluate(True)
        for key in ("worst_iterate_correct", "per_class_worst_iterate_correct"):
            self.assertEqual(dropped["attacks"][0][key], full["attacks"][0][key])
        self.assertEqual(dropped["worst_case"][0]["robust_correct"],
                         full["worst_case"][0]["robust_correct"])
        self.assertEqual(dropped["clean_correct"], full["clean_correct"])
        # Dropped examples count as fooled from then on: accuracy equals worst-iterate.
        self.assertEqual(dropped["attacks"][0]["correct"],
                         dropped["attacks"][0]["worst_iterate_correct"])
        if iterations >= 20:
            # Examples fooled early (a quarter start misclassified) are not attacked further.
            self.assertLess(dropped_cost, full_cost)
        self.assertIn("early_stop", dropped["attacks"][0]["attack"].describe())

    def test_adversarial_images_stay_in_the_ball(self):
        model = conv_model()
        images, labels = conv_data(model, n=16)
        result = PGD(0.05, 0.01, 30, early_stop=True).attack(
            inference_logits(model), images, labels, seed=0, record_at=[0, 30])
        adversarial = result.adversarial_images.numpy()
        self.assertLessEqual(np.max(np.abs(adversarial - images)), 0.05 + 1e-6)
        self.assertAllInRange(adversarial, 0.0, 1.0)


class GuaranteesTest(tf.test.TestCase, parameterized.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.model = conv_model()
        cls.images, cls.labels = conv_data(cls.model)
        cls.dataset = dataset_of(cls.images, cls.labels)

    def evaluate(self, attacks, record_at=None, **kwargs):
        return evaluate_robustness(self.model, self.dataset, attacks, record_at, **kwargs)

    @parameterized.parameters((True, 2), (False, 1))
    def test_epsilon_zero_gives_clean_accuracy(self, random_start, restarts):
        attack = pgd_attack(0.0, 0.01, 3, random_start=random_start, restarts=restarts)
        result = self.evaluate([attack], record_at=[0, 1, 3])
        clean = result["clean_correct"]
        self.assertEqual(clean, 36)  # 3 of every 4 labels are the model's predictions
        self.assertEqual(result["attacks"][0]["correct"], [clean] * 3)
        self.assertEqual(result["attacks"][0]["worst_iterate_correct"], [clean] * 3)

    def test_robust_accuracy_is_the_worst_case_per_example_over_attacks(self):
        ce = pgd_attack(0.1, 0.02, 4)
        margin = pgd_attack(0.1, 0.02, 4, objective="margin")
        other_epsilon = pgd_attack(0.3, 0.05, 4)
        result = self.evaluate([ce, margin, other_epsilon], seed=3)
        by_epsilon = {entry["epsilon"]: entry for entry in result["worst_case"]}
        self.assertEqual(by_epsilon[0.1]["attacks"], [0, 1])
        self.assertEqual(by_epsilon[0.3]["attacks"], [2])
        worst = [a["worst_iterate_correct"][-1] for a in result["attacks"]]
        self.assertLessEqual(by_epsilon[0.1]["robust_correct"], min(worst[:2]))
        self.assertEqual(by_epsilon[0.3]["robust_correct"], worst[2])
        # The same per-example AND as one WorstCase attack over both.
        combined = self.evaluate([WorstCase([ce, margin])], seed=3)
        self.assertEqual(combined["worst_case"][0]["robust_correct"],
                         by_epsilon[0.1]["robust_correct"])
        self.assertEqual(combined["worst_case"][0]["robust_examples"],
                         by_epsilon[0.1]["robust_examples"])

    def test_per_example_outcomes_match_the_counts_and_order(self):
        result = self.evaluate([pgd_attack(0.1, 0.02, 4), pgd_attack(0.0, 0.01, 1)], seed=3)
        clean = decode_outcomes(result["clean_examples"])
        predicted = np.argmax(inference_logits(self.model)(self.images), axis=-1)
        self.assertAllEqual(clean, predicted == self.labels)  # example i at position i
        for entry in result["worst_case"]:
            robust = decode_outcomes(entry["robust_examples"])
            self.assertLen(robust, result["num_examples"])
            self.assertEqual(int(robust.sum()), entry["robust_correct"])
            self.assertFalse(np.any(robust & ~clean))  # robust implies clean-correct
        self.assertEqual(result["worst_case"][0]["robust_examples"],  # epsilon 0: clean
                         result["clean_examples"])

    def test_restarts_never_increase_accuracy(self):
        single = pgd_attack(0.05, 0.01, 5, restarts=1)
        several = pgd_attack(0.05, 0.01, 5, restarts=3)
        record_at = [1, 3, 5]
        one, three = (self.evaluate([a], record_at, seed=4)["attacks"][0]
                      for a in (single, several))
        for key in ("correct", "worst_iterate_correct"):
            self.assertAllLessEqual(np.subtract(three[key], one[key]), 0)
        self.assertLess(three["correct"][-1], self.evaluate([single])["clean_correct"])

    def test_worst_iterate_is_monotone_and_below_accuracy(self):
        result = self.evaluate([pgd_attack(0.1, 0.05, 8, restarts=2)], list(range(9)))
        clean = result["clean_correct"]
        correct = np.array(result["attacks"][0]["correct"])
        worst = np.array(result["attacks"][0]["worst_iterate_correct"])
        self.assertAllLessEqual(np.diff(worst), 0)
        self.assertAllLessEqual(worst - correct, 0)
        self.assertAllLessEqual(correct, clean)
        self.assertLess(worst[-1], clean)

    def test_a_longer_run_repeats_the_shorter_one_then_only_lowers_worst_iterate(self):
        short, long = (pgd_attack(0.1, 0.02, k, restarts=1) for k in (3, 6))
        short_result = self.evaluate([short], [1, 3], seed=2)["attacks"][0]
        long_result = self.evaluate([long], [1, 3, 6], seed=2)["attacks"][0]
        self.assertEqual(long_result["correct"][:2], short_result["correct"])
        self.assertEqual(long_result["worst_iterate_correct"][:2],
                         short_result["worst_iterate_correct"])
        self.assertLessEqual(long_result["worst_iterate_correct"][2],
                             short_result["worst_iterate_correct"][1])

    def test_attacks_share_random_starts_and_report_each_epsilon(self):
        attacks = [pgd_attack(e, 0.01, 4) for e in (0.0, 0.02, 0.2)]
        result = self.evaluate(attacks, seed=1)
        self.assertEqual([a["attack"] for a in result["attacks"]], attacks)
        alone = self.evaluate([attacks[1]], seed=1)["attacks"][0]
        self.assertEqual(result["attacks"][1]["correct"], alone["correct"])

    @parameterized.parameters(1, 17, 37, 48, 1000)
    def test_max_examples_counts_exactly_the_first_examples(self, max_examples):
        result = self.evaluate([pgd_attack(0.0, 0.01, 1)], max_examples=max_examples)
        n = min(max_examples, len(self.labels))
        predictions = np.argmax(self.model(self.images[:n])["logits"].numpy(), axis=1)
        self.assertEqual(result["num_examples"], n)
        self.assertEqual(result["clean_correct"], int(np.sum(predictions == self.labels[:n])))
        self.assertIsInstance(result["clean_correct"], int)
        self.assertEqual(result["clean_accuracy"], result["clean_correct"] / n)

    def test_serving_model_gives_the_same_counts_as_the_keras_model(self):
        export_dir = export_saved_model(self.model, os.path.join(temporary_folder(self), "sm"))
        attack = pgd_attack(0.05, 0.01, 4, random_start=False)
        served = evaluate_robustness(load_serving_model(export_dir), self.dataset, [attack])
        self.assertEqual(served, self.evaluate([attack]))

    @parameterized.named_parameters(
        ("record_beyond_iterations", [pgd_attack(0.1, 0.01, 3)], [5], {},
         "`record_at` must not exceed"),
        ("negative_record", [pgd_attack(0.1, 0.01, 3)], [-1], {}, "`record_at` must be"),
        ("no_attacks", [], None, {}, "`attacks` must be a non-empty list"),
        ("targeted", [pgd_attack(0.1, 0.01, 3, targeted=True)], None, {}, "untargeted"),
        ("max_examples", [pgd_attack(0.1, 0.01, 3)], None, {"max_examples": 0},
         r"`max_examples` must be >= 1. Received: max_examples=0"))
    def test_bad_arguments_raise(self, attacks, record_at, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            self.evaluate(attacks, record_at, **kwargs)

    def test_empty_dataset_raises(self):
        empty = self.dataset.take(0)
        with self.assertRaisesRegex(ValueError, "no examples"):
            evaluate_robustness(self.model, empty, [pgd_attack(0.1, 0.01, 1)])


if __name__ == "__main__":
    tf.test.main()
