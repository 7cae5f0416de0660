"""How the AT weight beta changes what a short at_alp run learns.

Trains each model on the synthetic grating task for each beta (and the
`none` / `pat` references) with the same seed and budget, then measures
clean and white-box PGD accuracy on held-out data. Models: a ResNet-10
(width 8, BatchNorm) and a plain 3-conv CNN without BatchNorm (a user-style
model, pairing its two conv blocks). Writes bench/results/beta_sweep.json.

    python bench/beta_sweep.py
"""

import time

from absl import app, flags

import harness  # first: it puts the project on sys.path
import keras

from tf_atalp.attacks import PGD
from tf_atalp.data.synthetic import make_synthetic_arrays
from tf_atalp.defenses import get_defense
from tf_atalp.models import GROUP_NAMES, build_resnet, with_feature_outputs
from tf_atalp.training import AdversarialTrainer

flags.DEFINE_list("betas", ["0", "0.03", "0.1", "0.3", "1.0"], "AT weights to try.")
flags.DEFINE_list("models", ["resnet10", "plain_cnn"], "Models to train.")
flags.DEFINE_integer("epochs", 6, "Training epochs per run.")
flags.DEFINE_float("epsilon", 0.03, "L-inf radius of training and test PGD.")
FLAGS = flags.FLAGS


def plain_cnn():
    """Three convs without BatchNorm; "block1" and "block2" are paired by AT."""
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    block1 = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="block1")(x)
    block2 = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="block2")(
        keras.layers.MaxPooling2D()(block1))
    logits = keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(block2))
    return with_feature_outputs(keras.Model(inputs, logits),
                                {"block1": "block1", "block2": "block2"})


def make_model(name):
    if name == "resnet10":
        return build_resnet(10, num_classes=4, image_size=32, width=8)
    return plain_cnn()


def train_and_measure(model_name, defense, data, epsilon, epochs):
    (train_x, train_y), (test_x, test_y) = data
    keras.utils.set_random_seed(0)
    network = make_model(model_name)
    trainer = AdversarialTrainer(
        network, defense, attack=PGD(epsilon, epsilon / 4, 5),
        eval_attack=PGD(epsilon, epsilon / 4, 20))
    trainer.compile(optimizer=keras.optimizers.Adam(3e-3))
    started = time.time()
    trainer.fit(train_x, train_y, batch_size=64, epochs=epochs, verbose=0)
    seconds = time.time() - started
    scores = trainer.evaluate(test_x, test_y, batch_size=256, verbose=0, return_dict=True)
    return {"clean_accuracy": round(scores["clean_accuracy"], 4),
            "pgd20_accuracy": round(scores["adversarial_accuracy"], 4),
            "train_seconds": round(seconds, 1)}


def main(argv):
    del argv
    data = (make_synthetic_arrays(1024, 32, 4, seed=0), make_synthetic_arrays(512, 32, 4, seed=1))
    def defenses(groups):
        runs = [("none", get_defense("none")), ("pat", get_defense("pat"))]
        return runs + [(f"at_alp beta={b}",
                        get_defense("at_alp", beta=float(b), attention_groups=groups))
                       for b in FLAGS.betas]
    results = {"threat_model": "white_box", "attack": "pgd linf", "epsilon": FLAGS.epsilon,
               "step_size": FLAGS.epsilon / 4, "iterations": 20, "restarts": 1,
               "train_attack": {"epsilon": FLAGS.epsilon, "step_size": FLAGS.epsilon / 4,
                                "iterations": 5},
               "setting": "synthetic 4-class gratings 32 px, 1024 train / 512 test, "
                          "Adam 3e-3, batch 64, seed 0", "epochs": FLAGS.epochs, "runs": {}}
    groups = {"resnet10": GROUP_NAMES,
              "plain_cnn": ("block1", "block2")}
    for model_name in FLAGS.models:
        for name, defense in defenses(groups[model_name]):
            key = f"{model_name} {name}"
            results["runs"][key] = train_and_measure(model_name, defense, data, FLAGS.epsilon,
                                                     FLAGS.epochs)
            print(f"{key:32s} {results['runs'][key]}", flush=True)
    print("wrote", harness.write_results("beta_sweep", "python bench/beta_sweep.py", results))


if __name__ == "__main__":
    app.run(main)
