"""tf.distribute strategies by name, and this process's role in a multi-worker cluster."""

import dataclasses
import json
import os

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


@dataclasses.dataclass(frozen=True)
class WorkerRole:
    """Which worker this process is: the chief writes the model_dir, the others do not.

    Attributes:
      index: the task index in TF_CONFIG (0 without a cluster).
      num_workers: the processes of the cluster (1 without one).
      is_chief: the "chief" task, or worker 0 of a cluster without a chief.
    """

    index: int = 0
    num_workers: int = 1
    is_chief: bool = True


def worker_role(strategy: str, tf_config: str | None = None) -> WorkerRole:
    """This process's role, from TF_CONFIG (`tf_config`, default: the environment's).

    Raises ValueError for a TF_CONFIG that is not JSON or names no task of its cluster.
    """
    if strategy != "multi_worker":
        return WorkerRole()
    text = os.environ.get("TF_CONFIG", "") if tf_config is None else tf_config
    if not text.strip():
        return WorkerRole()  # one worker, no cluster
    try:
        values = json.loads(text)
        cluster, task = values.get("cluster", {}), values.get("task", {})
        task_type, index = task.get("type"), int(task.get("index", 0))
    except (ValueError, AttributeError, TypeError) as error:
        raise ValueError(f"TF_CONFIG is not a valid cluster description: {error}. "
                         f"Received: TF_CONFIG={text!r}") from None
    members = {job: len(addresses) for job, addresses in cluster.items()}
    if task_type not in members or not 0 <= index < members[task_type]:
        raise ValueError(f"TF_CONFIG's task {task} is not one of its cluster's tasks "
                         f"{members}. Received: TF_CONFIG={text!r}")
    is_chief = task_type == "chief" or (task_type == "worker" and index == 0
                                        and "chief" not in members)
    return WorkerRole(index, sum(members.get(job, 0) for job in ("chief", "worker")), is_chief)


def make_strategy(name: str, tpu: str = "") -> tf.distribute.Strategy:
    """The strategy `name`: "default" (one device), "mirrored" (all local
    GPUs, or the CPU), "multi_worker" (the TF_CONFIG cluster; every worker
    runs the same command) or "tpu" (`tpu` is the TPU name or grpc address;
    "" for a local TPU VM)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or None)
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.OpError) as error:
            raise ValueError(
                f"strategy='tpu' found no TPU (tpu={tpu!r}): {error}") from error
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"`strategy` must be one of {STRATEGIES}. Received: strategy={name!r}")
