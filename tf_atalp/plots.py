"""Figures of a run: training curves from history.csv, accuracy against PGD steps.

Drawn with matplotlib's Agg canvas directly (no pyplot), so the user's
matplotlib backend and pyplot state are left alone. Every PNG is rendered to
a temporary file in the target folder and renamed into place.
"""

import json
import os

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from tf_atalp.defenses import defense_from_config
from tf_atalp.io_utils import atomic_save
from tf_atalp.model_dir import RUN_CONFIG_FILE
from tf_atalp.model_dir import history_number, read_history
from tf_atalp.model_dir import read_robust_accuracy_record

# history.csv columns (Keras CSVLogger of the trainer) drawn in each panel, in order; the
# losses panel draws the run's loss terms between the two (`loss_columns`).
TOTAL_LOSS_COLUMNS = ("loss", "val_loss")
ROBUST_ACCURACY_COLUMN = "val_robust_accuracy"  # the RobustAccuracy callback's
ACCURACY_COLUMNS = ("clean_accuracy", "adversarial_accuracy", "val_clean_accuracy",
                    ROBUST_ACCURACY_COLUMN, "val_adversarial_accuracy")
EPOCH_COLUMN = "epoch"
DPI = 120  # figure sizes are in inches; PNG pixels = inches * DPI


def loss_columns(folder: str) -> tuple[str, ...]:
    """The losses panel's columns: "loss", each loss term of the run in `folder`, "val_loss".

    The terms are those of the defense in `folder`'s run_config.json (the
    trainer logs each term under its name: "ce", "alp", "at" for at_alp,
    "input_gradient" for igr, ...); without that file, none.
    """
    path = os.path.join(folder, RUN_CONFIG_FILE)
    if not os.path.isfile(path):
        return TOTAL_LOSS_COLUMNS
    with open(path) as f:
        terms = defense_from_config(json.load(f)["defense"]).term_names
    return (TOTAL_LOSS_COLUMNS[0], *terms, TOTAL_LOSS_COLUMNS[1])


def history_series(history_csv: str) -> dict[str, list[tuple[float, float]]]:
    """{column: [(epoch, value), ...]} of every column of a Keras CSVLogger file.

    Empty or non-numeric cells are left out (and a column with none left);
    a row without a numeric epoch is skipped.

    Raises:
      ValueError: the file is missing or has no rows.
    """
    if not os.path.isfile(history_csv):
        raise ValueError(f"`history_csv` must be an existing file. Received: {history_csv!r}")
    rows = read_history(history_csv)
    if not rows:
        raise ValueError(f"`history_csv` has no rows. Received: {history_csv!r}")
    series = {}
    for row in rows:
        epoch = history_number(row.get(EPOCH_COLUMN))
        if epoch is None:
            continue
        for column, cell in row.items():
            value = None if column in (EPOCH_COLUMN, None) else history_number(cell)
            if value is not None:
                series.setdefault(column, []).append((epoch, value))
    return series


def plot_training_curves(history_csv: str, output_png: str) -> str:
    """Draws a history.csv as two panels, losses and accuracies, against epoch.

    The losses panel shows the train loss, its terms (`loss_columns`: the
    defense's, from run_config.json beside history.csv) and val_loss; the
    accuracies panel the train and val clean/adversarial
    accuracy and the RobustAccuracy callback's val_robust_accuracy
    (fractions in [0, 1]; its legend names the attack and the image count
    when its record, `ROBUST_ACCURACY_FILE`, lies beside history.csv). The x
    axis is the "epoch" column as written (train_main numbers epochs from 1).
    Returns `output_png`.

    Raises:
      ValueError: the file is missing or has no rows.
    """
    return save_png(training_curves_figure(history_csv), output_png)


def training_curves_figure(history_csv: str) -> Figure:
    """The Figure `plot_training_curves` draws (axes: losses, accuracies)."""
    series = history_series(history_csv)
    folder = os.path.dirname(os.path.abspath(history_csv))
    labels = {ROBUST_ACCURACY_COLUMN: robust_accuracy_label(read_robust_accuracy_record(folder))}
    figure = Figure(figsize=(11, 4.5), dpi=DPI, layout="constrained")
    losses, accuracies = figure.subplots(1, 2)
    for axes, columns, title in ((losses, loss_columns(folder), "Losses"),
                                 (accuracies, ACCURACY_COLUMNS, "Accuracies")):
        colors = {}  # a train metric and its val_ twin share a color
        for column in columns:
            base = column.removeprefix("val_")
            colors.setdefault(base, f"C{len(colors) % 10}")
            if column in series:
                epochs, values = zip(*series[column])
                axes.plot(epochs, values, color=colors[base], marker=".",
                          linestyle="--" if column != base else "-",
                          label=labels.get(column, column))
        axes.set_title(title)
        axes.set_xlabel(EPOCH_COLUMN)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        if axes.lines:
            axes.legend(fontsize="small")
        else:
            axes.text(0.5, 0.5, "no data", ha="center", va="center", transform=axes.transAxes)
    accuracies.set_ylim(-0.02, 1.02)
    figure.suptitle(os.path.basename(os.path.dirname(os.path.abspath(history_csv)))
                    or history_csv)
    return figure


