"""Build a supernet from torchvision's ResNet-18 (ImageNet layout) by swapping in switchable convs.

For users with ImageNet and a GPU: the result has torchvision's weights in every bit-width's
slot, fresh LSQ steps, and must then be trained (``supernets.train`` shows the recipe).
The 16 3x3 convs inside the blocks are switchable; each block's 1x1 downsample conv runs at
the bit-width of the block's first conv, since both read the same input.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

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
def from_torchvision_resnet18(
    model: nn.Module | None = None, bit_choices: Sequence[int] = BIT_CHOICES, calibration: torch.Tensor | None = None
) -> ResNetSupernet:
    """Supernet with the layout and weights of a torchvision ``resnet18`` (random weights when None).

    Args:
        model: a ``torchvision.models.resnet18`` instance; None builds one with random weights.
        bit_choices: candidate bit-widths of the switchable layers.
        calibration: a normalised input batch used to initialise the LSQ steps (optional).
    """
    if model is None:
        from torchvision.models import resnet18

        model = resnet18(weights=None)
    config = ResNetConfig(**{**RESNET18_CONFIG.as_dict(), "bit_choices": tuple(bit_choices)})
    config = ResNetConfig.from_dict(config.as_dict())
    net = ResNetSupernet(config)
    net.stem.weight.copy_(model.conv1.weight)
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
    net.fc.weight.copy_(model.fc.weight)
    net.fc.bias.copy_(model.fc.bias)
    if calibration is not None:
        net.init_quantizers(calibration)
    return net
