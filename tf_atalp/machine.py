"""One line naming the machine a result came from: CPU, cores, GPUs, software versions."""

import functools
import os
import platform


@functools.cache
def machine_summary() -> str:
    """E.g. "AMD EPYC, 2 CPU cores, no GPU used; Python 3.11.7, TensorFlow 2.21.0, Keras 3.15.1"."""
    import keras
    import tensorflow as tf

    from tf_atalp.training.precision import cpu_model_name

    gpus = len(tf.config.list_physical_devices("GPU"))
    hardware = (f"{cpu_model_name() or platform.processor() or platform.machine()}, "
                f"{os.cpu_count()} CPU cores, " + (f"{gpus} GPU(s)" if gpus else "no GPU used"))
    return (f"{hardware}; Python {platform.python_version()}, TensorFlow {tf.__version__}, "
            f"Keras {keras.__version__}")
