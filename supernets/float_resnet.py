"""Plain full-precision ResNet with the supernet's layout: the accuracy reference and warm start."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from supernets.resnet import ResNetConfig, ResNetSupernet


class FloatResNet(nn.Module):
    """Full-precision basic-block ResNet, layer for layer the same as :class:`ResNetSupernet`.

    Args:
        config: the architecture; its ``bit_choices`` are ignored.
    """

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__()
        self.config = config
        # Borrow the supernet's shape bookkeeping so the two layouts cannot drift apart.
        ref = ResNetSupernet(config)
        self._shortcut_stride, self._shortcut_pad = ref._shortcut_stride, ref._shortcut_pad
        self.stem = nn.Conv2d(
            config.in_channels,
            config.stem_channels,
            config.stem_kernel,
            config.stem_stride,
            config.stem_kernel // 2,
            bias=False,
        )
        self.stem_bn = nn.BatchNorm2d(config.stem_channels)
        self.convs = nn.ModuleList(
            nn.Conv2d(c.in_channels, c.out_channels, 3, c.stride, 1, bias=False) for c in ref.convs
        )
        self.bns = nn.ModuleList(nn.BatchNorm2d(c.out_channels) for c in ref.convs)
        self.downsample = nn.ModuleDict(
            {
                k: nn.Sequential(
                    nn.Conv2d(d.in_channels, d.out_channels, 1, d.stride, bias=False), nn.BatchNorm2d(d.out_channels)
                )
                for k, d in ref.downsample.items()
            }
        )
        self.fc = nn.Linear(ref.fc.in_features, ref.fc.out_features)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a normalised image batch."""
        x = F.relu(self.stem_bn(self.stem(x)))
        if self.config.stem_pool:
            x = F.max_pool2d(x, 3, 2, 1)
        for block in range(len(self.convs) // 2):
            if str(block) in self.downsample:
                sc = self.downsample[str(block)](x)
            else:
                stride, pad = self._shortcut_stride[block], self._shortcut_pad[block]
                sc = x[:, :, ::stride, ::stride] if stride != 1 else x
                sc = F.pad(sc, (0, 0, 0, 0, pad, pad)) if pad else sc
            h = F.relu(self.bns[2 * block](self.convs[2 * block](x)))
            x = F.relu(self.bns[2 * block + 1](self.convs[2 * block + 1](h)) + sc)
        return self.fc(x.mean(dim=(2, 3)))


@torch.no_grad()
def warm_start(supernet: ResNetSupernet, model: FloatResNet) -> None:
    """Copy a trained full-precision model's weights and BN statistics into every bit-width."""
    supernet.stem.weight.copy_(model.stem.weight)
    supernet.stem.load_float_bn(model.stem_bn)
    for conv, fconv, bn in zip(supernet.convs, model.convs, model.bns):
        conv.weight.copy_(fconv.weight)
        conv.load_float_bn(bn)
    for key, ds in supernet.downsample.items():
        ds.weight.copy_(model.downsample[key][0].weight)
        ds.load_float_bn(model.downsample[key][1])
    supernet.fc.weight.copy_(model.fc.weight)
    supernet.fc.bias.copy_(model.fc.bias)
