"""From finished cells to the protocol's numbers: series, Table 1 (markdown and CSV), Table 2.

A "series" is one (setting, threat model, source, target, epsilon): the
accuracy after each recorded count and the headline robust accuracy (the
worst case per example over every scored iterate, an upper bound on the
true robust accuracy). Table 1 shows the headline number of each series in
%, with the worst (lowest) over sources where a threat model has several.
"""

import csv
import io

WHITE_BOX_KIND = "white_box"
SINGLE_STEP_KIND = "single_step"
TRANSFER_KIND = "transfer"
# Table 1's columns: a same-defense source (an attacker who trained a copy of the defense)
# is gray-box, but gets its own column: only the targets of its defense have it.
SAME_DEFENSE_COLUMN = "gray_box_same_defense"
COLUMN_ORDER = ("gray_box", SAME_DEFENSE_COLUMN, "black_box", "white_box")


def _series_of(scored: dict, *, setting, threat_model, source, target,
               column=None, paired=False) -> list[dict]:
    """One series per epsilon of a cell's numbers for one scored model."""
    robust = {entry["epsilon"]: entry for entry in scored["robust"]}
    series = {}
    for point in scored["points"]:
        entry = series.setdefault(point["epsilon"], {
            "setting": setting, "threat_model": threat_model, "source": source,
            "column": column or threat_model, "paired": paired,
            "target": target, "epsilon": point["epsilon"], "step_size": point["step_size"],
            "random_start": point["random_start"], "restarts": point["restarts"],
            "run_iterations": point["run_iterations"], "num_examples": point["num_examples"],
            "points": []})
        entry["points"].append({"iterations": point["iterations"],
                                "accuracy": point["accuracy"],
                                "worst_iterate_accuracy": point["worst_iterate_accuracy"],
                                "can_reach_boundary": point["can_reach_boundary"]})
    for epsilon, entry in series.items():
        entry["robust_accuracy"] = robust[epsilon]["robust_accuracy"]
        entry["robust_correct"] = robust[epsilon]["robust_correct"]
        for key in ("robust_examples", "robust_examples_per_draw"):
            if key in robust[epsilon]:
                entry[key] = robust[epsilon][key]
    return list(series.values())


def collect(cells: list[dict]) -> dict:
    """{"series": [...], "clean": {target: acc}, "clean_examples": {target: "0110..."},
        "class_totals": {target: [...]},
        "single_step": {target: {epsilon: acc}}, "sources": {source: {setting: white-box series}}}."""
    collected = {"series": [], "clean": {}, "clean_examples": {}, "class_totals": {},
                 "single_step": {}, "sources": {}}
    for cell in cells:
        spec, result = cell["spec"], cell["result"]
        if spec["kind"] == WHITE_BOX_KIND:
            target = spec["target"]
            collected["clean"][target] = result["clean_accuracy"]
            if "clean_examples" in result:
                collected["clean_examples"][target] = result["clean_examples"]
            collected["class_totals"][target] = result["class_totals"]
            collected["series"] += _series_of(result, setting=spec["setting"],
                                              threat_model="white_box", source=None,
                                              target=target)
        elif spec["kind"] == SINGLE_STEP_KIND:
            collected["single_step"][spec["target"]] = {
                entry["epsilon"]: entry["robust_accuracy"] for entry in result["robust"]}
        elif spec["kind"] == TRANSFER_KIND:
            for target, scored in result["targets"].items():
                collected["series"] += _series_of(
                    scored, setting=spec["setting"], threat_model=spec["threat_model"],
                    source=spec["source"], target=target,
                    column=SAME_DEFENSE_COLUMN if spec.get("same_defense") else None,
                    paired=bool(spec.get("paired")))
            collected["sources"].setdefault(spec["source"], {})[spec["setting"]] = {
                "clean_accuracy": result["source"]["clean_accuracy"],
                "robust": result["source"]["robust"]}
    return collected


