"""`build_resnet`: functional ResNet v1 whose outputs are the logits and the four conv groups."""

import keras

from tf_atalp.models import blocks
from tf_atalp.models._validation import check_at_least, check_choice, check_image_size
from tf_atalp.models.denoising import NonLocalDenoising
from tf_atalp.models.heads import GROUP_NAMES, classifier_logits
from tf_atalp.models.ensemble import build_ensemble
from tf_atalp.models.layers import ImageNormalization, PersistentNoise
from tf_atalp.models.outputs import with_feature_outputs

# depth -> (block function, number of blocks in conv2_x .. conv5_x)
ARCHITECTURES = {
    10: (blocks.basic_block, (1, 1, 1, 1)),
    18: (blocks.basic_block, (2, 2, 2, 2)),
    34: (blocks.basic_block, (3, 4, 6, 3)),
    50: (blocks.bottleneck_block, (3, 4, 6, 3)),
    101: (blocks.bottleneck_block, (3, 4, 23, 3)),
    152: (blocks.bottleneck_block, (3, 8, 36, 3)),
}
DEPTHS = tuple(ARCHITECTURES)
STEMS = ("auto", "imagenet", "cifar")
IMAGENET_STEM_MIN_SIZE = 96  # "auto" picks the cifar stem below this size.


def build_resnet(
        depth,
        num_classes,
        image_size,
        width=64,
        *,
        stem="auto",
        denoise_groups=(),
        denoise_kwargs=None,
        input_noise_scale=0.0,
        input_noise_distribution="gaussian",
        input_noise_seed=None,
        members=1,
        name=None,
) -> keras.Model:
    """Builds a ResNet v1 classifier for float images in [0, 1].

    Args:
        depth: one of DEPTHS (10, 18, 34 basic blocks; 50, 101, 152 bottlenecks).
        num_classes: K, the number of logits.
        image_size: side S of the square RGB input, >= 32 pixels.
        width: channels of conv2_x; the groups have width * (1, 2, 4, 8)
            channels (times 4 for bottleneck outputs).
        stem: "imagenet" (7x7/2 conv + 3x3/2 max pool), "cifar" (3x3/1 conv)
            or "auto" ("cifar" if S < 96 else "imagenet").
        denoise_groups: names from GROUP_NAMES after which a NonLocalDenoising
            block is inserted (Xie et al. 2018); the group output is the
            denoised one.
        denoise_kwargs: keyword arguments of NonLocalDenoising (e.g. `mode`).
        input_noise_scale: if > 0, a PersistentNoise layer (RAT) with this
            scale, in pixel units, is applied to the input, on at inference too.
        input_noise_distribution: that layer's distribution (NOISE_DISTRIBUTIONS).
        input_noise_seed: int seed of that noise layer, or None.
        members: M >= 1. M > 1 builds an ensemble of M such ResNets on one
            input (ADP, Pang et al. 2019): see `tf_atalp.models.ensemble`.
        name: the model name; default f"resnet{depth}".

    Returns:
        A functional keras.Model from [N, S, S, 3] images in [0, 1] to
        `{"logits": [N, K] float32, "features": {"conv2_x": ..., ..., "conv5_x": ...}}`
        (see `tf_atalp.models.outputs`), each group output [N, H, W, C] taken
        after the last block's ReLU (or its denoising block). With the
        imagenet stem the groups have strides 4, 8, 16, 32; with the cifar
        stem 1, 2, 4, 8 (rounded up).
    """
    check_choice("depth", depth, DEPTHS)
    check_at_least("num_classes", num_classes, 1)
    check_image_size(image_size)
    check_at_least("width", width, 1)
    check_choice("stem", stem, STEMS)
    _check_denoising(denoise_groups, denoise_kwargs)
    if not input_noise_scale >= 0:
        raise ValueError(
                "`input_noise_scale` must be >= 0. "
                f"Received: input_noise_scale={input_noise_scale}")
    check_at_least("members", members, 1)
    if members > 1:
        member_options = dict(width=width, stem=stem, denoise_groups=denoise_groups,
                              denoise_kwargs=denoise_kwargs,
                              input_noise_scale=input_noise_scale,
                              input_noise_distribution=input_noise_distribution,
                              input_noise_seed=input_noise_seed)
        return build_ensemble(
                [build_resnet(depth, num_classes, image_size, name=f"member_{index}",
                              **member_options) for index in range(members)],
                name=name or f"resnet{depth}_ensemble{members}")
    if stem == "auto":
        stem = "cifar" if image_size < IMAGENET_STEM_MIN_SIZE else "imagenet"

    inputs = keras.Input((image_size, image_size, 3), name="images")
    x = inputs
    # Pixel-space layers run in float32 so small perturbations survive mixed precision.
    if input_noise_scale > 0:
        x = PersistentNoise(input_noise_scale, input_noise_distribution, seed=input_noise_seed,
                            dtype="float32", name="input_noise")(x)
    x = ImageNormalization(dtype="float32", name="normalization")(x)
    x = blocks.cifar_stem(x, width) if stem == "cifar" else blocks.imagenet_stem(x, width)

    block, counts = ARCHITECTURES[depth]
    group_layers = {}
    for index, (group, num_blocks) in enumerate(zip(GROUP_NAMES, counts)):
        for block_index in range(num_blocks):
            stride = 2 if index > 0 and block_index == 0 else 1
            block_name = f"conv{index + 2}_block{block_index + 1}"
            x = block(x, width * 2**index, stride, name=block_name)
        group_layers[group] = f"{block_name}_out"
        if group in denoise_groups:
            group_layers[group] = f"{group}_denoise"
            x = NonLocalDenoising(**(denoise_kwargs or {}), name=group_layers[group])(x)
    classifier = keras.Model(inputs, classifier_logits(x, num_classes))
    return with_feature_outputs(classifier, group_layers, name=name or f"resnet{depth}")


def _check_denoising(denoise_groups, denoise_kwargs):
    if isinstance(denoise_groups, str) or any(g not in GROUP_NAMES for g in denoise_groups):
        raise ValueError(
                f"`denoise_groups` must be a collection of names from {GROUP_NAMES}. "
                f"Received: denoise_groups={denoise_groups!r}")
    if denoise_kwargs and not denoise_groups:
        raise ValueError(
                "`denoise_kwargs` is only used with a non-empty `denoise_groups`. "
                f"Received: denoise_kwargs={denoise_kwargs!r}, denoise_groups={denoise_groups!r}")
