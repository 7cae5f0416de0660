"""The base of our TFDS builders: labelled image files in, checked examples out."""

import os

import tensorflow_datasets as tfds

from tf_atalp.data import tfds_compat  # noqa: F401 (before any builder is prepared)
from tf_atalp.data.image_check import drop_corrupt
from tf_atalp.data.listing import ImageFiles, check_folder


class ImageFilesBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Writes examples {"image": RGB uint8 [H, W, 3], "label": int, "file_name": str}.

    Every file is decoded once before writing (`image_check`): a corrupt file
    raises a ValueError naming it, or with `skip_corrupt=True` is left out
    and counted in a warning. The bytes are stored as they are (no re-encode).
    """

    def __init__(self, *, skip_corrupt: bool = False, **kwargs):
        self._skip_corrupt = skip_corrupt
        super().__init__(**kwargs)

    def check_manual_dir(self, manual_dir: str | None) -> None:
        """Raises a one-line ValueError if the builder cannot be prepared from `manual_dir`.

        Called before preparing. This base checks only that a given folder
        exists; builders that need a manual dir of some layout check it.
        """
        if manual_dir is not None:
            check_folder(manual_dir, "manual_dir")

    def _image_info(self, class_names: tuple[str, ...], description: str, homepage: str,
                    citation: str = "") -> tfds.core.DatasetInfo:
        """The DatasetInfo of an (image, label) dataset with these classes."""
        features = tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3)),
                "label": tfds.features.ClassLabel(names=list(class_names)),
                "file_name": tfds.features.Text(),
        })
        return tfds.core.DatasetInfo(builder=self, description=description, features=features,
                                     supervised_keys=("image", "label"), homepage=homepage,
                                     citation=citation)

    def _generate_examples(self, files: ImageFiles, root: str, split: str):
        """Yields (key, example) for the decodable files; keys are paths relative to `root`."""
        files = drop_corrupt(files, self._skip_corrupt,
                             f"{split} split of {self.name} (files in {root!r})")
        for path, label in zip(files.paths, files.labels):
            key = os.path.relpath(path, root)
            yield key, {"image": path, "label": label, "file_name": key}