def headline(series: list[dict], setting: str, column: str, target: str,
             epsilon: float) -> dict | None:
    """The series with the lowest robust accuracy among the matching ones (over sources)."""
    matching = [s for s in series if s["setting"] == setting and s["column"] == column
                and s["target"] == target and s["epsilon"] == epsilon]
    return min(matching, key=lambda s: s["robust_accuracy"]) if matching else None


def table1_columns(series: list[dict], epsilons) -> list[tuple[str, float]]:
    """(column, epsilon) present: gray-box, gray-box from a same-defense copy, black-box,
    then white-box."""
    present = {s["column"] for s in series}
    return [(c, e) for c in COLUMN_ORDER if c in present for e in epsilons]


def table1_rows(collected: dict, targets: list[dict], setting: str, epsilons) -> list[dict]:
    """One row per target: name, defense, clean and each column's headline accuracy."""
    columns = table1_columns(collected["series"], epsilons)
    rows = []
    for target in targets:
        row = {"model": target["name"], "defense": target["defense"],
               "clean_accuracy": collected["clean"].get(target["name"]), "cells": {}}
        for column, epsilon in columns:
            best = headline(collected["series"], setting, column, target["name"], epsilon)
            row["cells"][f"{column} {epsilon:g}"] = None if best is None else {
                "robust_accuracy": best["robust_accuracy"], "source": best["source"]}
        rows.append(row)
    return rows


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


COLUMN_TITLES = {"gray_box": "gray-box", SAME_DEFENSE_COLUMN: "gray-box (same defense)",
                 "black_box": "black-box", "white_box": "white-box"}


def _column_title(key: str) -> str:
    """"gray_box 0.25" -> "gray-box eps 0.25"."""
    column, epsilon = key.rsplit(" ", 1)
    return f"{COLUMN_TITLES.get(column, column)} eps {epsilon}"


def table1_markdown(rows: list[dict]) -> str:
    """Rows as a markdown table (accuracies in %)."""
    if not rows:
        return ""
    keys = list(rows[0]["cells"])
    header = ["defense (model)", "clean"] + [_column_title(k) for k in keys]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [_percent((row["cells"][k] or {}).get("robust_accuracy")) for k in keys]
        lines.append(f"| {row['defense']} ({row['model']}) | {_percent(row['clean_accuracy'])} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def table1_csv(tables: dict[str, list[dict]]) -> str:
    """Every Table 1 cell of every setting, one line each (accuracy as a fraction)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["setting", "model", "defense", "clean_accuracy", "column",
                     "robust_accuracy", "source"])
    for setting, rows in tables.items():
        for row in rows:
            for column, cell in row["cells"].items():
                writer.writerow([setting, row["model"], row["defense"], row["clean_accuracy"],
                                 column, None if cell is None else cell["robust_accuracy"],
                                 None if cell is None else cell["source"]])
    return out.getvalue()


def sweep_csv(series: list[dict]) -> str:
    """Every recorded point of every series (Figure 3's numbers), one line each."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["setting", "threat_model", "source", "target", "epsilon", "step_size",
                     "random_start", "restarts", "run_iterations", "iterations", "accuracy",
                     "worst_iterate_accuracy", "can_reach_boundary", "num_examples"])
    for s in series:
        for p in s["points"]:
            writer.writerow([s["setting"], s["threat_model"], s["source"] or "", s["target"],
                             s["epsilon"], s["step_size"], s["random_start"], s["restarts"],
                             s["run_iterations"], p["iterations"], p["accuracy"],
                             p["worst_iterate_accuracy"], p["can_reach_boundary"],
                             s["num_examples"]])
    return out.getvalue()


def table2_markdown(table: dict[str, dict[str, dict[str, float]]]) -> str:
    """Table 2: rows defenses, columns (clean, each threat model and epsilon), mean over groups."""
    if not table:
        return ""
    columns = sorted({c for row in table.values() for c in row},
                     key=lambda c: (c != "clean", c))
    lines = ["| model | " + " | ".join(columns) + " |", "|" + "---|" * (len(columns) + 1)]
    for model, row in table.items():
        lines.append(f"| {model} | " + " | ".join(
            f"{row[c]['mean']:.3f}" if c in row else "-" for c in columns) + " |")
    return "\n".join(lines)
