"""TFDS builder `oxford_flowers17`: the 17 Category Flower Dataset, 1088 train / 272 test.

Sources, in order: the manual dir if it exists and is not empty, holding
either the official flat layout (`jpg/image_0001.jpg` .. or the images
themselves) or class folders (`NN_classname/image_XXXX.jpg`, as in
../shared/data/flowers17, with or without train/ and test/); else the
official archive is downloaded. Classes and split follow `flowers17.py`.
"""

import os

import tensorflow_datasets as tfds

from tf_atalp.data import flowers17
from tf_atalp.data.listing import (
    ImageFiles, check_folder, image_files, list_image_folder, subfolders)
from tf_atalp.data.tfds_common import ImageFilesBuilder

URL = "https://www.robots.ox.ac.uk/~vgg/data/flowers/17/17flowers.tgz"
HOMEPAGE = "https://www.robots.ox.ac.uk/~vgg/data/flowers/17/"
CITATION = """@inproceedings{Nilsback06,
  author = "Nilsback, M-E. and Zisserman, A.",
  title = "A Visual Vocabulary for Flower Classification",
  booktitle = "IEEE Conference on Computer Vision and Pattern Recognition",
  volume = "2", pages = "1447--1454", year = "2006"}"""


def _flat_image_dir(root: str) -> str | None:
    """The folder holding image_NNNN.jpg files directly, if `root` has the flat layout."""
    if "jpg" in subfolders(root):
        return os.path.join(root, "jpg")
    if any(flowers17.is_official_name(name) for name in os.listdir(root)):
        return root
    return None


def _list_flat(image_dir: str) -> dict[str, ImageFiles]:
    """Splits image_NNNN.jpg files by number: class (n-1)//80, positions 1-64 train."""
    pairs = {"train": [], "test": []}
    for path in image_files(image_dir):
        number = flowers17.file_number(os.path.basename(path))
        pairs[flowers17.split_of(number)].append((path, flowers17.class_of(number)))
    return {split: ImageFiles.from_pairs(p) for split, p in pairs.items()}


def _list_class_folders(root: str) -> dict[str, ImageFiles]:
    listing = list_image_folder(root, "flowers17")
    if listing.class_names != flowers17.CLASS_NAMES:
        raise ValueError(
                f"17 Flowers class folders must be NN_name in the official order "
                f"{flowers17.CLASS_NAMES}. Received: {listing.class_names} in {root!r}")
    return {"train": listing.train, "test": listing.test}


def list_flowers17_source(root: str) -> dict[str, ImageFiles]:
    """The train and test files of a flat or class-folder 17 Flowers directory."""
    check_folder(root, "manual_dir")
    flat_dir = _flat_image_dir(root)
    return _list_flat(flat_dir) if flat_dir else _list_class_folders(root)


class OxfordFlowers17(ImageFilesBuilder):
    """Oxford 17 Category Flower Dataset; per class images 1-64 train, 65-80 test."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: 64 train / 16 test images per class."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""Optional (without it {URL} is downloaded).
    Put in manual_dir either the archive's jpg/ folder (image_0001.jpg ..
    image_1360.jpg) or 17 class folders NN_classname/image_XXXX.jpg."""

    def _info(self) -> tfds.core.DatasetInfo:
        return self._image_info(flowers17.CLASS_NAMES, "Oxford 17 Category Flower Dataset.",
                                HOMEPAGE, CITATION)

    def _split_generators(self, dl_manager):
        try:
            root = os.fspath(dl_manager.manual_dir)
        except AssertionError:  # TFDS: no manual dir, or an empty one.
            root = os.fspath(dl_manager.download_and_extract(URL))
        files = list_flowers17_source(root)
        return {split: self._generate_examples(f, root, split) for split, f in files.items()}