def robust_accuracy_label(record: dict | None) -> str:
    """The legend of val_robust_accuracy: "val_robust_accuracy (PGD, epsilon 8/255, step
    2/255, 10 steps; 256 images)" from its RobustAccuracy record; the bare name without one."""
    if record is None or record.get("name") != ROBUST_ACCURACY_COLUMN:
        return ROBUST_ACCURACY_COLUMN
    attack = record.get("attack", {})
    parts = [str(attack.get("attack", "attack")).upper()]
    if "epsilon" in attack:
        parts.append(f"epsilon {pixels(attack['epsilon'])}")
    if "step_size" in attack:
        parts.append(f"step {pixels(attack['step_size'])}")
    if "iterations" in attack:
        parts.append(f"{attack['iterations']} steps")
    return (f"{ROBUST_ACCURACY_COLUMN} ({', '.join(parts)}; "
            f"{record['subset']['num_examples']} images)")


def plot_accuracy_vs_steps(document: dict, output_png: str) -> str:
    """Draws an evaluation results document: accuracy against PGD steps, one line per epsilon.

    `document` is what `tf_atalp.evaluation.results.results_document` returns;
    only "clean_accuracy" and, in each of "results", epsilon, iterations,
    accuracy, worst_iterate_accuracy, step_size, threat_model and restarts are
    read. Solid lines: accuracy after k steps; dashed: worst-iterate accuracy;
    a horizontal line: clean accuracy. Returns `output_png`.

    Raises:
      ValueError: the document has no results.
    """
    points = document.get("results") or []
    if not points:
        raise ValueError("`document` must have at least one entry in 'results'. Received: "
                         f"{len(points)} entries")
    figure = Figure(figsize=(7, 4.5), dpi=DPI, layout="constrained")
    axes = figure.subplots()
    by_epsilon = {}
    for point in points:
        by_epsilon.setdefault(point["epsilon"], []).append(point)
    for index, epsilon in enumerate(sorted(by_epsilon)):
        color = f"C{index % 10}"
        line = sorted(by_epsilon[epsilon], key=lambda p: p["iterations"])
        steps = [p["iterations"] for p in line]
        axes.plot(steps, [p["accuracy"] for p in line], color=color, marker="o",
                  label=f"epsilon {pixels(epsilon)}")
        axes.plot(steps, [p["worst_iterate_accuracy"] for p in line], color=color,
                  linestyle="--", label=f"epsilon {pixels(epsilon)}, worst iterate")
    if document.get("clean_accuracy") is not None:
        axes.axhline(document["clean_accuracy"], color="black", linestyle=":",
                     label=f"clean {document['clean_accuracy']:.3f}")
    axes.set_xlabel("PGD steps")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("accuracy")
    axes.set_ylim(-0.02, 1.02)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    axes.set_title(_settings_title(points))
    return save_png(figure, output_png)


def _settings_title(points) -> str:
    """"white-box PGD, step size 0.0078, 1 restart(s)"; settings that differ are joined."""
    def values(key, form):
        present = {p[key] for p in points}
        return "/".join([form(v) for v in sorted(present - {None})]
                        + (["adaptive"] if None in present else []))
    return (f"{values('threat_model', lambda v: str(v).replace('_', '-'))} "
            f"{values('attack', str.upper)}, "
            f"step size {values('step_size', pixels)}, "
            f"{values('restarts', str)} restart(s)")


def pixels(value: float) -> str:
    """A size in [0, 1] pixel units, as k/255 when it is one: "8/255" or "0.03"."""
    levels = value * 255
    if levels > 0 and abs(levels - round(levels)) < 1e-6:
        return f"{round(levels)}/255"
    return f"{value:.4g}"


def save_png(figure: Figure, output_png: str) -> str:
    """Renders `figure` to a temporary PNG beside `output_png`, then renames it into place."""
    return atomic_save(output_png, FigureCanvasAgg(figure).print_png)
