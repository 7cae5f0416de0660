"""The protocol's figures: Figure 3 (accuracy against iterations), 4 (attention), 6 (loss).

The one place they are drawn, from numbers and tensors computed elsewhere
(`tf_atalp.analysis`, the protocol's cells): PNGs on matplotlib's Agg canvas
(no pyplot), written atomically as `tf_atalp.plots` does, and Figure 4's
maps as TensorBoard images.
"""

import math

import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from tf_atalp.analysis.attention_maps import ADVERSARIAL, CLEAN
from tf_atalp.plots import DPI, save_png

ATTENTION_DPI = 64  # Figure 4 has a row per model and image kind: keep the PNG small


def plot_sweep(panels: list[dict], clean: dict[str, float], title: str, output_png: str) -> str:
    """Figure 3: a panel per (threat model, source, epsilon), a line per target.

    Args:
      panels: [{"title": str, "lines": {target: [(k, accuracy), ...]}}, ...].
      clean: {target: clean accuracy} (dotted, in the line's color).
      title: the figure's title (the attack setting).
    """
    if not panels:
        raise ValueError("`panels` must not be empty.")
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(4.6 * columns, 3.6 * rows + 0.6), dpi=DPI, layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    names = sorted({name for panel in panels for name in panel["lines"]})
    colors = {name: f"C{i % 10}" for i, name in enumerate(names)}
    for ax, panel in zip(axes, panels):
        for name, line in sorted(panel["lines"].items()):
            steps, values = zip(*sorted(line))
            ax.plot(steps, values, marker=".", color=colors[name], label=name)
            if name in clean:
                ax.axhline(clean[name], color=colors[name], linestyle=":", linewidth=0.8)
        ax.set_title(panel["title"], fontsize="small")
        ax.set_xlabel("PGD iterations")
        ax.set_ylabel("accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=colors[name], marker=".") for name in names]
    figure.legend(handles, names, loc="outside lower center", ncol=min(4, len(names)),
                  fontsize="small")
    figure.suptitle(title + " (dotted: clean accuracy)", fontsize="medium")
    return save_png(figure, output_png)


def plot_attention_grid(image, adversarial_image, rows: list[dict], groups: list[str],
                        title: str, output_png: str) -> str:
    """Figure 4 for one test image: input, then each group's attention map, a row per panel.

    Args:
      image, adversarial_image: float [S, S, 3] in [0, 1].
      rows: [{"label": str, "adversarial": bool, "maps": {group: [h, w] in [0, 1]}}].
      groups: the column order.
    """
    figure = Figure(figsize=(1.7 * (len(groups) + 1), 1.8 * len(rows) + 0.5),
                    dpi=ATTENTION_DPI, layout="constrained")
    axes = figure.subplots(len(rows), len(groups) + 1, squeeze=False)
    for r, row in enumerate(rows):
        axes[r, 0].imshow(np.clip(adversarial_image if row["adversarial"] else image, 0, 1))
        axes[r, 0].set_title(row["label"].replace(", ", "\n", 1), fontsize="x-small")
        for c, group in enumerate(groups, start=1):
            axes[r, c].imshow(row["maps"][group], cmap="jet", vmin=0, vmax=1,
                              interpolation="bilinear")
            if r == 0:
                axes[r, c].set_title(group, fontsize="small")
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    figure.suptitle(title, fontsize="small")
    return save_png(figure, output_png)


def write_attention_summaries(log_dir: str, panels: dict, clean, adversarial,
                              step: int = 0) -> None:
    """Figure 4 in TensorBoard: "images/<which>" and "attention/<name>/<group>/<which>".

    Args:
      panels: `tf_atalp.analysis.attention_maps.attention_panels`' dict.
      clean, adversarial: float [N, S, S, 3] in [0, 1].
    """
    writer = tf.summary.create_file_writer(log_dir)
    count = int(np.shape(clean)[0])
    with writer.as_default(step=step):
        tf.summary.image(f"images/{CLEAN}", tf.convert_to_tensor(clean), max_outputs=count)
        tf.summary.image(f"images/{ADVERSARIAL}", tf.convert_to_tensor(adversarial),
                         max_outputs=count)
        for name, by_which in panels.items():
            for which, panel in by_which.items():
                for group, maps in panel["maps"].items():
                    tf.summary.image(f"attention/{name}/{group}/{which}",
                                     maps[..., None].astype(np.float32), max_outputs=count)
    writer.flush()
    writer.close()


def plot_loss_landscapes(landscapes: dict[str, dict], title: str, output_png: str) -> str:
    """Figure 6: a 3-D surface of `loss_landscape`'s grid per model."""
    if not landscapes:
        raise ValueError("`landscapes` must not be empty.")
    columns = min(3, len(landscapes))
    rows = math.ceil(len(landscapes) / columns)
    figure = Figure(figsize=(4.4 * columns, 3.9 * rows + 0.5), dpi=DPI, layout="constrained")
    for index, (name, surface) in enumerate(landscapes.items(), start=1):
        ax = figure.add_subplot(rows, columns, index, projection="3d")
        a, b = np.meshgrid(surface["a"], surface["b"], indexing="ij")
        ax.plot_surface(a, b, np.asarray(surface["loss"]), cmap="viridis", linewidth=0)
        ax.set_xlabel("a (sign of gradient)", fontsize="x-small")
        ax.set_ylabel("b (Rademacher)", fontsize="x-small")
        ax.set_zlabel("loss", fontsize="x-small")
        ax.set_title(name, fontsize="small")
        ax.tick_params(labelsize="xx-small")
    figure.suptitle(title, fontsize="small")
    return save_png(figure, output_png)
