"""A study's report folder: report.md, study_results.json, table1.csv, comparisons.csv, figures.

Every number is an accuracy over the same test images; per entry it is
given as the mean and sample standard deviation over seeds, and the
reference entry (AT+ALP) is compared with every other on the same images
(`statistics.compare`: McNemar's exact test and a paired bootstrap interval).
"""

import csv
import datetime
import io
import os

import numpy as np

from tf_atalp.evaluation.results import BLACK_BOX, GRAY_BOX, WHITE_BOX
from tf_atalp.io_utils import atomic_write_json, atomic_write_text
from tf_atalp.machine import machine_summary
from tf_atalp.protocol.analyses import _sweep_panels
from tf_atalp.protocol.figures import plot_sweep
from tf_atalp.study import statistics
from tf_atalp.study.aggregate import (
    AUTOATTACK, CLEAN, PAPER_SUFFIX, column, merge_protocol_documents, read_json,
    study_outcomes)
from tf_atalp.study.figures import plot_robust_against_cost, plot_training_curves
from tf_atalp.study.train_cells import TARGET

REPORT_FILE = "report.md"
RESULTS_FILE = "study_results.json"
# The entry each defense's training time and robustness are set against in "What each
# defense costs and buys" (PGD adversarial training, the field's baseline).
COST_BASELINE = "pat"
TITLES = {CLEAN: "clean", WHITE_BOX: "white-box (every attack)", AUTOATTACK: "AutoAttack",
          GRAY_BOX: "gray-box (paired copy)", BLACK_BOX: "black-box",
          GRAY_BOX + PAPER_SUFFIX: "gray-box", BLACK_BOX + PAPER_SUFFIX: "black-box"}


def epsilon_text(epsilon: float) -> str:
    """0.03125 -> "0.03125 (8/256)"; 0.25 -> "0.25"."""
    in_256 = epsilon * 256
    if abs(in_256 - round(in_256)) < 1e-9 and epsilon not in (0.25, 0.5):
        return f"{epsilon:g} ({round(in_256)}/256)"
    return f"{epsilon:g}"


def column_title(name: str) -> str:
    kind, _, epsilon = name.partition(" ")
    title = TITLES.get(kind, kind)
    return title if not epsilon else f"{title} eps {epsilon_text(float(epsilon))}"


def _percent(spread: statistics.Spread | None) -> str:
    if spread is None:
        return "-"
    if spread.std is None:
        return f"{100 * spread.mean:.1f}"
    return f"{100 * spread.mean:.1f} ± {100 * spread.std:.1f}"


def _runs(study, outcomes: dict) -> dict[str, list[tuple[int, dict]]]:
    """{entry label: [(seed, {column: bool [N]}), ...]} in seed order."""
    runs = {}
    for cell in study.targets:
        runs.setdefault(cell.label, []).append((cell.seed, outcomes.get(cell.name, {})))
    return runs


def _columns(study) -> dict[str, list[str]]:
    epsilons = study.epsilons
    paper = [column(GRAY_BOX + PAPER_SUFFIX, e) for e in epsilons if e >= 0.25] + \
        [column(BLACK_BOX + PAPER_SUFFIX, e) for e in epsilons if e >= 0.25]
    headline = [CLEAN] + [column(kind, e) for kind in (WHITE_BOX, GRAY_BOX, BLACK_BOX)
                          for e in epsilons]
    return {"paper": paper, "headline": headline,
            "autoattack": [column(AUTOATTACK, e) for e in epsilons]}


def _spreads(runs, names) -> dict[str, dict[str, statistics.Spread]]:
    table = {}
    for label, seeds in runs.items():
        table[label] = {}
        for name in names:
            values = [float(np.mean(o[name])) for _, o in seeds if name in o]
            if len(values) == len(seeds):
                table[label][name] = statistics.spread(values)
    return table


def _markdown_table(labels, names, spreads, first_header="defense") -> str:
    header = [first_header] + [column_title(n) for n in names]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label in labels:
        lines.append(f"| {label} | " + " | ".join(_percent(spreads[label].get(n))
                                                  for n in names) + " |")
    return "\n".join(lines)


