"""TFDS builder `imagenet4`: the paper's "Part of ImageNet", a few ImageNet-2012 classes.

Built from a manual ImageNet directory `train/<wnid>/*.JPEG` plus
`val/<wnid>/*.JPEG` (or `test/<wnid>/*.JPEG`): "train" is train/, "test" is
val/ (or test/). Labels follow the config's wnid order; the default config
"paper" holds tench, goldfish, great white shark and English springer.
Other subsets: `tfds.builder("imagenet4", config=Imagenet4Config(name=..., wnids=(...)))`.
"""

import dataclasses
import os

import tensorflow_datasets as tfds

from tf_atalp.data.listing import ImageFiles, check_folder, image_files
from tf_atalp.data.tfds_common import ImageFilesBuilder

PAPER_WNIDS = ("n01440764", "n01443537", "n01484850", "n02102040")
HOMEPAGE = "https://www.image-net.org/"
TEST_FOLDERS = ("val", "test")


@dataclasses.dataclass(eq=False)
class Imagenet4Config(tfds.core.BuilderConfig):
    """A class subset of ImageNet: `wnids` in label order."""

    wnids: tuple[str, ...] = PAPER_WNIDS


def _test_folder(root: str) -> str:
    for name in TEST_FOLDERS:
        if os.path.isdir(os.path.join(root, name)):
            return os.path.join(root, name)
    raise ValueError(f"The ImageNet manual dir {root!r} must hold val/ or test/ class folders.")


def list_imagenet_subset(root: str, wnids: tuple[str, ...]) -> dict[str, ImageFiles]:
    """The train and test files of classes `wnids` (label = index in `wnids`)."""
    check_folder(root, "manual_dir")
    split_dirs = {"train": os.path.join(root, "train"), "test": _test_folder(root)}
    files = {}
    for split, split_dir in split_dirs.items():
        pairs = []
        for label, wnid in enumerate(wnids):
            class_dir = os.path.join(split_dir, wnid)
            if not os.path.isdir(class_dir):
                raise ValueError(
                        f"The ImageNet class folder {class_dir!r} (wnid {wnid}) is missing.")
            pairs += [(path, label) for path in image_files(class_dir)]
        files[split] = ImageFiles.from_pairs(pairs)
    return files


class Imagenet4(ImageFilesBuilder):
    """Four ImageNet-2012 classes (by default), train from train/, test from val/ or test/."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [Imagenet4Config(
            name="paper", description="tench, goldfish, great white shark, English springer",
            wnids=PAPER_WNIDS)]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """Put ImageNet-2012 images in manual_dir as
    train/<wnid>/*.JPEG and val/<wnid>/*.JPEG (or test/<wnid>/*.JPEG)."""

    def _info(self) -> tfds.core.DatasetInfo:
        return self._image_info(self.builder_config.wnids,
                                "A class subset of ImageNet-2012 (labels: wnids).", HOMEPAGE)

    def _split_generators(self, dl_manager):
        root = os.fspath(dl_manager.manual_dir)
        files = list_imagenet_subset(root, self.builder_config.wnids)
        return {split: self._generate_examples(f, root, split) for split, f in files.items()}
