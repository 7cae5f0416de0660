"""Image-folder datasets (flowers17, imagenet4, dogs_vs_cats, folder) as tf.data."""

import numpy as np
import tensorflow as tf

from tf_atalp.data.config import DataConfig, DatasetInfo
from tf_atalp.data.image_check import drop_corrupt
from tf_atalp.data.images import decode_image_file, fit_image
from tf_atalp.data.listing import FolderListing, ImageFiles, list_image_folder
from tf_atalp.data.pipeline import AUTOTUNE, shard
from tf_atalp.seeds import derive_seed


def list_config_folder(config: DataConfig) -> FolderListing:
    """Lists `config.data_dir` with the split rule of `config.dataset`."""
    return list_image_folder(config.data_dir, config.dataset, config.test_fraction)


def _decodable_split(config: DataConfig, listing: FolderListing, split: str) -> ImageFiles:
    """The files of `split` that decode (corrupt ones raise, or are skipped)."""
    return drop_corrupt(listing.split(split), config.skip_corrupt,
                        f"{split} split of {config.data_dir!r}")


def split_files(config: DataConfig, split: str) -> ImageFiles:
    """The files of `split` in the order the evaluation dataset reads them."""
    return _decodable_split(config, list_config_folder(config), split)


def folder_dataset_info(config: DataConfig, decode: bool = False) -> DatasetInfo:
    """Class names and split sizes from the file listing.

    With `decode`, every file is decoded once first (see `drop_corrupt`) and
    the sizes count only the files that decode.
    """
    listing = list_config_folder(config)
    train, test = listing.train, listing.test
    if decode:
        train, test = (_decodable_split(config, listing, s) for s in ("train", "test"))
    return DatasetInfo(name=config.dataset, num_classes=len(listing.class_names),
                       class_names=listing.class_names, num_train=len(train.paths),
                       num_test=len(test.paths),
                       origin=f"image folder {config.data_dir}", split_rule=listing.split_rule)


def folder_examples(config: DataConfig, split: str, training: bool,
                    input_context: tf.distribute.InputContext | None
                    ) -> tuple[tf.data.Dataset, int]:
    """Decoded, resized examples of one split and this pipeline's number of them.

    Corrupt files raise (or are skipped, with skip_corrupt) before the dataset
    is built. Training reads the files in a fixed seeded permutation, so a
    class-sorted folder mixes even through a small shuffle buffer.

    Returns:
        (dataset of (image uint8 [S, S, 3], label int32 []), number of examples); with
        resize="keep_aspect" in training, images keep their aspect ratio (short side S)
        and the pipeline crops them.
    """
    files = split_files(config, split)
    paths = np.array(files.paths)
    labels = np.array(files.labels, dtype=np.int32)
    if training:
        order = np.random.default_rng(derive_seed(config.seed, "files")).permutation(len(paths))
        paths, labels = paths[order], labels[order]
    dataset = shard(tf.data.Dataset.from_tensor_slices((paths, labels)), input_context)
    size = config.image_size
    dataset = dataset.map(
        lambda path, label: (fit_image(decode_image_file(path), size, config.resize, training),
                             label), num_parallel_calls=AUTOTUNE)
    return dataset, int(dataset.cardinality())
