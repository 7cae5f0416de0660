"""The protocol's test examples: read once, kept in memory, the same batches for every cell."""

import dataclasses

import numpy as np
import tensorflow as tf

from tf_atalp import data as data_lib
from tf_atalp.data import DataConfig
from tf_atalp.data.folder_source import split_files
from tf_atalp.data.subset import balanced_subset, describe_subset, split_labels


@dataclasses.dataclass
class ProtocolData:
    """The evaluated examples.

    Attributes:
      batches: [(images float32 [B, S, S, 3] in [0, 1], labels int32 [B])].
      record: what the results say about the data (name, split, sizes, subset).
      class_names: in label order.
      image_paths: the files of the examples in order (folder data), else None.
    """

    batches: list
    record: dict
    class_names: tuple
    image_paths: tuple | None

    @property
    def num_examples(self) -> int:
        return sum(int(labels.shape[0]) for _, labels in self.batches)

    def offsets(self) -> list[int]:
        """The index of each batch's first example."""
        sizes = [int(labels.shape[0]) for _, labels in self.batches]
        return [int(v) for v in np.cumsum([0] + sizes[:-1])]


def load_protocol_data(config: DataConfig, max_examples: int | None) -> ProtocolData:
    """The test split (or its class-balanced subset of `max_examples`), in memory."""
    info = data_lib.get_dataset_info(config)
    dataset = data_lib.make_dataset(config, "test", training=False)
    labels = split_labels(dataset)
    indices = np.arange(len(labels))
    subset = None
    if max_examples is not None and max_examples < len(labels):
        indices = balanced_subset(labels, max_examples)
        subset = describe_subset(labels, indices, info.class_names)
    keep = np.zeros(len(labels), bool)
    keep[indices] = True
    images = np.concatenate([x for x, _ in dataset.as_numpy_iterator()])[keep]
    kept_labels = labels[keep]
    batches = [(tf.constant(images[i:i + config.batch_size], tf.float32),
                tf.constant(kept_labels[i:i + config.batch_size], tf.int32))
               for i in range(0, len(kept_labels), config.batch_size)]
    paths = None
    if config.resolved_source == "folder":
        paths = tuple(np.asarray(split_files(config, "test").paths)[keep])
    record = {"name": info.name, "split": "test", "split_size": int(len(labels)),
              "num_examples": int(len(kept_labels)), "source": config.resolved_source,
              "data_dir": config.data_dir, "image_size": config.image_size, "subset": subset}
    return ProtocolData(batches, record, tuple(info.class_names), paths)
