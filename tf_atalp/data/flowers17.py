"""The Oxford 17 Category Flower Dataset: official class order and our train/test rule.

The official archive numbers the images image_0001.jpg .. image_1360.jpg; class
k (0-based, in `CLASS_NAMES` order) holds the numbers 80k+1 .. 80k+80. Within
each class, the images at positions 1-64 are train and 65-80 test
(1088 / 272 images).
"""

import re

CLASS_NAMES = (
        "daffodil", "snowdrop", "lily_valley", "bluebell", "crocus", "iris", "tigerlily",
        "tulip", "fritillary", "sunflower", "daisy", "colts_foot", "dandelion", "cowslip",
        "buttercup", "windflower", "pansy")
IMAGES_PER_CLASS = 80
TRAIN_PER_CLASS = 64
NUM_IMAGES = len(CLASS_NAMES) * IMAGES_PER_CLASS

_FILE_NUMBER = re.compile(r"^image_(\d+)\.jpe?g$", re.IGNORECASE)


def is_official_name(filename: str) -> bool:
    """True for names like "image_0001.jpg"."""
    return _FILE_NUMBER.match(filename) is not None


def file_number(filename: str) -> int:
    """The 1-based image number of an official file name, e.g. "image_0065.jpg" -> 65."""
    match = _FILE_NUMBER.match(filename)
    if match is None or not 1 <= int(match.group(1)) <= NUM_IMAGES:
        raise ValueError(
                "17 Flowers file names must be image_NNNN.jpg with NNNN in "
                f"[1, {NUM_IMAGES}]. Received: filename={filename!r}")
    return int(match.group(1))


def class_of(number: int) -> int:
    """The 0-based class index of image number `number` (official order)."""
    return (number - 1) // IMAGES_PER_CLASS


def split_of(number: int) -> str:
    """"train" for positions 1-64 within the class, else "test"."""
    return "train" if (number - 1) % IMAGES_PER_CLASS < TRAIN_PER_CLASS else "test"
