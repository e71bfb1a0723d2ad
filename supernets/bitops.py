"""Layer descriptors and BitOps (weight bits x activation bits x MACs) of a configuration.

The BitOps definition every supernet, environment, reward and leaderboard uses (and the model
card records as ``bitops``, see :data:`BITOPS_DEFINITION`):

* a conv or linear layer costs ``w_bits * a_bits * MACs``, with
  ``MACs = k * k * C_in * C_out * H_out * W_out / groups`` (a linear layer is a 1x1 conv on a
  1x1 map);
* a switchable layer's weights and input activations share its bit-width (W_b A_b);
* the stem conv and the classifier are fixed at 8 bits and counted at 8 x 8;
* a 1x1 downsample conv (shortcut "B") runs at the bit-width of its block's first conv;
* BatchNorm, ReLU, pooling, residual additions and the parameter-free shortcut are not counted.

``H_out`` and ``W_out`` come from the architecture's ``input_size``, which is why data of another
size is refused rather than counted at the wrong size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

REFERENCE_BITS = 8
"""The reference bit-width: that of the layers that are not switchable (stem conv and classifier), as
in ABN/HAQ, and the width observations measure bits against."""


BITOPS_DEFINITION = "w_bits*a_bits*MACs per conv/linear; stem and classifier at 8x8; BN/ReLU/pool/add not counted"
"""The one-line form of the BitOps definition above, recorded in model cards."""


@dataclass(frozen=True)
class LayerSpec:
    """Static description of one conv or linear layer, as HAQ-style controllers observe it."""

    name: str
    c_in: int
    c_out: int
    kernel: int
    stride: int
    h_out: int
    w_out: int
    groups: int = 1

    @property
    def macs(self) -> int:
        """Multiply-accumulates: k * k * C_in * C_out * H_out * W_out / groups."""
        return self.kernel * self.kernel * self.c_in * self.c_out * self.h_out * self.w_out // self.groups

    def bitops(self, bits: int) -> int:
        """BitOps of this layer with weights and activations both at ``bits``."""
        return bits * bits * self.macs

    def as_dict(self) -> dict:
        """The descriptor plus its MACs, for JSON reports."""
        return {**asdict(self), "macs": self.macs}


def bitops_unit(all8: float) -> tuple[float, str]:
    """(divisor, name) of the BitOps unit for tables of a network whose all-8 cost is ``all8``.

    GBitOps unless all-8 is under 0.1 GBitOps, then MBitOps (or kBitOps): with four decimals, a
    small network's configurations would otherwise show equal values.
    """
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if all8 >= 0.1 * scale:
            return scale, f"{prefix}BitOps"
    return 1.0, "BitOps"


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output height or width of a convolution."""
    return (size + 2 * padding - kernel) // stride + 1


def total_bitops(
    switchable: Sequence[LayerSpec],
    fixed: Sequence[LayerSpec],
    bits: Sequence[int],
    extra: Sequence[tuple[int, LayerSpec]] = (),
) -> int:
    """BitOps of a whole network: switchable layer i at ``bits[i]``, fixed layers at 8x8.

    ``extra`` lists (switchable index, layer) pairs for layers that follow another layer's
    bit-width, such as the 1x1 downsample convs of ResNet-18.
    """
    if len(bits) != len(switchable):
        raise ValueError(f"expected {len(switchable)} bit-widths, got {len(bits)}")
    total = sum(spec.bitops(int(b)) for spec, b in zip(switchable, bits))
    total += sum(spec.bitops(int(bits[i])) for i, spec in extra)
    total += sum(spec.bitops(REFERENCE_BITS) for spec in fixed)
    return int(total)
