"""TFDS builder `dogs_vs_cats`: Kaggle Dogs vs Cats in the paper's 8000 train / 2000 test split.

Built only from a manual dir (nothing is downloaded) laid out as the folder
source reads `--dataset=dogs_vs_cats`: `train/{cats,dogs}/*` and
`test/{cats,dogs}/*` (as in ../shared/data/dogs_vs_cats; the held-out folder
may also be `val/` or `validation/`). The listing is the folder source's
(`listing.list_image_folder`), so both sources agree on the split, the
order (by class, then file name) and the labels: cats 0, dogs 1.
"""

import os

import tensorflow_datasets as tfds

from tf_atalp.data.listing import ImageFiles, list_image_folder
from tf_atalp.data.tfds_common import ImageFilesBuilder

DATASET = "dogs_vs_cats"  # the --dataset name, whose folder listing rules apply
CLASS_NAMES = ("cats", "dogs")  # label order: the sorted class-folder names
HOMEPAGE = "https://www.kaggle.com/c/dogs-vs-cats"
CITATION = """@inproceedings{elson2007asirra,
  author = {Elson, Jeremy and Douceur, John (JD) and Howell, Jon and Saul, Jared},
  title = {Asirra: A CAPTCHA that Exploits Interest-Aligned Manual Image Categorization},
  booktitle = {ACM Conference on Computer and Communications Security (CCS)},
  year = {2007}}"""
LAYOUT = "train/{cats,dogs}/ and test/{cats,dogs}/"


def list_dogs_vs_cats_source(root: str) -> dict[str, ImageFiles]:
    """The train and test files of a Dogs vs Cats folder; a one-line ValueError if malformed."""
    listing = list_image_folder(root, DATASET, what="manual_dir")
    if listing.class_names != CLASS_NAMES:
        raise ValueError(
                f"The dogs_vs_cats class folders must be {CLASS_NAMES}. "
                f"Received: {listing.class_names} in {os.path.join(root, 'train')!r}")
    test_classes = tuple(CLASS_NAMES[label] for label in sorted(set(listing.test.labels)))
    if test_classes != CLASS_NAMES:
        raise ValueError(f"The dogs_vs_cats test split must hold images of {CLASS_NAMES} "
                         f"({LAYOUT}). Received: test classes {test_classes} in {root!r}")
    return {"train": listing.train, "test": listing.test}


class DogsVsCats(ImageFilesBuilder):
    """Kaggle Dogs vs Cats, split as in the manual dir's train/ and test/ folders."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: the manual dir's train/ and test/ folders."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = """Put the images in manual_dir as train/cats/*.jpg,
    train/dogs/*.jpg, test/cats/*.jpg and test/dogs/*.jpg (the paper's split: 4000 + 4000
    train, 1000 + 1000 test)."""

    def check_manual_dir(self, manual_dir: str | None) -> None:
        """Raises a one-line ValueError unless `manual_dir` (None: TFDS's default,
        <data_dir>/downloads/manual) is a well-formed Dogs vs Cats folder."""
        if manual_dir is None:
            default = os.path.join(os.fspath(self.data_dir_root), "downloads", "manual")
            if not os.path.isdir(default):
                raise ValueError(
                        f"`manual_dir` must be set to build dogs_vs_cats (nothing is downloaded; "
                        f"the TFDS default {default!r} does not exist): a folder holding "
                        f"{LAYOUT}. Received: manual_dir=None")
            manual_dir = default
        list_dogs_vs_cats_source(manual_dir)

    def _info(self) -> tfds.core.DatasetInfo:
        return self._image_info(CLASS_NAMES, "Kaggle Dogs vs Cats (labels: cats 0, dogs 1).",
                                HOMEPAGE, CITATION)

    def _split_generators(self, dl_manager):
        try:
            root = os.fspath(dl_manager.manual_dir)
        except AssertionError:  # TFDS: the manual dir does not exist or is empty.
            raise ValueError(f"`manual_dir` must be an existing, non-empty directory holding "
                             f"{LAYOUT} (dogs_vs_cats downloads nothing).") from None
        files = list_dogs_vs_cats_source(root)
        return {split: self._generate_examples(f, root, split) for split, f in files.items()}
