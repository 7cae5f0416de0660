"""The compute dtype policy: bfloat16 only where the hardware runs it natively.

`--mixed_precision=auto` (the default) picks "mixed_bfloat16" on a TPU, on
GPUs of compute capability 8.0 or newer (Ampere on), and on CPUs with AMX or
AVX512-BF16 instructions; "float32" everywhere else. On a CPU without bf16
units TensorFlow emulates bfloat16: measured 8 s per quickstart step against
1 s in float32 on a 2-core AVX2 EPYC, so the wrong choice costs 8x.

`choose_precision` is a pure function of the hardware facts (tested for each
case); `resolve_precision` reads the facts of this machine and calls it.
"""

import dataclasses
import os
from collections.abc import Iterable, Sequence

AUTO = "auto"
POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
PRECISIONS = (AUTO,) + POLICIES
# /proc/cpuinfo flags of x86 CPUs that compute bfloat16 natively.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
MIN_BF16_COMPUTE_CAPABILITY = (8, 0)


@dataclasses.dataclass(frozen=True)
class PrecisionChoice:
    """The Keras dtype policy to use and why (one line for the log)."""

    policy: str
    reason: str


def choose_precision(requested: str, *, strategy: str = "default",
                     cpu_flags: Iterable[str] = (),
                     gpu_compute_capabilities: Sequence[tuple[int, int]] = ()
                     ) -> PrecisionChoice:
    """Resolves `requested` (one of PRECISIONS) for the given hardware.

    Args:
      requested: "auto" or a Keras policy name; a policy name is kept as is.
      strategy: the tf.distribute strategy name ("tpu" runs bf16 natively).
      cpu_flags: the CPU's feature flags (as in /proc/cpuinfo).
      gpu_compute_capabilities: (major, minor) of each visible GPU; GPUs, when
        present, do the compute, so the CPU flags then do not matter.
    """
    if requested not in PRECISIONS:
        raise ValueError(f"`mixed_precision` must be one of {PRECISIONS}. "
                         f"Received: mixed_precision={requested!r}")
    if requested != AUTO:
        return PrecisionChoice(requested, f"--mixed_precision={requested} was asked for")
    if strategy == "tpu":
        return PrecisionChoice("mixed_bfloat16", "auto: TPUs compute bfloat16 natively")
    capabilities = [tuple(c) for c in gpu_compute_capabilities]
    if capabilities:
        described = ", ".join(f"{major}.{minor}" for major, minor in capabilities)
        if min(capabilities) >= MIN_BF16_COMPUTE_CAPABILITY:
            return PrecisionChoice(
                "mixed_bfloat16", f"auto: every GPU has compute capability >= 8.0 ({described})")
        return PrecisionChoice(
            "float32", f"auto: a GPU below compute capability 8.0 ({described}) has no "
            "native bfloat16")
    native = sorted(set(cpu_flags) & set(BF16_CPU_FLAGS))
    if native:
        return PrecisionChoice(
            "mixed_bfloat16", f"auto: the CPU computes bfloat16 natively ({', '.join(native)})")
    return PrecisionChoice(
        "float32", "auto: the CPU has no bfloat16 instructions (neither amx_bf16 nor "
        "avx512_bf16), where bfloat16 is emulated and several times slower")


CPUINFO_PATH = "/proc/cpuinfo"


def _cpuinfo_value(keys: tuple[str, ...], cpuinfo_path: str) -> str:
    """The value of the first line of /proc/cpuinfo keyed by one of `keys` ("" if none)."""
    if not os.path.isfile(cpuinfo_path):
        return ""
    with open(cpuinfo_path) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.strip() in keys:
                return value.strip()
    return ""


def read_cpu_flags(cpuinfo_path: str = CPUINFO_PATH) -> frozenset[str]:
    """The CPU feature flags of this machine (empty where /proc/cpuinfo is missing)."""
    return frozenset(_cpuinfo_value(("flags", "Features"), cpuinfo_path).split())


def cpu_model_name(cpuinfo_path: str = CPUINFO_PATH) -> str:
    """The CPU's model name as /proc/cpuinfo gives it ("" where it is missing)."""
    return _cpuinfo_value(("model name",), cpuinfo_path)


def gpu_compute_capabilities() -> list[tuple[int, int]]:
    """(major, minor) of each GPU TensorFlow sees; [] on a machine without one."""
    import tensorflow as tf  # Imported here: the rest of the module needs no TensorFlow.

    capabilities = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        capability = details.get("compute_capability")
        if capability is not None:
            capabilities.append(tuple(capability))
    return capabilities


def resolve_precision(requested: str, strategy: str = "default") -> PrecisionChoice:
    """`choose_precision` with the facts of this machine."""
    if requested != AUTO:
        return choose_precision(requested)
    return choose_precision(requested, strategy=strategy, cpu_flags=read_cpu_flags(),
                            gpu_compute_capabilities=gpu_compute_capabilities())
