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
machine to get its own. `build_resnet`'s stem switches from the cifar stem
(3x3, stride 1) to the imagenet stem (7x7/2 + pool) at 96 px, so 128 px
can cost less than 64 px: the FLOP count shows it.
"""

import keras

import harness
import workloads
from harness import entry, side

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
    sizes = (32, 64, 128, 224)
    depths = (10, 18, 34, 50)
    depth_size = settings.image_size
    configs = [(10, size) for size in sizes] + [(depth, depth_size) for depth in depths
                                               if (depth, depth_size) not in
                                               [(10, s) for s in sizes]]
    calls, flops = {}, {}
    for depth, size in configs:
        net = workloads.network(settings, depth=depth, image_size=size)
        flops[(depth, size)] = forward_flops(net)
        model = workloads.trainer(net, "at_alp", k)
        images, labels = workloads.batch(settings, size=batch_size, image_size=size)
        calls[(depth, size)] = workloads.train_step_call(model, images, labels)
    named = {f"resnet{d} {s}px": call for (d, s), call in calls.items()}
    times = harness.time_alternating(named, max(2, settings.rounds - 1), 1)
    per_image = {(d, s): times[f"resnet{d} {s}px"]["median_s"] / batch_size for d, s in configs}

    def describe(config):
        depth, size = config
        seconds = per_image[config]
        return side(f"resnet{depth} {size} px", seconds, "s/image",
                    epoch_seconds=round(seconds * EPOCH_IMAGES, 2),
                    forward_gflops=round(flops[config] / 1e9, 4),
                    effective_gflops_per_s=round(flops[config] * (2 * k + 6) / seconds / 1e9,
                                                 2))

    common = {"defense": "at_alp", "pgd_iterations": k, "batch_size": batch_size,
              "width": settings.width, "stem": "auto (cifar below 96 px, imagenet from 96)",
              "epoch_images": EPOCH_IMAGES, "precision": "float32", "jit_compile": False,
              "rounds": max(2, settings.rounds - 1),
              "cost_model": "epoch s ~= N x forward_flops x (2K + 6) / effective FLOP/s"}
    entries = []
    for size in sizes[1:]:
        entries.append(entry(
            NAME, f"image size {size} px vs 32 px (resnet10)", describe((10, size)),
            describe((10, 32)), settings=common, machine_info=machine,
            flops_ratio=round(flops[(10, size)] / flops[(10, 32)], 3)))
    for depth in depths[1:]:
        entries.append(entry(
            NAME, f"depth {depth} vs 10 ({depth_size} px)", describe((depth, depth_size)),
            describe((10, depth_size)), settings=common, machine_info=machine,
            flops_ratio=round(flops[(depth, depth_size)] / flops[(10, depth_size)], 3)))
    return entries
