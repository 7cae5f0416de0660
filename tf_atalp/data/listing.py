"""Lists an image folder (one sub-folder per class) into train and test files.

Layouts:
- split: `train/<class>/*` and `test/<class>/*`, or `val/<class>/*` or
  `validation/<class>/*` (ImageNet-style) as the held-out split, in that
  order of preference; classes are the folders of `train/`, and the
  held-out folder may not hold others. A `train/` without any of them is
  refused (it would otherwise be read as a class named "train").
- unsplit: `<class>/*`; the split is a deterministic per-class rule:
  "flowers17": image numbers at positions 1-64 of their class are train,
  65-80 test (see `flowers17.py`); "folder": files sorted by name, the last
  round(test_fraction * n) of each class are test. "dogs_vs_cats" and
  "imagenet4" must come split.

Labels follow the sorted class-folder names; class names are the folder names,
for flowers17 without their "NN_" prefix ("00_daffodil" -> "daffodil").
Hidden entries and files without an image extension are ignored.
"""

import dataclasses
import math
import os
import re

from tf_atalp.data import flowers17

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
TEST_SPLIT_FOLDERS = ("test", "val", "validation")  # the held-out split, in this preference
MUST_COME_SPLIT = ("dogs_vs_cats", "imagenet4")


@dataclasses.dataclass(frozen=True)
class ImageFiles:
    """Image paths and their int labels, in the same order."""

    paths: tuple[str, ...]
    labels: tuple[int, ...]

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, int]]) -> "ImageFiles":
        """Builds it from (path, label) pairs."""
        return cls(tuple(path for path, _ in pairs), tuple(label for _, label in pairs))


@dataclasses.dataclass(frozen=True)
class FolderListing:
    """The classes of an image folder, its train and test files, and how they were split."""

    class_names: tuple[str, ...]
    train: ImageFiles
    test: ImageFiles
    split_rule: str = ""

    def split(self, name: str) -> ImageFiles:
        """The files of split `name` ("train" or "test")."""
        if name not in ("train", "test"):
            raise ValueError(f"`split` must be 'train' or 'test'. Received: split={name!r}")
        return self.train if name == "train" else self.test


def _visible_entries(folder: str) -> list[os.DirEntry]:
    with os.scandir(folder) as entries:
        return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)


def subfolders(folder: str) -> list[str]:
    """Sorted names of the visible sub-folders of `folder`."""
    return [e.name for e in _visible_entries(folder) if e.is_dir()]


def image_files(class_dir: str) -> list[str]:
    """Sorted paths of the image files in `class_dir`; an error if there are none."""
    paths = [e.path for e in _visible_entries(class_dir)
             if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS)]
    if not paths:
        raise ValueError(
                f"Class folder {class_dir!r} holds no images (extensions {IMAGE_EXTENSIONS}). "
                "Remove it or add images.")
    return paths


def check_folder(path: str, what: str) -> None:
    """Raises a ValueError naming `what` unless `path` is an existing directory."""
    if not os.path.isdir(path):
        raise ValueError(f"`{what}` must be an existing directory. Received: {what}={path!r}")


def _class_folders(folder: str) -> list[str]:
    names = subfolders(folder)
    if not names:
        raise ValueError(f"{folder!r} holds no class folders (one sub-folder per class expected).")
    return names


def _display_name(folder_name: str, dataset: str) -> str:
    return re.sub(r"^\d+_", "", folder_name) if dataset == "flowers17" else folder_name


def _test_split_folder(data_dir: str, top: list[str]) -> str | None:
    """The held-out folder beside train/, None for an unsplit folder; refuses a lone train/."""
    if "train" not in top:
        return None
    found = next((name for name in TEST_SPLIT_FOLDERS if name in top), None)
    if found is None:
        held_out = "/, ".join(TEST_SPLIT_FOLDERS)
        raise ValueError(
            f"{data_dir!r} has a train/ folder but no held-out folder beside it ({held_out}/; "
            f"found {', '.join(f + '/' for f in top)}). Rename the held-out split's folder to "
            "test/ (or val/ or validation/), or, for a folder without a split, point "
            "--data_dir at the folder of the class folders.")
    return found


