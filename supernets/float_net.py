"""Plain full-precision networks with a supernet's layout: the accuracy reference and warm start.

One class for every family: it reads the supernet's plan, so the two layouts cannot drift apart.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from supernets.families import build_supernet
from supernets.supernet import ArchConfig, Supernet


class FloatSupernet(nn.Module):
    """Full-precision network, layer for layer the same as the :class:`Supernet` of ``config``.

    Args:
        config: the architecture; its ``bit_choices`` are ignored.
    """

    def __init__(self, config: ArchConfig) -> None:
        super().__init__()
        self.config = config
        # Borrow the supernet's shape bookkeeping so the two layouts cannot drift apart.
        ref = build_supernet(config)
        self._steps, self._stem_pool = ref._steps, ref._stem_pool
        self._shortcut_stride, self._shortcut_pad = ref._shortcut_stride, ref._shortcut_pad
        stem = ref.stem
        self.stem = nn.Conv2d(
            stem.in_channels, stem.out_channels, stem.kernel_size, stem.stride, stem.padding, bias=False
        )
        self.stem_bn = nn.BatchNorm2d(stem.out_channels)
        self.convs = nn.ModuleList(
            nn.Conv2d(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding, bias=False, groups=c.groups)
            for c in ref._conv_seq
        )
        self.bns = nn.ModuleList(nn.BatchNorm2d(c.out_channels) for c in ref._conv_seq)
        self.downsample = nn.ModuleDict(
            {
                str(b): nn.Sequential(
                    nn.Conv2d(d.in_channels, d.out_channels, 1, d.stride, bias=False), nn.BatchNorm2d(d.out_channels)
                )
                for b, d in enumerate(ref._projection_seq)
                if d is not None
            }
        )
        self.fc = nn.Linear(ref.fc.in_features, ref.fc.out_features)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _shortcut(self, block: int, x: torch.Tensor) -> torch.Tensor:
        if str(block) in self.downsample:
            return self.downsample[str(block)](x)
        stride, pad = self._shortcut_stride[block], self._shortcut_pad[block]
        sc = x[:, :, ::stride, ::stride] if stride != 1 else x
        return F.pad(sc, (0, 0, 0, 0, pad, pad)) if pad else sc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a normalised image batch."""
        x = F.relu(self.stem_bn(self.stem(x)))
        if self._stem_pool:
            x = F.max_pool2d(x, 3, 2, 1)
        pending = None
        for conv, bn, step in zip(self.convs, self.bns, self._steps):
            if step.opens:
                pending = self._shortcut(step.block, x)
            x = bn(conv(x))
            if step.closes:
                assert pending is not None, "a plan closes only a residual it opened (check_plan)"
                x, pending = x + pending, None
            if step.relu:
                x = F.relu(x)
            if step.pool:
                x = F.max_pool2d(x, step.pool)
        return self.fc(x.mean(dim=(2, 3)))


@torch.no_grad()
def warm_start(supernet: Supernet, model: FloatSupernet) -> None:
    """Copy a trained full-precision model's weights and BN statistics into every bit-width."""
    supernet.stem.weight.copy_(model.stem.weight)
    supernet.stem.load_float_bn(model.stem_bn)
    for conv, fconv, bn in zip(supernet._conv_seq, model.convs, model.bns):
        conv.weight.copy_(cast(nn.Conv2d, fconv).weight)
        conv.load_float_bn(cast(nn.BatchNorm2d, bn))
    for b, ds in enumerate(supernet._projection_seq):
        if ds is not None:
            pair = cast(nn.Sequential, model.downsample[str(b)])
            ds.weight.copy_(cast(nn.Conv2d, pair[0]).weight)
            ds.load_float_bn(cast(nn.BatchNorm2d, pair[1]))
    supernet.fc.weight.copy_(model.fc.weight)
    supernet.fc.bias.copy_(model.fc.bias)
