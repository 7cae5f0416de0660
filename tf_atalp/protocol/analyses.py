"""The protocol's figures and Table 2, drawn from its cells and models.

- Figure 3: worst-iterate accuracy against PGD iterations, a panel per
  (threat model, source, epsilon), a line per target, one PNG per setting.
- Figure 4: for a few test images, each target's attention maps on the
  clean image and on an adversarial image crafted on the first gray-box
  source (else the first black-box source, else white-box on each target),
  PNG per image and TensorBoard.
- Figure 6: each target's loss landscape around one test image.
- Table 2: the key-region activation (`analysis.key_regions`) of each target
  on clean images and on the first setting's transfer images.
"""

import os

import numpy as np
import tensorflow as tf
from absl import logging

from tf_atalp.analysis.attention_figure import (
    ADVERSARIAL, CLEAN, attention_panels, write_attention_summaries)
from tf_atalp.analysis.key_regions import KeyRegionTally
from tf_atalp.analysis.loss_landscape import loss_landscape
from tf_atalp.attacks.model_fns import inference_logits
from tf_atalp.models.outputs import features_of
from tf_atalp.protocol.figures import plot_attention_grid, plot_loss_landscapes, plot_sweep
from tf_atalp.protocol.models import BLACK_BOX_SOURCE, GRAY_BOX_SOURCE
from tf_atalp.protocol.tables import SINGLE_STEP_KIND, TRANSFER_KIND

TENSORBOARD_DIR = "tensorboard"
THREAT_ORDER = {"gray_box": 0, "black_box": 1, "white_box": 2}


def has_features(model) -> bool:
    """Whether a Keras model's outputs include feature maps (attention can be drawn)."""
    try:
        return bool(features_of(model.output))
    except (AttributeError, ValueError):
        return False


def with_features(models: dict) -> dict:
    """The entries of {name: model} whose models output feature maps."""
    return {name: model for name, model in models.items() if has_features(model)}


def clean_key_regions(protocol, model) -> dict | None:
    """{"clean": {group: mean, "mean": ...}} of a model on the clean test images, or None."""
    if not has_features(model):
        return None
    tally, offsets = KeyRegionTally(), protocol.data.offsets()
    for (images, labels), start in zip(protocol.data.batches, offsets):
        tally.add("clean", model, images, protocol.masks[start:start + int(labels.shape[0])])
    return tally.means()


def table2(cells: list[dict]) -> dict:
    """{target: {column: {group: mean, "mean": mean}}}: clean, then each transfer of the
    first setting that has key-region numbers (column "<threat model> <epsilon> (<source>)")."""
    table = {}
    first_setting = next((c["spec"]["setting"] for c in cells if "setting" in c["spec"]), None)
    for cell in cells:
        spec, result = cell["spec"], cell["result"]
        if spec["kind"] == SINGLE_STEP_KIND and result.get("key_regions"):
            table.setdefault(spec["target"], {})["clean"] = result["key_regions"]["clean"]
        if spec["kind"] == TRANSFER_KIND and spec["setting"] == first_setting:
            for target, by_epsilon in (result.get("key_regions") or {}).items():
                for epsilon, row in by_epsilon.items():
                    column = f"{spec['threat_model']} {epsilon} ({spec['source']})"
                    table.setdefault(target, {})[column] = row
    return table


def figure_targets(protocol) -> list:
    """The targets drawn in the figures (`figure_targets`, else all)."""
    chosen = protocol.config.figure_targets
    return [t for t in protocol.targets if chosen is None or t.name in chosen]


def _sweep_panels(series: list[dict], setting: str, targets=None) -> list[dict]:
    """Figure 3's panels; paired sources (one per target) share one panel per epsilon."""
    panels = {}
    for s in series:
        if s["setting"] != setting or (targets is not None and s["target"] not in targets):
            continue
        source = "each target's paired copy" if s.get("paired") else (s["source"] or "")
        key = (THREAT_ORDER.get(s["threat_model"], 3), source, s["epsilon"])
        via = "white-box" if s["source"] is None else (
            f"{s['threat_model'].replace('_', '-')} from {source}")
        panel = panels.setdefault(key, {
            "title": f"{via}, eps {s['epsilon']:g}, step {s['step_size']:.4g}"
                     + (", random start" if s["random_start"] else ""), "lines": {}})
        panel["lines"][s["target"]] = [(p["iterations"], p["worst_iterate_accuracy"])
                                       for p in s["points"]]
    return [panels[k] for k in sorted(panels)]


def _figure_indices(num_examples: int, count: int) -> list[int]:
    """`count` examples spread over the test set (which is in class order)."""
    count = min(count, num_examples)
    return sorted({int(i) for i in np.linspace(0, num_examples - 1, count)}) if count else []