def _comparisons(study, runs, names) -> list[dict]:
    config = study.config
    reference = runs[config.reference]
    rows = []
    for label, seeds in runs.items():
        if label == config.reference:
            continue
        for name in names:
            if not all(name in o for _, o in reference) or not all(name in o for _, o in seeds):
                continue
            a = np.stack([o[name] for _, o in reference])
            b = np.stack([o[name] for _, o in seeds])
            result = statistics.compare(a, b, samples=config.bootstrap_samples, seed=0)
            rows.append({"reference": config.reference, "other": label, "column": name,
                         "reference_accuracy": statistics.spread(a.mean(axis=1)).describe(),
                         "other_accuracy": statistics.spread(b.mean(axis=1)).describe(),
                         **result.describe()})
    return rows


def _overfitting(train: dict, label: str, seeds) -> dict | None:
    """The catastrophic-overfitting check of an entry's trainings (train_main's
    `--overfitting_check`, on by default for single-step defenses): {"rule",
    "seeds": [{"seed", "checked", "detected", "epochs"}]}, "epochs" the epochs
    (from 1) after which it fired; None when no seed's training ran the check
    (or its cell predates the record)."""
    records = [(seed, train[f"{label}_seed{seed}"]["result"].get("catastrophic_overfitting"))
               for seed in seeds]
    checked = [record for _, record in records if record]
    if not checked:
        return None
    return {"rule": checked[0]["rule"],
            "seeds": [{"seed": seed, "checked": bool(record),
                       "detected": bool(record and record["detected"]),
                       "epochs": list(record["epochs"]) if record else []}
                      for seed, record in records]}


def _overfitting_lines(costs: dict) -> list[str]:
    """One line per entry whose trainings watched for catastrophic overfitting."""
    watched = [row for row in costs["rows"] if row.get("catastrophic_overfitting")]
    if not watched:
        return []
    lines = ["", "Catastrophic overfitting, checked after every epoch by the trainings that "
             f"watch for it; the rule: {watched[0]['catastrophic_overfitting']['rule']}.", ""]
    for row in watched:
        seeds = row["catastrophic_overfitting"]["seeds"]
        fired = [f"seed {s['seed']} after epoch {', '.join(str(e) for e in s['epochs'])}"
                 for s in seeds if s["detected"]]
        unchecked = [str(s["seed"]) for s in seeds if not s["checked"]]
        text = (f"**detected**: {'; '.join(fired)}" if fired else
                "not detected in any seed checked")
        if unchecked:
            text += f" (seed {', '.join(unchecked)} not checked)"
        lines.append(f"- {row['entry']}: {text}.")
    return lines


def _costs(study, runs, spreads, seconds: dict, training_epsilon: float,
           overfitting: dict) -> dict:
    """What each entry costs (training seconds) and buys (robust accuracy, training radius).

    Returns {"baseline": COST_BASELINE or None when the study lacks it,
    "column": the white-box (every attack) column, "autoattack_column",
    "rows": [{"entry", "training_seconds", "time_vs_baseline", "clean",
    "robust", "autoattack", "against_baseline", "catastrophic_overfitting"}]};
    "against_baseline" is the paired comparison entry minus baseline on that
    column (None for the baseline itself or where a seed lacks the column);
    "catastrophic_overfitting" is `overfitting[entry]` (see `_overfitting`).
    """
    config = study.config
    robust = column(WHITE_BOX, training_epsilon)
    autoattack = column(AUTOATTACK, training_epsilon)
    baseline = COST_BASELINE if COST_BASELINE in runs else None
    baseline_seconds = float(np.mean(seconds[baseline])) if baseline else None
    rows = []
    for label in (e.label for e in config.entries):
        per = spreads[label]
        row = {"entry": label, "training_seconds": statistics.spread(seconds[label]).describe(),
               "time_vs_baseline": (float(np.mean(seconds[label])) / baseline_seconds
                                    if baseline_seconds else None),
               **{key: per[name].describe() if name in per else None
                  for key, name in (("clean", CLEAN), ("robust", robust),
                                    ("autoattack", autoattack))},
               "against_baseline": None, "catastrophic_overfitting": overfitting[label]}
        pairs = runs[label] + (runs[baseline] if baseline else [])
        if baseline and label != baseline and all(robust in o for _, o in pairs):
            row["against_baseline"] = statistics.compare(
                np.stack([o[robust] for _, o in runs[label]]),
                np.stack([o[robust] for _, o in runs[baseline]]),
                samples=config.bootstrap_samples, seed=0).describe()
        rows.append(row)
    return {"baseline": baseline, "column": robust, "autoattack_column": autoattack,
            "rows": rows}


