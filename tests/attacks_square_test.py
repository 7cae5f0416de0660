"""Tests of tf_atalp.attacks.square: the schedule, the ball, and success where gradients are masked."""

import numpy as np
import tensorflow as tf

from tests.attack_fixtures import IMAGE_SHAPE, CountingModelFn, linear_model, rounding_model
from tf_atalp.attacks import PGD, inference_logits
from tf_atalp.attacks import square
from tf_atalp.attacks.square import Square, window_share


class SquareTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        honest, _, _ = linear_model()
        cls.masked = inference_logits(rounding_model(honest))
        rng = np.random.default_rng(0)
        cls.images = rng.uniform(size=(32, *IMAGE_SHAPE)).astype(np.float32)
        cls.labels = np.argmax(cls.masked(cls.images).numpy(), axis=1).astype(np.int32)

    def test_window_share_follows_the_reference_schedule(self):
        self.assertAlmostEqual(window_share(0.8, 0, 10000), 0.8)
        self.assertAlmostEqual(window_share(0.8, 10, 10000), 0.8)
        self.assertAlmostEqual(window_share(0.8, 11, 10000), 0.4)
        self.assertAlmostEqual(window_share(0.8, 9000, 10000), 0.8 / 512)
        self.assertAlmostEqual(window_share(0.8, 26, 5000), 0.2)  # 52 of 10000
        # AutoAttack's schedule: the same halvings at fixed query counts.
        self.assertAlmostEqual(window_share(0.8, 26, 5000, rescale=False), 0.4)
        self.assertAlmostEqual(window_share(0.8, 4500, 5000, rescale=False), 0.8 / 128)

    def test_succeeds_on_a_rounding_model_where_gradient_attacks_fail(self):
        labels = tf.constant(self.labels)
        pgd = PGD(0.3, 0.03, 20, random_start=False).attack(self.masked, self.images, labels,
                                                              record_at=[0, 20])
        self.assertEqual(pgd.ever_misclassified.numpy().mean(), 0.0)  # zero gradient: no move
        square = Square(0.3, queries=200).attack(self.masked, self.images, labels, seed=0,
                                                 record_at=[0, 50, 200])
        correct = square.correct_at.numpy()
        self.assertGreater(1.0 - correct[-1].mean(), 0.5)
        self.assertTrue(np.all(correct[1:] <= correct[:-1]))  # fooled stays fooled
        distance = np.abs(square.adversarial_images.numpy() - self.images).max()
        self.assertLessEqual(distance, 0.3 + 1e-6)
        self.assertBetween(float(square.adversarial_images.numpy().min()), 0.0, 1.0)

    def test_each_query_is_one_forward_pass_of_the_examples_not_yet_fooled(self):
        counting = CountingModelFn(self.masked)
        queries = 60
        result = Square(0.3, queries=queries).attack(counting, self.images, self.labels, seed=1,
                                                     record_at=range(queries + 1))
        correct = result.correct_at.numpy()  # [queries + 1, N]
        # An example is queried at q iff no earlier query fooled it (it leaves at once).
        first_fooled = np.where(correct.all(axis=0), queries + 1, np.argmin(correct, axis=0))
        active = [int(np.sum(first_fooled >= q)) for q in range(1, queries + 1)]
        ran = [q for q, count in enumerate(active, 1) if count > 0]
        self.assertNotEmpty(ran)
        self.assertLess(active[-1], len(self.labels))  # some left early: the test bites
        self.assertEqual(int(counting.calls.numpy()), 1 + len(ran))  # + the start's margin
        self.assertEqual(int(counting.images.numpy()), len(self.labels) + sum(active))

    def test_the_whole_search_is_one_compiled_call_traced_once_per_batch_shape(self):
        model_fn = CountingModelFn(self.masked)
        traces = square._search.experimental_get_tracing_count()
        for size in (32, 20, 12, 7):
            Square(0.1, queries=30).attack(model_fn, self.images[:size], self.labels[:size],
                                           seed=size)
        # The first shape, then one trace with the batch size left open (reduce_retracing).
        self.assertLessEqual(square._search.experimental_get_tracing_count() - traces, 2)

    def test_settings_are_checked_and_described(self):
        with self.assertRaisesRegex(ValueError, "queries"):
            Square(0.1, queries=0)
        with self.assertRaisesRegex(ValueError, "record_at"):
            Square(0.1, queries=5).attack(self.masked, self.images, self.labels, record_at=[6])
        self.assertEqual(Square(0.1).describe()["queries"], 5000)
