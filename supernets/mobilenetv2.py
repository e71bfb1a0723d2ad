"""MobileNetV2-style supernets: the ``mobilenetv2`` family (inverted residual blocks).

Each block is a 1x1 expand conv (skipped when the expansion factor is 1), a 3x3 depthwise
conv, and a 1x1 linear projection with no ReLU (the linear bottleneck), with a residual when
the block keeps its shape. Every conv is a switchable layer, so a controller can give the
depthwise convs, which are the most sensitive to few bits, more bits than the 1x1 convs. A
final 1x1 conv with a ReLU feeds the fixed 8-bit classifier. The expand conv reads a linear
bottleneck's output, so it quantizes its input as signed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar

from supernets.foundation.errors import UsageError
from supernets.supernet import BIT_CHOICES, ArchConfig, LayerPlan, Plan, StemPlan


@dataclass(frozen=True)
class MobileNetV2Config(ArchConfig):
    """Architecture of a MobileNetV2-style supernet (``family = "mobilenetv2"``).

    Args:
        in_channels: image channels.
        num_classes: classifier outputs.
        input_size: image height and width.
        stem_channels: channels of the fixed 8-bit 3x3 stem conv.
        stem_stride: the stem conv's stride.
        stage_channels: output channels of each stage's blocks.
        blocks_per_stage: inverted residual blocks per stage.
        stage_strides: the stride of each stage's first block (on its depthwise conv).
        expansion: hidden channels = expansion x input channels, per stage.
        last_channels: channels of the final switchable 1x1 conv before pooling.
        bit_choices: the trained bit-widths.
    """

    family: ClassVar[str] = "mobilenetv2"
    stem_channels: int = 16
    stem_stride: int = 1
    stage_channels: tuple[int, ...] = (8, 16, 24, 32)
    blocks_per_stage: tuple[int, ...] = (1, 2, 2, 1)
    stage_strides: tuple[int, ...] = (2, 2, 2, 1)
    expansion: tuple[int, ...] = (1, 3, 3, 3)
    last_channels: int = 64
    bit_choices: tuple[int, ...] = field(default=BIT_CHOICES)

    def plan(self) -> Plan:
        """Expand (if expansion > 1), depthwise, linear projection per block; then the last 1x1 conv."""
        layers: list[LayerPlan] = []
        c_in = self.stem_channels
        for stage, (c_out, n, stride, t) in enumerate(
            zip(self.stage_channels, self.blocks_per_stage, self.stage_strides, self.expansion)
        ):
            for j in range(n):
                name = f"stage{stage + 1}.block{j + 1}"
                s = stride if j == 0 else 1
                residual = s == 1 and c_in == c_out
                hidden = c_in * t
                block = []
                if t != 1:
                    block.append(LayerPlan(f"{name}.expand", hidden, 1, 1, kind="expand"))
                block.append(LayerPlan(f"{name}.depthwise", hidden, 3, s, groups=hidden, kind="depthwise"))
                block.append(LayerPlan(f"{name}.project", c_out, 1, 1, kind="project", relu=False, closes=residual))
                if residual:
                    block[0] = replace(block[0], opens="A")
                layers.extend(block)
                c_in = c_out
        layers.append(LayerPlan("last", self.last_channels, 1, 1, kind="pointwise"))
        return Plan(StemPlan(self.stem_channels, 3, self.stem_stride), tuple(layers))

    def validate(self) -> MobileNetV2Config:
        """Return self, or raise a :class:`UsageError` naming the field that cannot build a network."""
        stages = (self.stage_channels, self.blocks_per_stage, self.stage_strides, self.expansion)
        if not self.stage_channels or len({len(t) for t in stages}) != 1:
            raise UsageError(
                "architecture fields stage_channels, blocks_per_stage, stage_strides and expansion need one value "
                f"per stage (the same number of each), got {[list(t) for t in stages]}"
            )
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for t in stages for v in t):
            raise UsageError("architecture stage fields must hold positive ints")
        self.require_positive("stem_channels", "stem_stride", "last_channels")
        return super().validate()