def _cost_lines(costs: dict) -> list[str]:
    """The report's section on what each entry costs and buys (table and figure)."""
    baseline, robust = costs["baseline"], costs["column"]
    lines = ["## What each defense costs and buys", "",
             "Training seconds: train_main's `training_seconds` of each run (the fit alone, "
             "as measured when it ran; mean ± std over seeds). Robust accuracy: "
             f"{column_title(robust)} (the headline) and AutoAttack alone, as above."]
    if baseline:
        lines[-1] += (f" Each entry minus {baseline} on the same images, seed s with seed s "
                      "(McNemar's exact test, bootstrap 95% interval over images and seeds).")
    header = ["defense", "training s"] + ([f"x {baseline}'s time"] if baseline else []) + [
        column_title(CLEAN), column_title(robust), column_title(costs["autoattack_column"])]
    if baseline:
        header += [f"minus {baseline} (points)", "95% interval", "McNemar p", "verdict"]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in costs["rows"]:
        spent = row["training_seconds"]
        cells = [row["entry"], f"{spent['mean']:.0f}" + (f" ± {spent['std']:.0f}"
                                                         if spent["std"] is not None else "")]
        if baseline:
            cells.append(f"{row['time_vs_baseline']:.2f}")
        cells += [_percent(statistics.Spread(r["mean"], r["std"], tuple(r["values"])))
                  if r else "-" for r in (row["clean"], row["robust"], row["autoattack"])]
        if baseline:
            paired = row["against_baseline"]
            if paired is None:
                cells += ["-"] * 4
            else:
                low, high = paired["interval"]
                cells += [f"{100 * paired['difference']:+.1f}",
                          f"[{100 * low:+.1f}, {100 * high:+.1f}]", f"{paired['p_value']:.3g}",
                          f"**{paired['verdict']}**"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + _overfitting_lines(costs) + [
        "", "![robust accuracy against training time](robust_against_cost.png)", ""]


def _comparison_line(row: dict) -> str:
    low, high = row["interval"]
    return (f"| {row['other']} | {column_title(row['column'])} | "
            f"{100 * row['reference_accuracy']['mean']:.1f} | "
            f"{100 * row['other_accuracy']['mean']:.1f} | {100 * row['difference']:+.1f} | "
            f"[{100 * low:+.1f}, {100 * high:+.1f}] | {row['a_only']} / {row['b_only']} | "
            f"{row['p_value']:.3g} | **{row['verdict']}** |")


def _figure3(study, document: dict, out: str) -> list[str]:
    """Figure 3 per setting: worst-iterate accuracy against iterations, mean over seeds."""
    by_target = {c.name: c.label for c in study.targets}
    seeds = len(study.config.seeds)
    paths = []
    for setting in sorted({s["setting"] for s in document["series"]}):
        averaged = {}
        for series in document["series"]:
            label = by_target.get(series["target"])
            if label is None or series["setting"] != setting or series["threat_model"] == WHITE_BOX:
                continue
            source = "paired" if series.get("paired") else series["source"]
            key = (series["threat_model"], source, series["epsilon"], label)
            entry = averaged.setdefault(key, {**series, "target": label, "points": {}})
            if series.get("paired"):
                entry["paired"] = True
            for point in series["points"]:
                entry["points"].setdefault(point["iterations"], []).append(
                    point["worst_iterate_accuracy"])
        merged = [{**e, "points": [{"iterations": k, "worst_iterate_accuracy": float(np.mean(v))}
                                   for k, v in sorted(e["points"].items())]}
                  for e in averaged.values()]
        panels = _sweep_panels(merged, setting)
        if not panels:
            continue
        clean = {}
        for target, value in document["clean"].items():
            if target in by_target:
                clean.setdefault(by_target[target], []).append(value)
        paths.append(plot_sweep(
            panels, {k: float(np.mean(v)) for k, v in clean.items()},
            f"{study.config.name}, {setting} setting: worst-iterate accuracy against PGD "
            f"iterations, mean over {seeds} seed(s)",
            os.path.join(out, f"figure3_{setting}.png")))
    return [os.path.basename(p) for p in paths]


def _csv(rows: list[list]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


def write_study_report(study, records: dict, command, flagfile_text: str,
                       unfinished=(), settings: dict | None = None) -> dict:
    """Writes the report folder from the finished cells' records; returns study_results.

    records: {"train": {name: stored cell}, "protocol": {entry label: stored cell},
    "autoattack": {target name: stored cell}} (as `CellStore.save` returned them).
    unfinished: the labels of the study's entries not finished yet (a partial
    report: `study` holds the finished ones); settings: the whole study's
    (default: `study.config.describe()`).
    """
    config = study.config
    out = config.report_dir
    documents = {label: read_json(os.path.join(out, stored["result"]["results"]))
                 for label, stored in records["protocol"].items()}
    protocol_document = merge_protocol_documents(list(documents.values()))
    outcomes = study_outcomes(out, protocol_document,
                              {n: r["result"]["results"] for n, r in records["autoattack"].items()})
    runs = _runs(study, outcomes)
    columns = _columns(study)
    all_names = columns["headline"] + columns["paper"] + columns["autoattack"]
    spreads = _spreads(runs, all_names)
    comparisons = _comparisons(study, runs, columns["headline"])
    labels = [e.label for e in config.entries]
    train = records["train"]
    seconds = {label: [train[f"{label}_seed{seed}"]["result"]["training_seconds"]
                       for seed in config.seeds] for label in labels}
    training_epsilon = max(c.run_config.attack.epsilon for c in study.targets)
    figures = {"figure3": _figure3(study, protocol_document, out)}
    figures["robust_against_cost"] = os.path.basename(plot_robust_against_cost(
        [{"label": label, "seconds": seconds[label],
          "robust": [float(np.mean(o[column(WHITE_BOX, training_epsilon)]))
                     for _, o in runs[label]]} for label in labels],
        f"{config.name}: white-box robust accuracy (every attack) at eps "
        f"{epsilon_text(training_epsilon)} against training time",
        os.path.join(out, "robust_against_cost.png")))
    curves = {label: [train[f"{label}_seed{seed}"]["result"].get("curves", {})
                      for seed in config.seeds] for label in labels}
    try:
        figures["training_curves"] = os.path.basename(plot_training_curves(
            curves, f"{config.name}: held-out accuracy per epoch",
            os.path.join(out, "training_curves.png")))
    except ValueError:
        figures["training_curves"] = None
    costs = _costs(study, runs, spreads, seconds, training_epsilon,
                   {label: _overfitting(train, label, config.seeds) for label in labels})
    flags_by_target = _flags_by_target(protocol_document, records["autoattack"], out)
    results = {
        "name": config.name, "command": list(command),
        "settings": settings or config.describe(), "unfinished_entries": list(unfinished),
        "epsilons": list(study.epsilons), "num_examples": int(len(outcomes[study.targets[0].name]
                                                                  [CLEAN])),
        "data": protocol_document["data"],
        "accuracy": {label: {name: s.describe() for name, s in per.items()}
                     for label, per in spreads.items()},
        "per_target": {name: {col: float(np.mean(v)) for col, v in per.items()}
                       for name, per in outcomes.items()},
        "comparisons": comparisons, "training_seconds": seconds, "costs": costs,
        "figures": figures,
        "sanity": flags_by_target,
        "cells": _cell_seconds(records, documents),
        "black_box_weights": _black_box_weights(records),
        "made_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_summary(),
    }
    atomic_write_json(os.path.join(out, RESULTS_FILE), results)
    atomic_write_text(os.path.join(out, "table1.csv"), _csv(
        [["entry", "column", "mean", "std", "seeds", "values"]]
        + [[label, name, s.mean, s.std, len(s.values), " ".join(f"{v:.6g}" for v in s.values)]
           for label, per in spreads.items() for name, s in per.items()]))
    atomic_write_text(os.path.join(out, "comparisons.csv"), _csv(
        [["reference", "other", "column", "difference", "low", "high", "reference_only",
          "other_only", "p_value", "verdict", "seed_pairs"]]
        + [[r["reference"], r["other"], r["column"], r["difference"], r["interval"][0],
            r["interval"][1], r["a_only"], r["b_only"], r["p_value"], r["verdict"],
            r["seed_pairs"]] for r in comparisons]))
    atomic_write_text(os.path.join(out, REPORT_FILE),
                      _markdown(study, results, spreads, columns, records, flagfile_text))
    return results


def _flags_by_target(protocol_document: dict, autoattack_records: dict, out: str) -> dict:
    """{target: [protocol sanity messages naming it, AutoAttack masking flags]}."""
    found = {}
    for messages in protocol_document["sanity_checks"].values():
        for message in messages:
            for target in protocol_document["clean"]:
                if f"{target} (" in message or f": {target} " in message:
                    found.setdefault(target, []).append(message)
    for target, record in autoattack_records.items():
        document = read_json(os.path.join(out, record["result"]["results"]))
        for entry in document.get("autoattack", []):
            for flag in entry.get("flags", []):
                found.setdefault(target, []).append(
                    f"AutoAttack at eps {entry['epsilon']:g}: {flag['name']}: {flag['message']}")
    return found


def _black_box_weights(records: dict) -> dict[str, dict[str, list[str]]]:
    """{black-box source: {weights digest: [entries whose protocol was crafted with it]}}."""
    found = {}
    for label, stored in records["protocol"].items():
        for source, digest in stored["result"].get("black_box_weights", {}).items():
            found.setdefault(source, {}).setdefault(digest, []).append(label)
    return found


def _cell_seconds(records: dict, documents: dict[str, dict]) -> list[dict]:
    """[{"cell", "seconds", "machine"}]: every cell's seconds and the machine it ran on (None
    for cells recorded before machines were; a protocol's own cells ran where it did)."""
    cells = [{"cell": f"train {name}", "seconds": r["seconds"],
              "training_seconds": r["result"]["training_seconds"], "machine": r.get("machine")}
             for name, r in records["train"].items()]
    cells += [{"cell": f"protocol {label}: {c['label']}", "seconds": c["seconds"],
               "machine": records["protocol"][label].get("machine")}
              for label, document in documents.items() for c in document["cells"]]
    cells += [{"cell": f"AutoAttack {name}", "seconds": r["seconds"],
               "machine": r.get("machine")}
              for name, r in records["autoattack"].items()]
    return cells


NOT_RECORDED = "not recorded (cells written before machines were)"


def _machine_of(cell: dict) -> str:
    return cell["machine"] or NOT_RECORDED


def _machines(cells: list[dict]) -> list[str]:
    """The distinct machines of `cells`, in order of first appearance."""
    return list(dict.fromkeys(map(_machine_of, cells)))


def _machine_lines(results: dict) -> list[str]:
    machines = _machines(results["cells"])
    if len(machines) == 1:
        return [f"Machine of every cell: {machines[0]}. Report written on "
                f"{results['machine']}."]
    counts = [sum(_machine_of(c) == m for c in results["cells"]) for m in machines]
    return ["Cells ran on several machines (the Time section says which ran each):", ""] + [
        f"- machine {i + 1}: {m} ({n} cells)" for i, (m, n) in enumerate(zip(machines, counts))
    ] + ["", f"Report written on {results['machine']}."]


def _black_box_weights_text(weights: dict[str, dict[str, list[str]]]) -> str:
    """Whether every entry was attacked by the same trained black-box sources."""
    retrained = {source: found for source, found in weights.items() if len(found) > 1}
    if not retrained:
        return ("Every entry was attacked by the same trained sources (one weights digest "
                "each).")
    parts = [f"`{source}`: " + "; ".join(f"weights {digest} for {', '.join(labels)}"
                                       for digest, labels in found.items())
             for source, found in retrained.items()]
    return ("Some sources were trained more than once (the study ran across machines, "
            "which lost the earlier models; same flags, other weights), so entries were "
            "attacked by different copies: " + " / ".join(parts) + ".")


def _verdict_sentences(results: dict, config) -> list[str]:
    lines = []
    for row in results["comparisons"]:
        if row["column"] == CLEAN:
            continue
        low, high = row["interval"]
        lines.append(
            f"- {config.reference} vs {row['other']}, {column_title(row['column'])}: "
            f"{100 * row['reference_accuracy']['mean']:.1f}% vs "
            f"{100 * row['other_accuracy']['mean']:.1f}%, difference "
            f"{100 * row['difference']:+.1f} points, 95% interval [{100 * low:+.1f}, "
            f"{100 * high:+.1f}], McNemar p = {row['p_value']:.3g} "
            f"({row['a_only']} / {row['b_only']} discordant images over {row['seed_pairs']} "
            f"seed pair(s)): **{row['verdict']}**.")
    return lines


def _markdown(study, results, spreads, columns, records, flagfile_text) -> str:
    config = study.config
    labels = [e.label for e in config.entries]
    data = results["data"]
    seeds = len(config.seeds)
    spread_note = ("mean ± sample standard deviation over the seeds "
                   f"{', '.join(map(str, config.seeds))}" if seeds > 1 else
                   "one seed: **no spread over seeds** (each number is one trained model)")
    lines = [f"# {config.name}: the AT+ALP study", "",
             f"Made {results['made_utc']} by:", "", "```", " ".join(results["command"]), "```",
             ""] + _machine_lines(results) + [""]
    if results["unfinished_entries"]:
        lines += [f"**Partial report**: {len(labels)} of "
                  f"{len(labels) + len(results['unfinished_entries'])} entries finished; "
                  f"not yet run: {', '.join(results['unfinished_entries'])}. Rerun the "
                  "study's command to go on.", ""]
    lines += [
             f"Data: {data['name']} {data['split']} split, {results['num_examples']} of "
             f"{data['split_size']} images" + (" (class-balanced subset)" if data.get("subset")
                                                else "") + f", {data['image_size']} px. "
             f"One image is {100 / results['num_examples']:.2f} points.", "",
             "## What was run", "",
             f"- Targets: {len(labels)} entries x {seeds} seed(s). Every number below is "
             f"{spread_note}, in % of the test images.",
             "- Gray-box (the paper's: the attacker knows the network and the defense, not "
             "the weights): " + ("each target is attacked with images crafted on the same "
                                 "entry trained with the next seed (seed s from seed s+1 "
                                 "mod S)." if config.gray_box == "paired" else "not run."),
             "- Black-box: images crafted on " + ", ".join(
                 f"`{c.label}` ({c.run_config.model.architecture}-{c.run_config.model.depth}, "
                 f"{c.defense})" for c in study.train_cells if c.role != TARGET)
             + "; an image counts as robust only if it survives every source. "
             + _black_box_weights_text(results["black_box_weights"]),
             "- White-box: AutoAttack (" + config.autoattack_version
             + (f": {', '.join(config.autoattack_attacks)}" if config.autoattack_attacks else "")
             + f", {config.autoattack_iterations} APGD/FAB steps, {config.square_queries} "
             "Square queries; randomized targets: version rand ("
             + (", ".join(config.rand_attacks) or "apgd-ce, apgd-dlr")
             + f") with expectation over {config.eot_samples} draws), the paper's PGD and the "
             "strong PGD; an image counts as robust only if it survives all of them (the "
             "headline).",
             "- Transfer PGD settings: **paper** (L-inf PGD on the cross-entropy, step 1/256, "
             f"from the clean image, one run of {max(config.paper_iterations)} steps scored "
             f"after {', '.join(map(str, config.paper_iterations))}; 1 restart) and "
             f"**strong** (random start, step 2.5 eps / {config.strong_iterations}, "
             f"{config.strong_iterations} steps; 1 restart). A transfer number is robust "
             "only at every scored iterate; gray-box and black-box columns take the worst "
             "case per image over both settings.",
             "- Every transfer number is a weaker attack than the white-box one by "
             "construction: a defense is robust only as far as its white-box column says.",
             "", "Training: every run is `python train_main.py` with the base flags", "",
             "```", " ".join(config.train_flags), "```", "",
             "and per entry:", "", "| entry | flags |", "|---|---|"]
    lines += [f"| {e.label} | `{' '.join(e.flags)}` |" for e in config.entries + config.black_box]
    lines += ["", f"## Table 1 in the paper's layout (PGD-{max(config.paper_iterations)}, step "
              "1/256, from the clean image)", "", _markdown_table(labels, [CLEAN] + columns["paper"], spreads), ""]
    lines += ["## Table 1 with the strongest attack of each threat model", "",
              _markdown_table(labels, columns["headline"], spreads), "",
              "AutoAttack alone:", "", _markdown_table(labels, columns["autoattack"], spreads),
              ""]
    lines += [f"## {config.reference} against every other entry", "",
              "Paired on the same test images (seed s with seed s): McNemar's exact test on "
              "the discordant images (reference right and other wrong / the reverse, summed "
              "over seed pairs) and a bootstrap 95% interval of the difference in accuracy "
              f"({config.bootstrap_samples} resamples of the images and of each entry's "
              "seeds). **higher / lower** only when the interval excludes 0 and p < 0.05. "
              "The two can disagree: McNemar's test counts every image of every seed pair as "
              "an independent pair, while the interval also resamples the seeds, so a small p "
              "with an interval that holds 0 means the difference is not clear of the "
              "variation between seeds, and the verdict stays not distinguishable.", "",
              "| other | column | reference % | other % | difference (points) | 95% interval "
              "| discordant (ref only / other only) | McNemar p | verdict |",
              "|---|---|---|---|---|---|---|---|---|"]
    lines += [_comparison_line(row) for row in results["comparisons"]]
    if results["comparisons"]:
        lines += ["", "In words:", ""] + _verdict_sentences(results, config)
    else:
        lines += ["", "No other entry has finished yet."]
    lines += [""] + _cost_lines(results["costs"])
    figures = results["figures"]
    lines += ["## Figures", ""]
    lines += [f"![Figure 3]({png})" for png in figures["figure3"]]
    lines += [""]
    if figures["training_curves"]:
        lines += ["Held-out accuracy per epoch (train_main's RobustAccuracy callback: "
                  "PGD at the training epsilon on a class-balanced subset of the test split; "
                  "where it has flattened, more epochs would not help):", "",
                  f"![training curves]({figures['training_curves']})", ""]
    lines += ["Figures 4 (attention maps) and 6 (loss landscapes) of the seed "
              f"{config.figure_seed if config.figure_seed is not None else config.seeds[0]} "
              "targets: each entry's `protocol/<entry>/report.md` ("
              + ", ".join(f"[{label}](protocol/{label}/report.md)"
                          for label in records["protocol"]) + ").", "",
              "## Table 2", "",
              "Not computed: Table 2 needs the 17 Flowers part masks (key regions), which "
              "`../shared/data` does not hold; the code path (`eval_main.py --protocol=paper "
              "--masks_dir=...`) is tested on made-up masks (tests/protocol_test.py).", "",
              "## Sanity checks", ""]
    if results["sanity"]:
        for target, messages in sorted(results["sanity"].items()):
            lines += [f"- {target}:"] + [f"  - {m}" for m in messages]
    else:
        lines.append("Every check of the protocol holds and AutoAttack raised no "
                     "gradient-masking flag.")
    machines = _machines(results["cells"])
    lines += ["", "## Time", ""]
    if len(machines) == 1:
        lines += ["| cell | seconds |", "|---|---|"]
        lines += [f"| {c['cell']} | {c['seconds']:.1f} |" for c in results["cells"]]
    else:
        lines += ["| cell | seconds | machine |", "|---|---|---|"]
        lines += [f"| {c['cell']} | {c['seconds']:.1f} | "
                  f"{machines.index(_machine_of(c)) + 1} |"
                  for c in results["cells"]]
    total = sum(c["seconds"] for c in results["cells"])
    lines += ["", f"All cells: {total:.0f} s ({total / 3600:.2f} h) as measured when each ran.",
              "", "## Commands", "", "Training (each resumes if interrupted):", "", "```"]
    lines += [r["result"]["command"] for r in records["train"].values()]
    lines += ["```", "", "Evaluation (the study ran these in its process):", "", "```"]
    lines += [r["result"]["command"] for r in records["protocol"].values()]
    lines += [r["result"]["command"] for r in records["autoattack"].values()]
    lines += ["```", ""]
    if flagfile_text:
        lines += ["The study's flags:", "", "```", flagfile_text.strip(), "```", ""]
    return "\n".join(lines)
