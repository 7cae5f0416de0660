"""A study's own figures (PNG, matplotlib's Agg canvas, written atomically).

- robust accuracy against training time: what each entry costs and buys;
- held-out robust and clean accuracy per epoch (mean over seeds): the curve
  that shows whether training stopped improving, and robust overfitting.
Figure 3 (accuracy against PGD iterations) reuses the protocol's drawing.
"""

import numpy as np
from matplotlib.figure import Figure

from tf_atalp.plots import DPI, save_png


def plot_robust_against_cost(points: list[dict], title: str, output_png: str) -> str:
    """One marker per entry: x = training seconds, y = robust accuracy, bars = seed spread.

    points: [{"label", "seconds": [per seed], "robust": [per seed] (fractions)}].
    """
    if not points:
        raise ValueError("`points` must not be empty.")
    figure = Figure(figsize=(7.0, 4.8), dpi=DPI, layout="constrained")
    ax = figure.subplots()
    for index, point in enumerate(points):
        seconds, robust = np.asarray(point["seconds"]), 100 * np.asarray(point["robust"])
        xerr = seconds.std(ddof=1) if len(seconds) > 1 else None
        yerr = robust.std(ddof=1) if len(robust) > 1 else None
        ax.errorbar(seconds.mean(), robust.mean(), xerr=xerr, yerr=yerr, fmt="o",
                    color=f"C{index % 10}", capsize=3, label=point["label"])
        ax.annotate(point["label"], (seconds.mean(), robust.mean()), fontsize="x-small",
                    xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("training seconds (mean over seeds; bars: one std)")
    ax.set_ylabel("robust accuracy, % (mean over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small", ncol=2)
    figure.suptitle(title, fontsize="small")
    return save_png(figure, output_png)


def plot_training_curves(curves: dict[str, list[dict]], title: str, output_png: str) -> str:
    """Held-out robust (solid) and clean (dotted) accuracy per epoch, mean over seeds.

    curves: {label: [{"epoch": [...], "val_robust_accuracy": [...],
    "val_clean_accuracy": [...]}, one per seed]}; None marks an epoch not
    measured. Returns `output_png`.
    """
    return save_png(training_curves_figure(curves, title), output_png)


def training_curves_figure(curves: dict[str, list[dict]], title: str) -> Figure:
    """The Figure `plot_training_curves` draws (one axes)."""
    figure = Figure(figsize=(7.5, 4.8), dpi=DPI, layout="constrained")
    ax = figure.subplots()
    drawn = 0
    for index, (label, runs) in enumerate(curves.items()):
        color = f"C{index % 10}"
        for key, style in (("val_robust_accuracy", "-"), ("val_clean_accuracy", ":")):
            series = [run[key] for run in runs if run.get(key)]
            if not series:
                continue
            length = min(len(s) for s in series)
            values = np.array([[np.nan if v is None else v for v in s[:length]] for s in series],
                              dtype=float)
            # Epochs no seed measured (RobustAccuracy runs every n epochs) are left out, so
            # the line joins the measured ones.
            measured = np.any(np.isfinite(values), axis=0)
            mean = np.nanmean(values[:, measured], axis=0)
            epochs = np.asarray(runs[0]["epoch"][:length])[measured]
            ax.plot(epochs, 100 * mean, style, color=color, marker=".",
                    label=label if style == "-" else None)
            drawn += 1
    if not drawn:
        raise ValueError("No run has val_robust_accuracy or val_clean_accuracy to draw.")
    ax.set_xlabel("epoch")
    ax.set_ylabel("held-out accuracy, % (mean over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small", ncol=2, title="solid: robust (RobustAccuracy PGD); "
              "dotted: clean", title_fontsize="x-small")
    figure.suptitle(title, fontsize="small")
    return figure