def _list_split_layout(data_dir: str, test_folder: str, dataset: str) -> FolderListing:
    train_dir, test_dir = os.path.join(data_dir, "train"), os.path.join(data_dir, test_folder)
    folders = _class_folders(train_dir)
    extra = sorted(set(subfolders(test_dir)) - set(folders))
    if extra:
        raise ValueError(f"{test_dir!r} holds class folders that train/ lacks: {extra}.")
    splits = {}
    for split, split_dir in (("train", train_dir), ("test", test_dir)):
        pairs = []
        for label, folder in enumerate(folders):
            class_dir = os.path.join(split_dir, folder)
            if split == "test" and not os.path.isdir(class_dir):
                continue
            pairs += [(path, label) for path in image_files(class_dir)]
        splits[split] = ImageFiles.from_pairs(pairs)
    names = tuple(_display_name(f, dataset) for f in folders)
    rule = f"sub-folders train/ and {test_folder}/ ({test_folder}/ is the test split)"
    ignored = [name for name in TEST_SPLIT_FOLDERS
               if name != test_folder and os.path.isdir(os.path.join(data_dir, name))]
    if ignored:
        rule += f"; {', '.join(f + '/' for f in ignored)} not used"
    return FolderListing(names, splits["train"], splits["test"], rule)


def _is_test_file(path: str, index: int, count: int, dataset: str, test_fraction: float) -> bool:
    if dataset == "flowers17":
        return flowers17.split_of(flowers17.file_number(os.path.basename(path))) == "test"
    return index >= count - math.floor(test_fraction * count + 0.5)


def _list_unsplit_layout(data_dir: str, dataset: str, test_fraction: float) -> FolderListing:
    folders = _class_folders(data_dir)
    train, test = [], []
    for label, folder in enumerate(folders):
        paths = image_files(os.path.join(data_dir, folder))
        for index, path in enumerate(paths):
            is_test = _is_test_file(path, index, len(paths), dataset, test_fraction)
            (test if is_test else train).append((path, label))
    names = tuple(_display_name(f, dataset) for f in folders)
    if dataset == "flowers17":
        rule = "no split folders; per class, images 1-64 train and 65-80 test (flowers17 rule)"
    else:
        rule = (f"no split folders; per class, the last {test_fraction:.0%} of the files "
                "(sorted by name) are test")
    return FolderListing(names, ImageFiles.from_pairs(train), ImageFiles.from_pairs(test), rule)


def list_image_folder(data_dir: str, dataset: str = "folder", test_fraction: float = 0.2,
                      what: str = "data_dir") -> FolderListing:
    """Lists `data_dir` (see the module docstring); decodes nothing.

    Args:
        data_dir: the dataset's root folder.
        dataset: "flowers17", "imagenet4", "dogs_vs_cats" or "folder"; picks the
            split rule for unsplit folders and the class-name rule.
        test_fraction: the test share of each class for an unsplit "folder".
        what: the setting that named `data_dir` ("manual_dir" for a TFDS
            builder), for messages.

    Returns:
        A `FolderListing`; paths are sorted by class, then by file name.
    """
    check_folder(data_dir, what)
    test_folder = _test_split_folder(data_dir, subfolders(data_dir))
    if test_folder is not None:
        return _list_split_layout(data_dir, test_folder, dataset)
    if dataset in MUST_COME_SPLIT:
        raise ValueError(
                f"dataset={dataset!r} must come split into train/ and test/ sub-folders. "
                f"Received: {what}={data_dir!r} without them")
    return _list_unsplit_layout(data_dir, dataset, test_fraction)
