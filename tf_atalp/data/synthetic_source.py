"""The synthetic grating task (`synthetic.make_synthetic_arrays`) as tf.data.

Train and test are drawn with different seeds derived from `config.seed`, so
they are disjoint samples of the same task; no files are needed.
"""

import tensorflow as tf

from tf_atalp.data.config import DataConfig, DatasetInfo
from tf_atalp.data.pipeline import shard
from tf_atalp.seeds import derive_seed
from tf_atalp.data.synthetic import make_synthetic_arrays


def synthetic_dataset_info(config: DataConfig) -> DatasetInfo:
    """Class names "class_0".."class_{K-1}" and the configured split sizes."""
    num_classes = config.synthetic_num_classes
    return DatasetInfo(name="synthetic", num_classes=num_classes,
                       class_names=tuple(f"class_{k}" for k in range(num_classes)),
                       num_train=config.synthetic_train_size, num_test=config.synthetic_test_size,
                       origin=f"synthetic gratings made in process (seed {config.seed})",
                       split_rule="train and test drawn with different seeds")


def synthetic_arrays(config: DataConfig, split: str):
    """The split's arrays: images float32 [N, S, S, 3] in [0, 1], labels int32 [N]."""
    size = config.synthetic_train_size if split == "train" else config.synthetic_test_size
    return make_synthetic_arrays(size, image_size=config.image_size,
                                 num_classes=config.synthetic_num_classes,
                                 seed=derive_seed(config.seed, "synthetic", split))


def synthetic_examples(config: DataConfig, split: str,
                       input_context: tf.distribute.InputContext | None
                       ) -> tuple[tf.data.Dataset, int]:
    """(dataset of (image float32 [S, S, 3], label int32 []), this pipeline's example count)."""
    dataset = shard(tf.data.Dataset.from_tensor_slices(synthetic_arrays(config, split)),
                    input_context)
    return dataset, int(dataset.cardinality())
