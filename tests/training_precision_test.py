"""Tests of tf_atalp.training.precision: bf16 only where the hardware computes it natively."""

import os
import tempfile

import tensorflow as tf
from absl.testing import parameterized

from tf_atalp.training.precision import (
    PRECISIONS, choose_precision, read_cpu_flags, resolve_precision)

AVX2_EPYC_FLAGS = ("fpu", "sse2", "avx", "avx2", "fma")  # the machine: no bf16 units
SAPPHIRE_RAPIDS_FLAGS = AVX2_EPYC_FLAGS + ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
ZEN4_FLAGS = AVX2_EPYC_FLAGS + ("avx512f", "avx512_bf16")


class ChoosePrecisionTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.named_parameters(
        ("avx2_cpu_without_bf16", {"cpu_flags": AVX2_EPYC_FLAGS}, "float32"),
        ("avx512f_without_bf16", {"cpu_flags": AVX2_EPYC_FLAGS + ("avx512f",)}, "float32"),
        ("cpu_with_amx", {"cpu_flags": SAPPHIRE_RAPIDS_FLAGS}, "mixed_bfloat16"),
        ("cpu_with_avx512_bf16", {"cpu_flags": ZEN4_FLAGS}, "mixed_bfloat16"),
        ("unknown_cpu", {}, "float32"),
        ("ampere_gpu", {"gpu_compute_capabilities": [(8, 0)]}, "mixed_bfloat16"),
        ("hopper_gpus", {"gpu_compute_capabilities": [(9, 0), (9, 0)]}, "mixed_bfloat16"),
        ("volta_gpu", {"gpu_compute_capabilities": [(7, 0)]}, "float32"),
        ("mixed_gpus_take_the_oldest",
         {"gpu_compute_capabilities": [(8, 6), (7, 5)]}, "float32"),
        ("gpu_decides_over_a_bf16_cpu",
         {"cpu_flags": SAPPHIRE_RAPIDS_FLAGS, "gpu_compute_capabilities": [(7, 5)]}, "float32"),
        ("tpu", {"strategy": "tpu"}, "mixed_bfloat16"),
    )
    def test_auto_chooses_by_hardware(self, hardware, expected):
        choice = choose_precision("auto", **hardware)
        self.assertEqual(choice.policy, expected)
        self.assertStartsWith(choice.reason, "auto: ")

    @parameterized.parameters("float32", "mixed_bfloat16", "mixed_float16")
    def test_an_explicit_policy_is_kept_whatever_the_hardware(self, policy):
        self.assertEqual(choose_precision(policy, cpu_flags=AVX2_EPYC_FLAGS).policy, policy)
        self.assertEqual(resolve_precision(policy).policy, policy)

    def test_unknown_precision_is_refused(self):
        with self.assertRaisesRegex(ValueError, "`mixed_precision` must be one of"):
            choose_precision("fp8")

    def test_auto_is_a_valid_choice(self):
        self.assertIn("auto", PRECISIONS)
        self.assertIn(resolve_precision("auto").policy, ("float32", "mixed_bfloat16"))


class ReadCpuFlagsTest(tf.test.TestCase):

    def write(self, text):
        path = os.path.join(tempfile.mkdtemp(), "cpuinfo")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_reads_the_flags_line(self):
        path = self.write("processor\t: 0\nmodel name\t: AMD EPYC\n"
                          "flags\t\t: fpu avx2 avx512_bf16\n\nprocessor\t: 1\n")
        self.assertEqual(read_cpu_flags(path), {"fpu", "avx2", "avx512_bf16"})

    def test_missing_file_gives_no_flags(self):
        self.assertEqual(read_cpu_flags("/no/such/cpuinfo"), frozenset())


if __name__ == "__main__":
    tf.test.main()
