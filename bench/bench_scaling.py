"""Issue 11, item 8: how the cost of an AT+ALP epoch grows with image size and depth.

AT+ALP steps (PGD-K inside) are timed for ResNet-10 at 32 to 224 px and
for depths 10 to 50 at the bench image size, same batch. Each entry gives
the seconds per image (an epoch of N images costs N times that), the ratio
to the smallest configuration, and the forward GFLOPs per image counted
from the network's layers, so that a run elsewhere can be predicted:

    epoch seconds ~= N x forward_flops x (2K + 6) / (effective FLOP/s)

(K attack passes of forward + input gradient, about 2 forwards each, and
one training pass over 2N images of about 3 forwards each.) The effective
FLOP/s measured here is in every entry; measure one step on the other
machine to get its own. `build_resnet`'s default stem switches from the
cifar stem (3x3, stride 1) to the imagenet stem (7x7/2 + pool, 16x fewer
positions after it) at 96 px, so with the default 128 px costs less than
64 px. The size entries therefore hold the stem fixed (cifar from 32 to 128
px, imagenet from 128 to 224 px), and the stem switch has its own entry
(both stems at 128 px).
"""

import keras

import harness
import workloads
from harness import entry, side
from tf_atalp.models.resnet import IMAGENET_STEM_MIN_SIZE

NAME = "scaling"
DESCRIPTION = "AT+ALP epoch cost vs image size (32-224 px) and depth (10-50)"
ESTIMATED_SECONDS = (15, 600)
EPOCH_IMAGES = 1088  # the 17 Flowers training split


def forward_flops(net: keras.Model) -> float:
    """Multiply-adds x 2 of one forward pass of one image: convolutions and dense layers."""
    flops = 0.0
    for layer in net.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, channels_out = layer.output.shape
            kernel_h, kernel_w = layer.kernel_size
            channels_in = layer.input.shape[-1]
            flops += 2.0 * height * width * channels_out * kernel_h * kernel_w * channels_in
        elif isinstance(layer, keras.layers.Dense):
            flops += 2.0 * layer.input.shape[-1] * layer.units
    return flops


def run(settings) -> list[dict]:
    machine = harness.machine()
    k = 3 if settings.quick else 7
    batch_size = 8 if settings.quick else 16
    cifar_sizes, imagenet_sizes = (32, 64, 128), (128, 224)
    depths = (10, 18, 34, 50)
    depth_size = settings.image_size
    depth_stem = "cifar" if depth_size < IMAGENET_STEM_MIN_SIZE else "imagenet"
    configs = ([(10, size, "cifar") for size in cifar_sizes]
               + [(10, size, "imagenet") for size in imagenet_sizes])
    configs += [(depth, depth_size, depth_stem) for depth in depths
                if (depth, depth_size, depth_stem) not in configs]
    calls, flops = {}, {}
    for depth, size, stem in configs:
        net = workloads.network(settings, depth=depth, image_size=size, stem=stem)
        flops[(depth, size, stem)] = forward_flops(net)
        model = workloads.trainer(net, "at_alp", k)
        images, labels = workloads.batch(settings, size=batch_size, image_size=size)
        calls[(depth, size, stem)] = workloads.train_step_call(model, images, labels)
    named = {_label(config): call for config, call in calls.items()}
    times = harness.time_alternating(named, max(2, settings.rounds - 1), 1)
    per_image = {config: times[_label(config)]["median_s"] / batch_size for config in configs}

    def describe(config):
        seconds = per_image[config]
        return side(_label(config).replace("px", " px"), seconds, "s/image",
                    epoch_seconds=round(seconds * EPOCH_IMAGES, 2),
                    forward_gflops=round(flops[config] / 1e9, 4),
                    effective_gflops_per_s=round(flops[config] * (2 * k + 6) / seconds / 1e9,
                                                 2))

    common = {"defense": "at_alp", "pgd_iterations": k, "batch_size": batch_size,
              "width": settings.width, "stem": "as each entry says (fixed within a size entry)",
              "epoch_images": EPOCH_IMAGES, "precision": "float32", "jit_compile": False,
              "rounds": max(2, settings.rounds - 1),
              "cost_model": "epoch s ~= N x forward_flops x (2K + 6) / effective FLOP/s"}

    def compare(comparison, subject, reference):
        return entry(NAME, comparison, describe(subject), describe(reference), settings=common,
                     machine_info=machine,
                     flops_ratio=round(flops[subject] / flops[reference], 3))

    entries = [compare(f"image size {size} px vs 32 px (resnet10, cifar stem)",
                       (10, size, "cifar"), (10, 32, "cifar")) for size in cifar_sizes[1:]]
    entries.append(compare("image size 224 px vs 128 px (resnet10, imagenet stem)",
                           (10, 224, "imagenet"), (10, 128, "imagenet")))
    entries.append(compare(
        f"stem switch at 128 px: imagenet vs cifar stem (resnet10; the default switches at "
        f"{IMAGENET_STEM_MIN_SIZE} px)", (10, 128, "imagenet"), (10, 128, "cifar")))
    entries += [compare(f"depth {depth} vs 10 ({depth_size} px)", (depth, depth_size, depth_stem),
                        (10, depth_size, depth_stem)) for depth in depths[1:]]
    return entries


def _label(config) -> str:
    depth, size, stem = config
    return f"resnet{depth} {size}px {stem} stem"
