"""The data configuration (`DataConfig`) and the dataset description (`DatasetInfo`)."""

import dataclasses

from tf_atalp.data.images import RESIZE_MODES
from tf_atalp.models._validation import MIN_IMAGE_SIZE
from tf_atalp.validation import check

FOLDER_DATASETS = ("flowers17", "imagenet4", "dogs_vs_cats", "folder")
DATASETS = ("synthetic",) + FOLDER_DATASETS
SOURCES = ("auto", "folder", "tfds")
TFDS_PREFIX = "tfds:"
# Our own TFDS builders (`tfds_flowers17.py`, `tfds_imagenet4.py`, `tfds_dogs_vs_cats.py`),
# by dataset name.
OWN_TFDS_BUILDERS = {"flowers17": "oxford_flowers17", "imagenet4": "imagenet4",
                     "dogs_vs_cats": "dogs_vs_cats"}



@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how the tf.data pipeline treats them.

    Attributes:
        dataset: "synthetic", "flowers17", "imagenet4", "dogs_vs_cats", "folder"
            (any image folder, one sub-folder per class) or "tfds:<name>" (a
            TFDS dataset, e.g. "tfds:cats_vs_dogs").
        data_dir: the image folder (folder source) or the TFDS data_dir (tfds
            source; None is the TFDS default).
        source: "folder", "tfds" or "auto" (synthetic for "synthetic", tfds for
            "tfds:*", folder otherwise). "flowers17", "imagenet4" and
            "dogs_vs_cats" with source="tfds" use our builders
            `oxford_flowers17` / `imagenet4` / `dogs_vs_cats`.
        image_size: side S of the square output images, pixels (>= 32).
        resize: "squash" (resize every image to S x S; the aspect ratio is
            lost) or "keep_aspect" (resize the short side to S, then crop
            S x S: at random in training, in the centre otherwise).
        batch_size: the GLOBAL batch size (split over replicas).
        augment: train-only pad-and-crop (reflect-pad by S // 8, random S x S
            crop) and random horizontal flip.
        cache: keep decoded and resized images (uint8) in memory after the
            first epoch, so each file is decoded once (synthetic data are
            in memory anyway).
        shuffle_buffer: each training epoch rotates the examples by a random
            offset, then permutes each block of `shuffle_buffer` consecutive
            examples; both are functions of (seed, epoch), so a resumed run
            replays the order (see `pipeline.EpochCounter`).
        skip_corrupt: skip undecodable files (counted in a warning) instead of
            raising an error naming the first one.
        seed: seed of the file order, the shuffle, the augmentation and the
            synthetic data.
        manual_dir: TFDS manual_dir for our own builders (the image folders).
        synthetic_train_size: synthetic train examples.
        synthetic_test_size: synthetic test examples.
        synthetic_num_classes: synthetic classes (2 to 16).
        test_fraction: for a "folder" dataset without train/ and test/
            sub-folders, the last round(test_fraction * n) files of each class
            (sorted by name) are test.
        tfds_train_split: the TFDS split read as "train" (e.g. "train[:80%]").
        tfds_test_split: the TFDS split read as "test" (e.g. "train[80%:]").
        expected_num_classes: if set, the number of classes the model expects;
            a dataset with another number of classes (labels out of range for
            the model) is an error before any work.
        autotune: tf.data's autotuning of the AUTOTUNE parallelism and
            prefetch buffers. Off by default: on 2 CPU cores it made some
            `fit` epochs wait idle after their last step (8 s of steps
            taking 10.3 s, 12 s taking 20.5 s; `bench/bench_pipeline.py`,
            `bench/autotune_wait_probe.py`); without it AUTOTUNE falls back
            to TensorFlow's fixed default parallelism.
    """

    dataset: str
    data_dir: str | None = None
    source: str = "auto"
    image_size: int = 32
    resize: str = "squash"
    batch_size: int = 32
    augment: bool = True
    cache: bool = True
    shuffle_buffer: int = 2048
    skip_corrupt: bool = False
    seed: int = 0
    manual_dir: str | None = None
    synthetic_train_size: int = 2048
    synthetic_test_size: int = 512
    synthetic_num_classes: int = 4
    test_fraction: float = 0.2
    tfds_train_split: str = "train"
    tfds_test_split: str = "test"
    expected_num_classes: int | None = None
    autotune: bool = False

    def __post_init__(self):
        is_tfds_name = self.dataset.startswith(TFDS_PREFIX)
        check(self.dataset in DATASETS or (is_tfds_name and self.tfds_name),
               f"`dataset` must be one of {DATASETS} or 'tfds:<name>'. "
               f"Received: dataset={self.dataset!r}")
        check(self.source in SOURCES,
               f"`source` must be one of {SOURCES}. Received: source={self.source!r}")
        check(self.image_size >= MIN_IMAGE_SIZE,
               f"`image_size` must be >= {MIN_IMAGE_SIZE}. Received: image_size={self.image_size}")
        check(self.resize in RESIZE_MODES,
               f"`resize` must be one of {RESIZE_MODES}. Received: resize={self.resize!r}")
        check(self.batch_size >= 1,
               f"`batch_size` must be >= 1. Received: batch_size={self.batch_size}")
        check(self.shuffle_buffer >= 1,
               f"`shuffle_buffer` must be >= 1. Received: shuffle_buffer={self.shuffle_buffer}")
        check(self.seed >= 0, f"`seed` must be >= 0. Received: seed={self.seed}")
        check(self.synthetic_train_size >= 1,
               "`synthetic_train_size` must be >= 1. "
               f"Received: synthetic_train_size={self.synthetic_train_size}")
        check(self.synthetic_test_size >= 1,
               "`synthetic_test_size` must be >= 1. "
               f"Received: synthetic_test_size={self.synthetic_test_size}")
        check(2 <= self.synthetic_num_classes <= 16,
               "`synthetic_num_classes` must be in [2, 16]. "
               f"Received: synthetic_num_classes={self.synthetic_num_classes}")
        check(0.0 < self.test_fraction < 1.0,
               f"`test_fraction` must be in (0, 1). Received: test_fraction={self.test_fraction}")
        check(self.expected_num_classes is None or self.expected_num_classes >= 2,
               "`expected_num_classes` must be None or >= 2. "
               f"Received: expected_num_classes={self.expected_num_classes}")
        self._check_source()

    def _check_source(self):
        source = self.resolved_source
        if self.dataset == "synthetic":
            check(source == "synthetic",
                   "`source` must be 'auto' for dataset='synthetic'. "
                   f"Received: source={self.source!r}")
        elif self.dataset.startswith(TFDS_PREFIX):
            check(source == "tfds",
                   f"`source` must be 'auto' or 'tfds' for dataset={self.dataset!r}. "
                   f"Received: source={self.source!r}")
        elif source == "tfds":
            check(self.dataset in OWN_TFDS_BUILDERS,
                   f"`source='tfds'` needs a TFDS builder; dataset={self.dataset!r} has none "
                   f"(ours: {tuple(OWN_TFDS_BUILDERS)}; or use dataset='tfds:<name>').")
        else:
            check(self.data_dir is not None,
                   f"`data_dir` must be set for the folder dataset {self.dataset!r}. "
                   "Received: data_dir=None")
        check(self.manual_dir is None or source == "tfds",
               "`manual_dir` is only used with the tfds source. "
               f"Received: manual_dir={self.manual_dir!r} with source={source!r}")

    @property
    def resolved_source(self) -> str:
        """"synthetic", "folder" or "tfds": `source` with "auto" resolved."""
        if self.source != "auto":
            return self.source
        if self.dataset == "synthetic":
            return "synthetic"
        return "tfds" if self.dataset.startswith(TFDS_PREFIX) else "folder"

    @property
    def tfds_name(self) -> str:
        """The TFDS builder name ("" unless the source is tfds)."""
        if self.dataset.startswith(TFDS_PREFIX):
            return self.dataset[len(TFDS_PREFIX):]
        if self.resolved_source == "tfds":
            return OWN_TFDS_BUILDERS.get(self.dataset, "")
        return ""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a dataset holds: class names in label order and split sizes (examples).

    `origin` says where the examples come from and `split_rule` how the test
    split was chosen, both for humans (the dataset summary of a run).
    """

    name: str
    num_classes: int
    class_names: tuple[str, ...]
    num_train: int
    num_test: int
    origin: str = ""
    split_rule: str = ""
