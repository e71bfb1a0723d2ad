"""Basic-block ResNet supernets: the ``resnet`` family of the one supernet interface.

One config covers both shipped layouts: ResNet-20 for 28x28 grey images (parameter-free
"option A" shortcuts) and the torchvision ResNet-18 ImageNet layout (1x1 conv shortcuts, see
``supernets.convert``). Switchable layers are the 3x3 convs inside the blocks; the stem conv
and the classifier are fixed at 8 bits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from supernets.bitops import conv_out
from supernets.foundation.errors import UsageError
from supernets.supernet import BIT_CHOICES, ArchConfig, LayerPlan, Plan, State, StemPlan, Supernet

__all__ = ["BIT_CHOICES", "ResNetConfig", "ResNetSupernet", "State", "resnet20"]


@dataclass(frozen=True)
class ResNetConfig(ArchConfig):
    """Architecture of a basic-block ResNet supernet (``family = "resnet"``, the default).

    Args:
        in_channels: image channels.
        num_classes: classifier outputs.
        input_size: image height and width.
        stem_channels: channels of the fixed 8-bit stem conv.
        stem_kernel: the stem conv's kernel.
        stem_stride: the stem conv's stride.
        stem_pool: a 3x3/2 max-pool after the stem.
        stage_channels: output channels of each stage.
        blocks_per_stage: basic blocks (two switchable 3x3 convs each) per stage.
        stage_strides: the stride of each stage's first block.
        shortcut: "A" parameter-free (subsample + zero-pad) or "B" (1x1 conv + BN) where shapes change.
        bit_choices: the trained bit-widths.
    """

    family: ClassVar[str] = "resnet"
    stem_channels: int = 16
    stem_kernel: int = 3
    stem_stride: int = 1
    stem_pool: bool = False
    stage_channels: tuple[int, ...] = (16, 32, 64)
    blocks_per_stage: tuple[int, ...] = (3, 3, 3)
    stage_strides: tuple[int, ...] = (1, 2, 2)
    shortcut: str = "A"  # "A": parameter-free (subsample + zero-pad); "B": 1x1 conv + BN
    bit_choices: tuple[int, ...] = field(default=BIT_CHOICES)

    def plan(self) -> Plan:
        """Two switchable 3x3 convs per basic block; the block's first opens the residual, its second closes it."""
        layers = []
        for stage, (c_out, n_blocks, stage_stride) in enumerate(
            zip(self.stage_channels, self.blocks_per_stage, self.stage_strides)
        ):
            for j in range(n_blocks):
                name = f"stage{stage + 1}.block{j + 1}"
                stride = stage_stride if j == 0 else 1
                layers.append(
                    LayerPlan(
                        f"{name}.conv1", c_out, 3, stride, opens=self.shortcut, shortcut_name=f"{name}.downsample"
                    )
                )
                layers.append(LayerPlan(f"{name}.conv2", c_out, 3, 1, closes=True))
        return Plan(StemPlan(self.stem_channels, self.stem_kernel, self.stem_stride, self.stem_pool), tuple(layers))

    def validate(self) -> ResNetConfig:
        """Return self, or raise a :class:`UsageError` naming the first field that cannot build a network."""
        self.require_positive("in_channels", "num_classes", "input_size", "stem_channels", "stem_kernel", "stem_stride")
        stages = (self.stage_channels, self.blocks_per_stage, self.stage_strides)
        if not self.stage_channels or len({len(t) for t in stages}) != 1:
            raise UsageError(
                "architecture fields stage_channels, blocks_per_stage and stage_strides need one value per stage "
                f"(the same number of each), got {list(self.stage_channels)}, {list(self.blocks_per_stage)}, "
                f"{list(self.stage_strides)}"
            )
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for t in stages for v in t):
            raise UsageError("architecture stage fields must hold positive ints")
        if self.shortcut not in ("A", "B"):
            raise UsageError(
                f"architecture field shortcut={self.shortcut!r}: expected 'A' (parameter-free) or 'B' (1x1 conv)"
            )
        size = conv_out(self.input_size, self.stem_kernel, self.stem_stride, self.stem_kernel // 2)
        size = conv_out(size, 3, 2, 1) if self.stem_pool else size
        sizes = [size]
        for stride in self.stage_strides:
            sizes.append(conv_out(sizes[-1], 3, stride, 1))
        if sizes[-1] < 1:
            raise UsageError(
                f"input_size={self.input_size} is too small for the stem and stage strides of this architecture"
            )
        if sizes[-1] == 1 and self.input_size > 1:
            # At 1x1 a 3x3 conv with zero padding reads only its centre weight: the stage is degenerate.
            trace = " -> ".join(f"{n}x{n}" for n in [self.input_size, *sizes])
            raise UsageError(
                f"input_size={self.input_size}: the stem and stage strides shrink it to 1x1 ({trace}), where each "
                "3x3 conv reads only its centre weight; give a larger input_size, or stride 1 to a stage "
                "(stage_strides) or the stem (stem_stride, stem_pool)"
            )
        return super().validate()


class ResNetSupernet(Supernet):
    """A :class:`~supernets.supernet.Supernet` of the ``resnet`` family.

    Args:
        config: the architecture (see :class:`ResNetConfig`).
    """

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__(config)


def resnet20(bit_choices: Sequence[int] = BIT_CHOICES, num_classes: int = 10) -> ResNetSupernet:
    """ResNet-20 supernet for 28x28 grey images (Fashion-MNIST): 18 switchable 3x3 convs."""
    return ResNetSupernet(ResNetConfig(num_classes=num_classes, bit_choices=tuple(bit_choices)))
