"""Helpers for the tests of our TFDS builders."""

import tensorflow_datasets as tfds


def load_labels_and_names(name, data_dir, split, **kwargs):
    """(label, file_name) pairs of a prepared dataset, without decoding images."""
    dataset = tfds.load(name, split=split, data_dir=data_dir, **kwargs,
                        decoders={"image": tfds.decode.SkipDecoding()})
    return [(int(ex["label"]), ex["file_name"].decode()) for ex in dataset.as_numpy_iterator()]
