"""AutoAttack standard in float32 and in mixed_bfloat16 on one trained model and its test images.

    python bench/autoattack_precision.py --model_dir=runs/i23/flowers17_cpu_at_alp_e20 \
        --policies=float32,mixed_bfloat16

For each policy the network is rebuilt from the model's run_config.json
under that policy and given the trained weights (so only the compute dtype
differs), then attacked with `AutoAttack(version="standard")` on the same
test images, in chunks of the run's batch size, with BatchNorm folded into
the convolutions for the attacks, as `eval_main.py --attack=autoattack`
does. Prints and writes (bench/results/<name>.json)
per policy the seconds and robust count after each attack, the robust
images, and the images on which two policies disagree.
"""

import dataclasses
import time

from absl import app, flags

import harness
import keras
import numpy as np
import tensorflow as tf

from tf_atalp.attacks import AutoAttack, inference_logits
from tf_atalp.data import make_dataset
from tf_atalp.models import fold_batchnorm
from tf_atalp.training.config import load_run_config
from tf_atalp.training.run import build_network

flags.DEFINE_string("model_dir", None, "A training model_dir (run_config.json, model.keras).")
flags.DEFINE_list("policies", ["float32", "mixed_bfloat16"], "Keras dtype policies to compare.")
flags.DEFINE_float("epsilon", 8 / 256, "L-inf radius.")
flags.DEFINE_integer("max_examples", 0, "Attack only the first N test images (0: all).")
flags.DEFINE_string("data_dir", None, "The dataset folder (default: the run_config's).")
flags.DEFINE_integer("batch_size", 64, "Examples per attack call (eval_main.py's default).")
flags.DEFINE_string("results_name", "autoattack_precision", "bench/results/<name>.json.")
flags.mark_flag_as_required("model_dir")
FLAGS = flags.FLAGS


def network_under(policy: str, run_config, trained: keras.Model) -> keras.Model:
    """The run's network built under `policy`, with `trained`'s weights."""
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(policy)
    try:
        network = build_network(run_config)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    network.set_weights(trained.get_weights())
    return run_config.defense.inference_model(network)


def test_images(run_config):
    """(images float32 [N, S, S, 3], labels int32 [N]) of the run's test split."""
    data = dataclasses.replace(run_config.data, batch_size=FLAGS.batch_size, augment=False,
                               cache=False)
    if FLAGS.data_dir:
        data = dataclasses.replace(data, data_dir=FLAGS.data_dir)
    images, labels = [], []
    for batch_images, batch_labels in make_dataset(data, "test", training=False):
        images.append(batch_images.numpy())
        labels.append(batch_labels.numpy())
    images, labels = np.concatenate(images), np.concatenate(labels).astype(np.int32)
    if FLAGS.max_examples:
        images, labels = images[:FLAGS.max_examples], labels[:FLAGS.max_examples]
    return images, labels, FLAGS.batch_size


def main(argv):
    del argv
    run_config = load_run_config(FLAGS.model_dir)
    trained = keras.models.load_model(f"{FLAGS.model_dir}/model.keras", compile=False)
    images, labels, batch_size = test_images(run_config)
    results = {"model_dir": FLAGS.model_dir, "epsilon": FLAGS.epsilon,
               "images": len(labels), "batch_size": batch_size, "policies": {}}
    robust_by_policy = {}
    for policy in FLAGS.policies:
        network = network_under(policy, run_config, trained)
        model_fn = inference_logits(network)
        started = time.perf_counter()
        result = AutoAttack(model_fn, FLAGS.epsilon, version="standard",
                            attack_model_fn=inference_logits(fold_batchnorm(network)))(
            images, labels, batch_size=batch_size)
        seconds = time.perf_counter() - started
        robust_by_policy[policy] = result.robust
        after = {name: round(share * len(labels)) for name, share in result.robust_after.items()}
        results["policies"][policy] = {
            "seconds": round(seconds, 1), "seconds_per_attack": result.seconds,
            "clean_correct": int(result.clean_correct.sum()), "robust_after": after,
            "robust": int(result.robust.sum()),
            "robust_images": [int(i) for i in np.flatnonzero(result.robust)]}
        print(f"{policy}: clean {int(result.clean_correct.sum())}, robust after each attack "
              f"{after}, seconds {result.seconds}, total {seconds:.1f} s", flush=True)
    policies = list(robust_by_policy)
    for index, first in enumerate(policies):
        for second in policies[index + 1:]:
            differ = np.flatnonzero(robust_by_policy[first] != robust_by_policy[second])
            results[f"robust differs: {first} vs {second}"] = [int(i) for i in differ]
            print(f"robust differs ({first} vs {second}) on {differ.size} image(s): "
                  f"{differ.tolist()}")
    command = ("python bench/autoattack_precision.py --model_dir=" + FLAGS.model_dir
               + f" --policies={','.join(FLAGS.policies)} --epsilon={FLAGS.epsilon}"
               + (f" --max_examples={FLAGS.max_examples}" if FLAGS.max_examples else ""))
    print("wrote", harness.write_results(FLAGS.results_name, command, results))


if __name__ == "__main__":
    tf.get_logger().setLevel("ERROR")
    app.run(main)
