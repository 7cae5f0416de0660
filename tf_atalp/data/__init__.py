"""tf.data pipelines: image folders, TFDS (with our `oxford_flowers17`,
`imagenet4` and `dogs_vs_cats` builders) and the synthetic grating task.

Every pipeline yields (images float32 [B, S, S, 3] in [0, 1], labels int32 [B]).
"""

from tf_atalp.data.config import DataConfig, DatasetInfo
from tf_atalp.data.datasets import (
    get_dataset_info, make_dataset, make_input_fn, scan_dataset_info, validate_data_config)
from tf_atalp.data.pipeline import EpochCounter

__all__ = [
        "DataConfig", "DatasetInfo", "EpochCounter", "get_dataset_info", "make_dataset",
        "make_input_fn", "scan_dataset_info", "validate_data_config",
]