def _examples(protocol, indices):
    images = tf.concat([x for x, _ in protocol.data.batches], axis=0)
    labels = tf.concat([y for _, y in protocol.data.batches], axis=0)
    return tf.gather(images, indices), tf.gather(labels, indices)


def _figure4(protocol, indices) -> list[str]:
    config = protocol.config
    networks = with_features({t.name: protocol.loaded(t) for t in figure_targets(protocol)})
    if not networks or not indices:
        return []
    images, labels = _examples(protocol, indices)
    setting = config.settings[0]
    attack = setting.pgd(config.figure_epsilon)
    crafted_on = next((s for role in (GRAY_BOX_SOURCE, BLACK_BOX_SOURCE)
                       for s in protocol.sources if s.role == role), None)
    if crafted_on is not None:
        adversarial = attack.attack(inference_logits(protocol.loaded(crafted_on)), images,
                                    labels, seed=config.seed).adversarial_images
        how = (f"{crafted_on.threat_model.replace('_', '-')} {setting.name} PGD "
               f"(eps {config.figure_epsilon:g}) crafted on {crafted_on.name}")
        adversarial_of = {name: adversarial for name in networks}
    else:
        adversarial_of = {name: attack.attack(inference_logits(net), images, labels,
                                              seed=config.seed).adversarial_images
                          for name, net in networks.items()}
        how = f"white-box {setting.name} PGD (eps {config.figure_epsilon:g}) on each model"
    panels = {name: attention_panels({name: net}, images, adversarial_of[name])[name]
              for name, net in networks.items()}
    groups = list(next(iter(panels.values()))[CLEAN]["maps"])
    unlike = [name for name, p in panels.items() if list(p[CLEAN]["maps"]) != groups]
    if unlike:  # e.g. an ensemble's "<member>_<group>" maps
        logging.warning("Figure 4 leaves out %s: their feature maps are not %s.", unlike, groups)
        panels = {name: p for name, p in panels.items() if name not in unlike}
    names = protocol.data.class_names
    paths = []
    for row_index, example in enumerate(indices):
        rows = []
        for name, by_which in panels.items():
            for which in (CLEAN, ADVERSARIAL):
                predicted = names[by_which[which]["predictions"][row_index]]
                rows.append({"label": f"{name}, {which}: {predicted}",
                             "adversarial": which == ADVERSARIAL,
                             "maps": {g: m[row_index] for g, m in by_which[which]["maps"].items()}})
        first = next(iter(adversarial_of.values()))
        title = (f"Figure 4, test example {example} (label {names[int(labels[row_index])]}); "
                 f"adversarial: {how}")
        paths.append(plot_attention_grid(
            images[row_index].numpy(), first[row_index].numpy(), rows, groups, title,
            os.path.join(config.output_dir, f"figure4_example{example}.png")))
    write_attention_summaries(os.path.join(config.output_dir, TENSORBOARD_DIR),
                              {n: p for n, p in panels.items()}, images,
                              next(iter(adversarial_of.values())))
    return paths


def _figure6(protocol, index: int) -> list[str]:
    config = protocol.config
    if config.landscape_grid == 0:
        return []
    images, labels = _examples(protocol, [index])
    radius = config.landscape_radius or min(config.epsilons)
    landscapes = {t.name: loss_landscape(protocol.loaded(t), images[0].numpy(),
                                         int(labels[0]), radius, config.landscape_grid,
                                         seed=config.seed)
                  for t in figure_targets(protocol)}
    title = (f"Figure 6: cross-entropy at clip(x + a sign(grad) + b r2), r2 Rademacher, "
             f"|a|, |b| <= {radius:g}; test example {index}")
    return [plot_loss_landscapes(landscapes, title, os.path.join(
        config.output_dir, "figure6_loss_landscape.png"))]


def draw_figures(protocol, collected: dict) -> dict:
    """Draws Figures 3, 4 and 6; returns {"figure3": {setting: png}, "figure4": [...], ...}."""
    config = protocol.config
    figures = {"figure3": {}, "figure4": [], "figure6": []}
    for setting in config.settings:
        panels = _sweep_panels(collected["series"], setting.name,
                               {t.name for t in figure_targets(protocol)})
        if panels:
            figures["figure3"][setting.name] = plot_sweep(
                panels, collected["clean"], f"Figure 3, {setting.name} setting: worst-iterate "
                "accuracy against PGD iterations",
                os.path.join(config.output_dir, f"figure3_{setting.name}.png"))
    indices = _figure_indices(protocol.data.num_examples, config.figure_images)
    figures["figure4"] = _figure4(protocol, indices)
    figures["figure6"] = _figure6(protocol, indices[0] if indices else 0)
    return {k: ([os.path.basename(p) for p in v] if isinstance(v, list)
                else {s: os.path.basename(p) for s, p in v.items()})
            for k, v in figures.items()}
