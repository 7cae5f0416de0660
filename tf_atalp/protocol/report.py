"""report.md of a protocol run: every setting, the models and their training commands,
Table 1 per setting, the figures, Table 2, the sanity checks and the time taken."""

import datetime
import os
import platform
import shlex

import tensorflow as tf

from tf_atalp.evaluation.sanity import WARNING
from tf_atalp.io_utils import atomic_write_text
from tf_atalp.protocol.tables import table1_markdown, table2_markdown

REPORT_FILE = "report.md"
TRAIN_FLAGS_SHOWN = ("--defense", "--depth", "--width", "--epochs", "--seed", "--epsilon",
                     "--pgd_iterations", "--alpha", "--beta", "--image_size")


def _settings_section(document: dict) -> list[str]:
    lines = ["## Attack settings", "",
             "Every attack is untargeted L-inf PGD on the cross-entropy, pixel units on [0, 1]. "
             "Threat models: **white-box** (the gradients are the target's own; randomized "
             "targets through expectation over transformation), **gray-box** (crafted on a "
             "separately trained model of the target's architecture, scored on the target), "
             "**black-box** (crafted on a model of another architecture). Transfer images are "
             "crafted once per batch and source, and scored on every target.", ""]
    for setting in document["settings"]:
        steps = ", ".join(f"{step:.5g} at eps {e}" for e, step in setting["step_size_at"].items())
        lines.append(
            f"- **{setting['name']}**: one run of {setting['iterations']} steps, scored after "
            f"{', '.join(map(str, setting['record_at']))}; step {steps}; "
            f"{'random start' if setting['random_start'] else 'start at the clean image'}; "
            f"{setting['restarts']} restart(s) (white-box; transfer is one run).")
    protocol = document["protocol"]
    lines += ["", f"Epsilons {', '.join(f'{e:g}' for e in protocol['epsilons'])}; seed "
              f"{protocol['seed']}; batch {protocol['batch_size']}; white-box drops examples "
              f"once fooled: {protocol['drop_broken']} (identical worst-iterate numbers). "
              "Each number is the *robust accuracy*: correct on the clean image and at every "
              "scored iterate (every restart), an upper bound on the true robust accuracy; "
              "where a threat model has several sources, Table 1 shows the lowest.", "",
              "With a step of 1/256, k steps move a pixel at most k/256: in the paper setting, "
              "points with k x step < epsilon cannot reach the epsilon boundary from the clean "
              "image and measure a weaker attack than their epsilon says."]
    return lines


def _flag_lines(train_flags: str) -> list[str]:
    return [line for line in train_flags.splitlines()
            if line.split("=")[0] in TRAIN_FLAGS_SHOWN]


def _models_section(protocol) -> list[str]:
    lines = ["## Models", "", "| model | role | defense | architecture | key training flags |",
             "|---|---|---|---|---|"]
    for model in protocol.models:
        lines.append(f"| {model.name} | {model.role.replace('_', ' ')} | {model.defense} | "
                     f"{model.architecture()} | {' '.join(_flag_lines(model.train_flags))} |")
    lines += ["", "Each was made by `python train_main.py --flagfile=<model_dir>/train.flags` "
              "(train.flags, written by train_main.py, holds every flag of the run):", ""]
    for model in protocol.models:
        lines += [f"<details><summary>{model.name}: train.flags</summary>", "", "```",
                  model.train_flags.strip() or "(no train.flags)", "```", "</details>", ""]
    return lines


def _checks_section(checks: dict) -> list[str]:
    lines = ["## Sanity checks", "",
             "Carlini et al. 2019 and Athalye et al. 2018: each is a property every honest "
             "evaluation has; a violation means some attack was too weak to trust its "
             "number.", ""]
    for name, messages in checks.items():
        if not messages:
            lines.append(f"- {name.replace('_', ' ')}: holds")
            continue
        lines.append(f"- {name.replace('_', ' ')}: **{len(messages)} violation(s)**")
        lines += [f"  - **{m.split(':', 1)[0].upper()}**:{m.split(':', 1)[1]}"
                  if m.startswith(WARNING) else f"  - {m}" for m in messages]
    return lines


def _sources_section(document: dict) -> list[str]:
    if not document["sources"]:
        return []
    lines = ["", "White-box robust accuracy of each source under the same run (the yardstick: "
             "transfer numbers should be above it):", ""]
    for source, by_setting in document["sources"].items():
        for setting, numbers in by_setting.items():
            robust = ", ".join(f"eps {r['epsilon']:g}: {100 * r['robust_accuracy']:.1f}%"
                               for r in numbers["robust"])
            lines.append(f"- {source}, {setting} setting: clean "
                         f"{100 * numbers['clean_accuracy']:.1f}%, {robust}")
    return lines


def _figures_section(document: dict) -> list[str]:
    figures = document["figures"]
    lines = ["## Figure 3: accuracy against PGD iterations", ""]
    lines += [f"![Figure 3, {s}]({png})" for s, png in figures["figure3"].items()]
    lines += ["", "## Figure 4: attention maps, clean and adversarial", ""]
    lines += [f"![Figure 4]({png})" for png in figures["figure4"]] or [
        "Not drawn (no target with feature outputs, or --figure_images=0)."]
    lines += ["", "Also in TensorBoard: `tensorboard --logdir=tensorboard`.", "",
              "## Figure 6: loss landscapes", ""]
    lines += [f"![Figure 6]({png})" for png in figures["figure6"]] or ["Not drawn."]
    return lines


def write_report(protocol, document: dict) -> str:
    """Writes <output_dir>/report.md; returns its path."""
    data = document["data"]
    command = " ".join(shlex.quote(part) for part in document["command"])
    lines = ["# AT+ALP paper protocol: report", "",
             f"Made {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}"
             f" by:", "", "```", command, "```", "",
             f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU "
             f"cores, TensorFlow {tf.__version__}, Python {platform.python_version()}.", "",
             f"Data: {data['name']} {data['split']} split, {data['num_examples']} of "
             f"{data['split_size']} examples"
             + (" (class-balanced subset)" if data.get("subset") else "") + ", "
             f"{data['image_size']} px.", ""]
    lines += _settings_section(document) + [""] + _models_section(protocol)
    lines += ["## Table 1: top-1 accuracy (%) under attack", ""]
    for setting, rows in document["table1"].items():
        lines += [f"### {setting} setting", "", table1_markdown(rows), ""]
    lines += _sources_section(document) + [""] + _figures_section(document)
    lines += ["", "## Table 2: mean normalised activation in key regions", ""]
    if document["table2"]:
        lines += ["Attention map F(A) = mean_c |A_c|^2 of each conv group, upsampled to the "
                  "image, divided by its maximum, averaged over the mask's pixels, then over "
                  "the test images and the groups (1: most active everywhere in the key "
                  "regions).", "", table2_markdown(document["table2"])]
    else:
        lines += ["Not computed: no `--masks_dir` (the 17 Flowers part masks are not "
                  "available here; the code takes masks mirroring the image folder)."]
    lines += [""] + _checks_section(document["sanity_checks"])
    lines += ["", "## Time", "", f"Cells (computed when first run; resumed runs read them "
              f"back): {document['cell_seconds']:.1f} s in all.", ""]
    lines += [f"- {c['label']}: {c['seconds']:.1f} s" for c in document["cells"]]
    lines += ["", f"This run (cells read or computed, tables, figures): "
              f"{document['seconds_this_run']:.1f} s.", ""]
    path = os.path.join(protocol.config.output_dir, REPORT_FILE)
    atomic_write_text(path, "\n".join(lines))
    return path
