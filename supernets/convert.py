"""Build a supernet from torchvision's ResNet-18 (ImageNet layout) by swapping in switchable convs.

For users with ImageNet and a GPU: the result has torchvision's weights in every bit-width's
slot, fresh LSQ steps, and must then be trained (``supernets.train`` shows the recipe).
The 16 3x3 convs inside the blocks are switchable; each block's 1x1 downsample conv runs at
the bit-width of the block's first conv, since both read the same input.

For small grey images (Fashion-MNIST: 1x28x28) pass ``in_channels=1, input_size=28,
grey_stem=True``: the ImageNet stem (7x7 stride-2 conv and max pool) would shrink a 28x28 image
to 7x7 before the first block, so the stem becomes the ResNet-20s' 3x3 stride-1 conv without
pooling (freshly initialised: torchvision's 7x7 weights do not fit it). With the ImageNet stem
and one input channel, the stem's weights are summed over the colour channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from supernets.foundation.errors import UsageError
from supernets.resnet import BIT_CHOICES, ResNetConfig, ResNetSupernet

RESNET18_CONFIG = ResNetConfig(
    in_channels=3,
    num_classes=1000,
    input_size=224,
    stem_channels=64,
    stem_kernel=7,
    stem_stride=2,
    stem_pool=True,
    stage_channels=(64, 128, 256, 512),
    blocks_per_stage=(2, 2, 2, 2),
    stage_strides=(1, 2, 2, 2),
    shortcut="B",
)


@torch.no_grad()
def resnet18_config(
    in_channels: int = 3,
    input_size: int = 224,
    grey_stem: bool = False,
    num_classes: int = 1000,
    bit_choices: Sequence[int] = BIT_CHOICES,
) -> ResNetConfig:
    """The ResNet-18 layout for ``in_channels`` x ``input_size`` inputs (see the module docstring).

    Args:
        in_channels: input image channels (3 for ImageNet, 1 for grey images).
        input_size: input height and width.
        grey_stem: a 3x3 stride-1 stem without max pool, for small images like Fashion-MNIST's.
        num_classes: classifier outputs.
        bit_choices: candidate bit-widths of the switchable layers.
    """
    if in_channels < 1 or input_size < 1:
        raise UsageError(f"in_channels and input_size must be positive, got {in_channels} and {input_size}")
    stem = {"stem_kernel": 3, "stem_stride": 1, "stem_pool": False} if grey_stem else {}
    if not grey_stem and input_size < 64:
        raise UsageError(
            f"the ImageNet stem shrinks {input_size}x{input_size} inputs 4x before the first block (and 32x in "
            "all); pass grey_stem=True for small images such as Fashion-MNIST's 28x28"
        )
    d = {
        **RESNET18_CONFIG.as_dict(),
        **stem,
        "in_channels": in_channels,
        "input_size": input_size,
        "num_classes": num_classes,
        "bit_choices": tuple(bit_choices),
    }
    return ResNetConfig.from_dict(d)


@torch.no_grad()
def from_torchvision_resnet18(
    model: nn.Module | None = None,
    bit_choices: Sequence[int] = BIT_CHOICES,
    calibration: torch.Tensor | None = None,
    in_channels: int = 3,
    input_size: int = 224,
    grey_stem: bool = False,
    num_classes: int | None = None,
) -> ResNetSupernet:
    """Supernet with the layout and weights of a torchvision ``resnet18`` (random weights when None).

    Args:
        model: a ``torchvision.models.resnet18`` instance; None builds one with random weights.
        bit_choices: candidate bit-widths of the switchable layers.
        calibration: a normalised input batch (N, in_channels, H, W) used to initialise the LSQ
            steps (optional).
        in_channels: input channels: 3 (ImageNet), or 1 for grey images.
        input_size: input height and width: 224 (ImageNet), or 28 for Fashion-MNIST.
        grey_stem: replace the ImageNet stem by a fresh 3x3 stride-1 conv without max pool.
        num_classes: classifier outputs (default: the model's); a different number gets a fresh classifier.
    """
    if model is None:
        # lazy: torchvision costs seconds at import, and only converting its ResNet-18 needs it
        from torchvision.models import resnet18

        model = resnet18(weights=None)
    classes = int(model.fc.out_features) if num_classes is None else int(num_classes)
    config = resnet18_config(in_channels, input_size, grey_stem, classes, bit_choices)
    # Only the channels must match: the network pools globally, and input_size only sets its BitOps.
    if calibration is not None and (calibration.ndim != 4 or calibration.shape[1] != in_channels):
        raise UsageError(
            f"calibration batch has shape {tuple(calibration.shape)}, but the network takes (N, {in_channels}, H, W) "
            "inputs; pass the matching in_channels"
        )
    net = ResNetSupernet(config)
    if not grey_stem:
        weight = model.conv1.weight
        if in_channels != weight.shape[1]:
            if in_channels != 1:
                raise UsageError(
                    f"the model's stem takes {weight.shape[1]} channels; in_channels={in_channels} can only be "
                    f"{weight.shape[1]} or 1 (colour weights summed to grey)"
                )
            weight = weight.sum(1, keepdim=True)
        net.stem.weight.copy_(weight)
        net.stem.load_float_bn(model.bn1)
    blocks = [b for layer in (model.layer1, model.layer2, model.layer3, model.layer4) for b in layer]
    if len(blocks) * 2 != net.num_switchable:
        raise ValueError(f"expected a ResNet-18 with 8 basic blocks, got {len(blocks)} blocks")
    for k, block in enumerate(blocks):
        for conv, bn, target in (
            (block.conv1, block.bn1, net.convs[2 * k]),
            (block.conv2, block.bn2, net.convs[2 * k + 1]),
        ):
            target.weight.copy_(conv.weight)
            target.load_float_bn(bn)
        if block.downsample is not None:
            ds = net.downsample[str(k)]
            ds.weight.copy_(block.downsample[0].weight)
            ds.load_float_bn(block.downsample[1])
    if classes == model.fc.out_features:
        net.fc.weight.copy_(model.fc.weight)
        net.fc.bias.copy_(model.fc.bias)
    if calibration is not None:
        net.init_quantizers(calibration)
    return net
