"""The cost of robustness, side by side with the peers and the floor: `python bench/run.py`.

Runs the comparisons of issue 11 in one process each after the other
(never two at once), prints a table of ratios and writes bench/results.json
atomically after EACH comparison, so an interrupted run keeps what it
finished. `--quick` takes minutes on 2 CPU cores; the full mode makes the
README's table.

    python bench/run.py --quick
    python bench/run.py --only=training_cost,pgd_peers
    python bench/run.py               # full mode
    python bench/run.py --markdown    # the results file as a Markdown table

Peer comparisons need the bench-only packages (bench/requirements.txt, in a
separate virtual environment); without them they say "skipped: <package>
not installed". The schema of bench/results.json: one entry per comparison
(`harness.entry`): id, subject and reference (label, value, unit), ratio,
goal (description, target, relation, met), settings, machine, notes.
"""

import argparse
import importlib
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

# Name -> module, in the order they run (cheapest information first).
BENCHMARKS = {
    "training_cost": "bench_training_cost",
    "pgd_peers": "bench_pgd_peers",
    "adversarial_training_peers": "bench_training_peers",
    "sweep": "bench_sweep",
    "precision": "bench_precision",
    "pipeline": "bench_pipeline",
    "memory": "bench_memory",
    "scaling": "bench_scaling",
    "autoattack": "bench_autoattack",
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and few rounds: minutes on 2 CPU cores")
    parser.add_argument("--only", default="",
                        help=f"comma-separated comparisons to run, of {', '.join(BENCHMARKS)}")
    parser.add_argument("--output", default=harness.RESULTS_PATH,
                        help="the results file (default bench/results.json)")
    parser.add_argument("--data_dir", default=None,
                        help="the 17 Flowers folder (default ../shared/data/flowers17)")
    parser.add_argument("--markdown", action="store_true",
                        help="print the results file as a Markdown table and exit (runs nothing)")
    parser.add_argument("--fresh", action="store_true",
                        help="start a new results file instead of updating the entries of the "
                             "comparisons run")
    return parser.parse_args(argv)


def selected(only: str) -> list[str]:
    """The comparisons to run, in BENCHMARKS order; raises on an unknown name."""
    if not only:
        return list(BENCHMARKS)
    names = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"Unknown comparison(s) {unknown}: choose from {list(BENCHMARKS)}")
    return [name for name in BENCHMARKS if name in names]


def main(argv=None) -> int:
    args = parse_args(argv)
    names = selected(args.only)
    if args.markdown:
        document = harness.load_document(args.output)
        if document is None:
            raise SystemExit(f"No results at {args.output}: run the benchmarks first.")
        print(f"{document['command']} ({document['mode']} mode, {document['updated_utc']}, "
              f"{document.get('wall_seconds', '?')} s)\n")
        print(harness.markdown_table([e for e in document["entries"]
                                      if e["benchmark"] in names]))
        return 0
    settings = harness.settings_for(harness.QUICK if args.quick else harness.FULL, args.data_dir)
    command = "python bench/run.py" + (" --quick" if args.quick else "") + (
        f" --only={','.join(names)}" if args.only else "")
    import keras  # after argparse: --help stays fast

    machine = harness.machine()
    document = None if args.fresh else harness.load_document(args.output)
    if document is None or document.get("mode") != settings.mode:
        document = harness.new_document(command, settings.mode, machine)
    document.update(command=command, machine=machine, settings=settings.describe())
    modules = {name: importlib.import_module(BENCHMARKS[name]) for name in names}
    estimates = [modules[n].ESTIMATED_SECONDS[0 if args.quick else 1] for n in names]
    print(f"Running {len(names)} comparison(s) in {settings.mode} mode "
          f"(about {sum(estimates) / 60:.0f} min here): {', '.join(names)}", flush=True)
    bar = keras.utils.Progbar(sum(estimates), unit_name="estimated s")
    started = time.perf_counter()
    done = 0.0
    failures = []
    for name, estimate in zip(names, estimates):
        print(f"\n[{name}] {modules[name].DESCRIPTION}", flush=True)
        began = time.perf_counter()
        error = None
        try:
            entries = modules[name].run(settings)
        except Exception:  # one failing comparison must not lose the others
            error = traceback.format_exc()
            print(error, file=sys.stderr, flush=True)
            failures.append(name)
            entries = []
        seconds = time.perf_counter() - began
        harness.add_benchmark(document, name, entries, seconds, error)
        harness.write_document(args.output, document)
        print(f"[{name}] {seconds:.0f} s, {len(entries)} entries; wrote {args.output}")
        print(harness.table(entries), flush=True)
        done += estimate
        bar.update(int(done))
    total = time.perf_counter() - started
    document["wall_seconds"] = round(total, 1)
    harness.write_document(args.output, document)
    print(f"\nAll done in {total:.0f} s ({total / 60:.1f} min). Every entry of this run:")
    print(harness.table([e for e in document["entries"] if e["benchmark"] in names]))
    if failures:
        print(f"FAILED: {', '.join(failures)} (tracebacks above and in {args.output})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
