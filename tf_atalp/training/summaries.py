"""The text a person reads before and after a training run: the data, then the outcome."""

from tf_atalp.data.config import DataConfig, DatasetInfo
from tf_atalp.model_dir import (
    HISTORY_FILE, MODEL_FILE, SAVED_MODEL_DIR, TRAIN_RESULTS_FILE, TRAINING_CURVES_FILE,
    read_robust_accuracy_record)

_MAX_CLASS_NAMES_SHOWN = 8
# The metrics of the end-of-run summary, in order, with their labels.
_TRAIN_METRICS = (("loss", "loss"), ("clean_accuracy", "clean accuracy"),
                  ("adversarial_accuracy", "adversarial accuracy (training PGD)"))
_TEST_METRICS = (("val_clean_accuracy", "clean accuracy"),
                 ("val_adversarial_accuracy", "PGD accuracy (validation attack)"),
                 ("val_robust_accuracy", "robust accuracy (RobustAccuracy callback's PGD)"))


def _class_names(names) -> str:
    shown = ", ".join(names[:_MAX_CLASS_NAMES_SHOWN])
    more = len(names) - _MAX_CLASS_NAMES_SHOWN
    return shown + (f", ... ({more} more)" if more > 0 else "")


def dataset_summary(config: DataConfig, info: DatasetInfo, steps_per_epoch: int) -> str:
    """Where the data come from, how they were split and how much of them a run sees."""
    lines = [f"Dataset {info.name}: {info.origin or config.resolved_source}",
             f"  classes  {info.num_classes}: {_class_names(list(info.class_names))}",
             f"  split    {info.split_rule or 'as the source defines it'}",
             f"  sizes    train {info.num_train}, test {info.num_test} images, "
             f"{config.image_size}x{config.image_size} px"
             + (" (short side resized, then cropped)" if config.resize == "keep_aspect"
                else ""),
             f"  epoch    {steps_per_epoch} steps of batch {config.batch_size}"
             + (", augmented (pad-and-crop, flip)" if config.augment else "")]
    return "\n".join(lines)


def _metric_line(label: str, metrics: dict, names) -> str | None:
    parts = [f"{text} {metrics[key]:.4f}" for key, text in names if key in metrics]
    return f"  {label:<9}{', '.join(parts)}" if parts else None


def run_summary(model_dir: str, results: dict) -> str:
    """The end of a run: data, epochs, time, precision and the last epoch's metrics.

    With the RobustAccuracy callback's record in model_dir, a line says what
    its robust accuracy measures: the attack and the images (how many, of
    how many classes).
    """
    metrics = results.get("final_metrics", {})
    precision = results.get("precision", {}).get("policy", "unknown")
    lines = [
        f"Training finished: {model_dir}",
        f"  data     {results['dataset']}: {results['num_train']} train / "
        f"{results['num_test']} test images, {results['num_classes']} classes",
        f"  epochs   {results['epochs']} ({results['epochs_run_by_this_process']} run by this "
        f"process), {results['steps_per_epoch']} steps each, precision {precision}",
        f"  time     {results.get('training_seconds', 0.0):.1f} s of training in all, "
        f"{results.get('seconds_this_process', 0.0):.1f} s in this process",
    ]
    for label, names in (("train", _TRAIN_METRICS), ("test", _TEST_METRICS)):
        line = _metric_line(label, metrics, names)
        if line:
            lines.append(line)
    record = read_robust_accuracy_record(model_dir)
    if record is not None and record["name"] in metrics:
        lines.append(f"  robust   {record['name']}: {record['text']}")
    lines.append(f"  files    {MODEL_FILE}, {SAVED_MODEL_DIR}/, {HISTORY_FILE}, "
                 f"{TRAINING_CURVES_FILE}, {TRAIN_RESULTS_FILE}")
    return "\n".join(lines)
