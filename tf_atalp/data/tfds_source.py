"""TFDS datasets ("tfds:<name>", and flowers17 / imagenet4 / dogs_vs_cats with source="tfds").

`config.data_dir` is the TFDS data_dir, `config.manual_dir` the manual dir of
our builders. A dataset not yet prepared is prepared on first use (our
builders from the manual dir; others are downloaded by TFDS).
"""

import tensorflow as tf
import tensorflow_datasets as tfds

from tf_atalp.data import tfds_compat  # noqa: F401 (before any builder is prepared)
from tf_atalp.data import (  # noqa: F401 (registers the builders)
    tfds_dogs_vs_cats, tfds_flowers17, tfds_imagenet4)
from tf_atalp.data.config import OWN_TFDS_BUILDERS, DataConfig, DatasetInfo
from tf_atalp.data.images import fit_image, to_rgb
from tf_atalp.data.listing import check_folder
from tf_atalp.data.pipeline import AUTOTUNE, shard
from tf_atalp.data.tfds_common import ImageFilesBuilder
from tf_atalp.seeds import derive_seed


def _builder_name(config: DataConfig) -> str:
    """The registered builder name of "name[/config][:version]"."""
    return config.tfds_name.split("/")[0].split(":")[0]


def _builder_kwargs(config: DataConfig) -> dict:
    own = _builder_name(config) in OWN_TFDS_BUILDERS.values()
    return {"skip_corrupt": config.skip_corrupt} if own else {}


def _prepare_kwargs(config: DataConfig) -> dict:
    return {"download_config": tfds.download.DownloadConfig(manual_dir=config.manual_dir)}


def _tfds_split(config: DataConfig, split: str) -> str:
    return getattr(config, f"tfds_{split}_split")


def _label_feature(info: tfds.core.DatasetInfo, config: DataConfig) -> tfds.features.ClassLabel:
    label = info.features[info.supervised_keys[1]] if info.supervised_keys else None
    if not isinstance(label, tfds.features.ClassLabel):
        raise ValueError(f"`dataset` must be a TFDS dataset with (image, class label) supervised "
                         f"keys. Received: dataset={config.dataset!r}")
    return label


def _builder(config: DataConfig) -> tfds.core.DatasetBuilder:
    return tfds.builder(config.tfds_name, data_dir=config.data_dir, **_builder_kwargs(config))


def _split_size(info: tfds.core.DatasetInfo, config: DataConfig, split: str) -> int:
    name = _tfds_split(config, split)
    try:
        return info.splits[name].num_examples
    except (KeyError, ValueError):
        raise ValueError(f"`tfds_{split}_split` must name a split of {config.tfds_name!r} "
                         f"(splits: {sorted(info.splits)}). "
                         f"Received: tfds_{split}_split={name!r}") from None


def check_tfds_config(config: DataConfig) -> None:
    """Raises on an unknown builder, a missing or (for our builders, not yet prepared)
    malformed `manual_dir`, or (once prepared) unknown splits."""
    name = _builder_name(config)
    try:
        tfds.builder_cls(name)
    except tfds.core.registered.DatasetNotFoundError:
        raise ValueError(f"`dataset` must name a TFDS dataset; {name!r} is none. "
                         f"Received: dataset={config.dataset!r}") from None
    if config.manual_dir is not None:
        check_folder(config.manual_dir, "manual_dir")
    builder = _builder(config)
    if builder.is_prepared():
        for split in ("train", "test"):
            _split_size(builder.info, config, split)
    elif isinstance(builder, ImageFilesBuilder):
        builder.check_manual_dir(config.manual_dir)


def tfds_dataset_info(config: DataConfig) -> DatasetInfo:
    """Class names and split sizes from the TFDS metadata (preparing the dataset if needed)."""
    builder = _builder(config)
    builder.download_and_prepare(**_prepare_kwargs(config))
    label = _label_feature(builder.info, config)
    return DatasetInfo(name=config.dataset, num_classes=label.num_classes,
                       class_names=tuple(label.names),
                       num_train=_split_size(builder.info, config, "train"),
                       num_test=_split_size(builder.info, config, "test"),
                       origin=f"TFDS {config.tfds_name} (data_dir {config.data_dir or 'default'})",
                       split_rule=f"TFDS splits {config.tfds_train_split!r} (train) and "
                                  f"{config.tfds_test_split!r} (test)")


def tfds_examples(config: DataConfig, split: str, training: bool,
                  input_context: tf.distribute.InputContext | None
                  ) -> tuple[tf.data.Dataset, int]:
    """Resized examples of one split via `tfds.load`, and their number (-1 if unknown).

    Labels outside [0, num_classes) stop the pipeline with an error. With
    `skip_corrupt`, records TFDS cannot decode are dropped (tf.data logs each).

    Returns:
        (dataset of (image uint8 [S, S, 3], label int32 []), number of examples).
    """
    read_config = tfds.ReadConfig(shuffle_seed=derive_seed(config.seed, "tfds_files"),
                                  try_autocache=False)
    dataset, info = tfds.load(
            config.tfds_name, split=_tfds_split(config, split), data_dir=config.data_dir,
            as_supervised=True, shuffle_files=training, with_info=True, read_config=read_config,
            builder_kwargs=_builder_kwargs(config),
            download_and_prepare_kwargs=_prepare_kwargs(config))
    num_classes = _label_feature(info, config).num_classes
    dataset = shard(dataset, input_context)
    count = int(dataset.cardinality())
    if config.skip_corrupt:
        dataset = dataset.ignore_errors(log_warning=True)
    size = config.image_size
    message = f"Labels of {config.dataset} must be in [0, {num_classes})."

    def preprocess(image, label):
        label = tf.cast(label, tf.int32)
        checks = [tf.debugging.assert_non_negative(label, message=message),
                  tf.debugging.assert_less(label, num_classes, message=message)]
        with tf.control_dependencies(checks):
            return fit_image(to_rgb(image), size, config.resize, training), tf.identity(label)

    return dataset.map(preprocess, num_parallel_calls=AUTOTUNE), count
