"""Plain (VGG-style) CNN supernets: the ``plain`` family, a stack of convs with no skips.

Every conv is a switchable layer with a ReLU, optionally followed by a 2x2 max-pool; any
number of layers, odd or even.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from supernets.foundation.errors import UsageError
from supernets.supernet import BIT_CHOICES, ArchConfig, LayerPlan, Plan, StemPlan


@dataclass(frozen=True)
class PlainConfig(ArchConfig):
    """Architecture of a plain CNN supernet (``family = "plain"``).

    Args:
        in_channels: image channels.
        num_classes: classifier outputs.
        input_size: image height and width.
        stem_channels: channels of the fixed 8-bit stem conv.
        stem_kernel: the stem conv's kernel.
        stem_stride: the stem conv's stride.
        channels: output channels of each switchable conv (one value per layer).
        kernels: kernel of each conv (one value per layer, or one value for all).
        strides: stride of each conv (one value per layer, or one value for all).
        pools: 2x2 max-pool after each conv: 1 (pool) or 0 (none), one value per layer.
        bit_choices: the trained bit-widths.
    """

    family: ClassVar[str] = "plain"
    stem_channels: int = 16
    stem_kernel: int = 3
    stem_stride: int = 1
    channels: tuple[int, ...] = (16, 32, 32, 64, 64)
    kernels: tuple[int, ...] = (3,)
    strides: tuple[int, ...] = (1,)
    pools: tuple[int, ...] = (0, 1, 0, 1, 0)
    bit_choices: tuple[int, ...] = field(default=BIT_CHOICES)

    def _per_layer(self, name: str) -> tuple[int, ...]:
        values = getattr(self, name)
        return values * len(self.channels) if len(values) == 1 else values

    def plan(self) -> Plan:
        """One switchable conv per entry of ``channels``, each followed by its pool if any."""
        layers = tuple(
            LayerPlan(f"conv{i + 1}", c, k, s, pool=2 if p else 0)
            for i, (c, k, s, p) in enumerate(
                zip(self.channels, self._per_layer("kernels"), self._per_layer("strides"), self._per_layer("pools"))
            )
        )
        return Plan(StemPlan(self.stem_channels, self.stem_kernel, self.stem_stride), layers)

    def validate(self) -> PlainConfig:
        """Return self, or raise a :class:`UsageError` naming the field that cannot build a network."""
        if not self.channels:
            raise UsageError("architecture field channels=[]: give one output channel count per switchable conv")
        for name in ("kernels", "strides", "pools"):
            values = getattr(self, name)
            if len(values) not in (1, len(self.channels)):
                raise UsageError(
                    f"architecture field {name} has {len(values)} values: give one, or one per conv "
                    f"({len(self.channels)}, as in channels)"
                )
        if any(p not in (0, 1) or isinstance(p, bool) for p in self.pools):
            raise UsageError(f"architecture field pools={list(self.pools)}: expected 0 (no pool) or 1 (2x2 max-pool)")
        self.require_positive("stem_channels", "stem_kernel", "stem_stride")
        return super().validate()
