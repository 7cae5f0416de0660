"""Train-step time of trades, mart, fast_at, free_at and AWP against pat, on real 17 Flowers.

    python bench/defense_step_times.py [--rounds=5] [--reps=3] [--epochs=60]

Each defense's run is built as train_main builds it from
configs/flowers17_cpu.flags with `--defense=...` (the network, the trainer
with its training attack, the optimizer and the precision of the flagfile),
and one train step (`train_on_batch`) on the first real training batch is
timed, all variants alternating round after round (`harness.time_alternating`:
the first call, with tracing, is kept apart). A free_at step is its m
replays; its run trains ceil(epochs / m) epochs, so the cost of a whole
run relative to pat's is step time x epochs run, over pat's. Writes
bench/results/defense_step_times.json and prints the table.
"""

import argparse
import dataclasses
import json
import os
import sys

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH_DIR)

import harness  # noqa: E402  (puts the repository on sys.path)

FLAGFILE = os.path.join(harness.ROOT, "configs", "flowers17_cpu.flags")
RESULTS = os.path.join(BENCH_DIR, "results", "defense_step_times.json")
VARIANTS = {  # name: extra train_main flags
    "pat": ["--defense=pat"],
    "at_alp": ["--defense=at_alp"],
    "trades": ["--defense=trades"],
    "mart": ["--defense=mart"],
    "fast_at": ["--defense=fast_at"],
    "fast_at+grad_align": ["--defense=fast_at", "--grad_align_lambda=0.2"],
    "free_at": ["--defense=free_at"],
    "pat+awp": ["--defense=pat", "--awp_gamma=0.005"],
    "at_alp+awp": ["--defense=at_alp", "--awp_gamma=0.005"],
}


def _config(flags_module, extra, epochs):
    from absl import flags
    values = flags.FLAGS
    values.unparse_flags()
    values(["defense_step_times", f"--flagfile={FLAGFILE}", f"--epochs={epochs}",
            "--model_dir=/tmp/defense_step_times", *extra])
    return flags_module.run_config_from_flags(values)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=60, help="epochs asked for (the study's)")
    args = parser.parse_args(argv)
    os.chdir(harness.ROOT)  # the flagfile's data_dir is relative to the repository

    import keras
    from tf_atalp import data as data_lib
    from tf_atalp.data.pipeline import EpochCounter
    from tf_atalp.training import flags as train_flags
    from tf_atalp.training import run
    from tf_atalp.training.precision import resolve_precision
    from tf_atalp.training.trainer import AdversarialTrainer

    train_flags.define_train_flags()
    configs = {name: _config(train_flags, extra, args.epochs) for name, extra in VARIANTS.items()}
    prepared = run.prepare_run(configs["pat"])  # checks and scans the data once
    precision = resolve_precision(prepared.config.train.mixed_precision)
    keras.mixed_precision.set_global_policy(precision.policy)
    images, labels = next(iter(data_lib.make_dataset(
        prepared.config.data, "train", training=True, epoch_counter=EpochCounter(),
        max_batches=1)))
    calls, runs = {}, {}
    for name, config in configs.items():
        config = dataclasses.replace(config, model=prepared.config.model)
        keras.utils.set_random_seed(config.train.seed)
        trainer = AdversarialTrainer(run.build_network(config), config.defense,
                                     attack=config.attack, seed=config.train.seed)
        trainer.compile(optimizer=run.make_optimizer(config, prepared.steps_per_epoch))
        calls[name] = (lambda model: lambda: model.train_on_batch(images, labels))(trainer)
        runs[name] = {"defense": config.defense.name, "epochs_run": config.train.epochs,
                      "updates_per_step": config.defense.updates_per_batch(),
                      "training_attack": (trainer._training_attack.describe()
                                          if config.defense.free_replays() == 0 else
                                          f"none: {config.defense.free_replays()} replays")}
    times = harness.time_alternating(calls, args.rounds, args.reps)
    pat_step, pat_epochs = times["pat"]["median_s"], runs["pat"]["epochs_run"]
    rows = []
    for name in VARIANTS:
        step = times[name]["median_s"]
        rows.append({"variant": name, **runs[name], "step_s": round(step, 4),
                     "step_vs_pat": round(step / pat_step, 3),
                     "run_vs_pat": round(step * runs[name]["epochs_run"]
                                         / (pat_step * pat_epochs), 3),
                     "first_call_s": times[name]["first_call_s"],
                     "samples_s": times[name]["samples_s"]})
    document = {
        "command": "python bench/defense_step_times.py " + " ".join(argv or sys.argv[1:]),
        "settings": {"flagfile": "configs/flowers17_cpu.flags", "epochs_asked": args.epochs,
                     "batch_size": prepared.config.data.batch_size,
                     "steps_per_epoch": prepared.steps_per_epoch,
                     "precision": precision.policy, "rounds": args.rounds, "reps": args.reps,
                     "pgd": prepared.config.attack.describe()},
        "machine": harness.machine(), "rows": rows}
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        json.dump(document, f, indent=2)
        f.write("\n")
    print(f"{'variant':<20} {'step s':>8} {'x pat':>7} {'epochs':>7} {'run x pat':>10}")
    for row in rows:
        print(f"{row['variant']:<20} {row['step_s']:>8.3f} {row['step_vs_pat']:>7.2f} "
              f"{row['epochs_run']:>7d} {row['run_vs_pat']:>10.2f}")
    return document


if __name__ == "__main__":
    main()
