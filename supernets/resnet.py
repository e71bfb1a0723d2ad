"""Basic-block ResNet supernets with a step-wise inference API (stem -> layer i at b bits -> head).

One class covers both shipped layouts: ResNet-20 for 28x28 grey images (parameter-free
"option A" shortcuts) and the torchvision ResNet-18 ImageNet layout (1x1 conv shortcuts, see
``supernets.convert``). Switchable layers are the 3x3 convs inside the blocks; the stem conv
and the classifier are fixed at 8 bits.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from supernets.bitops import REFERENCE_BITS, LayerSpec, conv_out, total_bitops
from supernets.foundation.errors import UsageError
from supernets.layers import QuantLinear, SwitchableConv2d, inverse_permutation, take_rows

BIT_CHOICES: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8)
"""Every bit-width the shipped supernets are trained for."""


class State(NamedTuple):
    """Activations between two steps: the main path and, inside a block, its shortcut.

    A step with mixed bit-widths leaves its output grouped by bit-width rather than in batch
    order (putting it back costs as much as the layer's gathers): ``rows[k]`` is then the
    batch row held at position ``k`` of ``x``, and ``shortcut_rows`` the same for
    ``shortcut``. ``None`` means in batch order. :meth:`select` and
    :meth:`ResNetSupernet.head` give results in batch order whatever the layout.
    """

    x: torch.Tensor
    shortcut: torch.Tensor | None
    rows: np.ndarray | None = None
    shortcut_rows: np.ndarray | None = None

    def positions(self, rows: np.ndarray, of_shortcut: bool = False) -> np.ndarray:
        """Where batch rows ``rows`` sit in ``x`` (or in ``shortcut``)."""
        held = self.shortcut_rows if of_shortcut else self.rows
        return np.asarray(rows, dtype=np.int64) if held is None else inverse_permutation(held)[rows]

    def select(self, rows: np.ndarray | slice) -> State:
        """Batch rows ``rows`` (indices, or a slice), in that order, as a state in batch order."""
        if isinstance(rows, slice):
            if self.rows is None and self.shortcut_rows is None:  # views, no copy
                return State(self.x[rows], None if self.shortcut is None else self.shortcut[rows])
            rows = np.arange(self.x.shape[0])[rows]
        device = self.x.device
        x = take_rows(self.x, torch.from_numpy(self.positions(rows)).to(device))
        if self.shortcut is None:
            return State(x, None)
        return State(x, take_rows(self.shortcut, torch.from_numpy(self.positions(rows, True)).to(device)))


@dataclass(frozen=True)
class ResNetConfig:
    """Architecture of a basic-block ResNet supernet; stored in checkpoints to detect mismatches."""

    in_channels: int = 1
    num_classes: int = 10
    input_size: int = 28
    stem_channels: int = 16
    stem_kernel: int = 3
    stem_stride: int = 1
    stem_pool: bool = False
    stage_channels: tuple[int, ...] = (16, 32, 64)
    blocks_per_stage: tuple[int, ...] = (3, 3, 3)
    stage_strides: tuple[int, ...] = (1, 2, 2)
    shortcut: str = "A"  # "A": parameter-free (subsample + zero-pad); "B": 1x1 conv + BN
    bit_choices: tuple[int, ...] = field(default=BIT_CHOICES)

    def as_dict(self) -> dict:
        """JSON-friendly form (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> ResNetConfig:
        """Inverse of :meth:`as_dict`."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})  # type: ignore[arg-type]

    def validate(self) -> ResNetConfig:
        """Return self, or raise a :class:`UsageError` naming the first field that cannot build a network."""
        ints = ("in_channels", "num_classes", "input_size", "stem_channels", "stem_kernel", "stem_stride")
        for name in ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"architecture field {name}={value!r}: expected a positive int")
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
        bits = self.bit_choices
        if not bits or len(set(bits)) != len(bits) or any(isinstance(b, bool) or b not in range(2, 9) for b in bits):
            raise UsageError(f"architecture field bit_choices={list(bits)}: expected distinct ints from 2 to 8")
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
        return self


ARCHITECTURES: dict[str, ResNetConfig] = {
    "resnet20": ResNetConfig(),
    # Narrower ResNet-20s for Fashion-MNIST: less capacity, so low bit-widths cost more accuracy.
    "resnet20-w4": ResNetConfig(stem_channels=4, stage_channels=(4, 8, 16)),
    "resnet20-w6": ResNetConfig(stem_channels=6, stage_channels=(6, 12, 24)),
    "resnet20-w8": ResNetConfig(stem_channels=8, stage_channels=(8, 16, 32)),
}
"""Named architectures that ``abn-gym supernet train --arch`` and the capacity sweep accept."""


def architecture(name: str) -> ResNetConfig:
    """The :class:`ResNetConfig` registered as ``name``, or a ValueError listing the names."""
    if name not in ARCHITECTURES:
        raise UsageError(
            f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}, or describe your own in a "
            "JSON or TOML file and pass --arch-config FILE"
        )
    return ARCHITECTURES[name]


def _toml():
    try:
        # lazy: only TOML configs need it (on Python 3.10 it is the optional tomli package)
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib  # the same API, on Python 3.10
        except ImportError:
            raise UsageError("a TOML architecture config needs Python 3.11 or the tomli package; use JSON") from None
    return tomllib


def load_arch_config(path: str | os.PathLike) -> ResNetConfig:
    """A :class:`ResNetConfig` from a JSON or TOML file whose keys are its fields (missing ones keep defaults)."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"architecture config {path} does not exist")
    loads = _toml().loads if p.suffix.lower() == ".toml" else json.loads
    try:
        data = loads(p.read_text())
    except Exception as exc:
        raise UsageError(f"architecture config {path} could not be parsed ({type(exc).__name__}: {exc})") from None
    data = data.get("architecture", data) if isinstance(data, dict) else data
    if not isinstance(data, dict):
        raise UsageError(f"architecture config {path} must hold a table/object of ResNetConfig fields")
    fields = {f.name for f in dataclasses.fields(ResNetConfig)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise UsageError(f"architecture config {path} has unknown fields {unknown}; known fields: {sorted(fields)}")
    return ResNetConfig.from_dict(data).validate()


class ResNetSupernet(nn.Module):
    """Weight-shared, layer-wise quantizable ResNet: any bit-width per switchable layer.

    Args:
        config: the architecture (see :class:`ResNetConfig`).
    """

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__()
        self.config = config.validate()
        self.bit_choices: tuple[int, ...] = tuple(sorted(config.bit_choices))
        self.stem = SwitchableConv2d(
            config.in_channels, config.stem_channels, config.stem_kernel, config.stem_stride, (REFERENCE_BITS,), True
        )
        convs: list[SwitchableConv2d] = []
        downsample: dict[str, SwitchableConv2d] = {}
        specs: list[LayerSpec] = []
        self._shortcut_pad: list[int] = []  # option A: zero channels added on each side, per block
        self._shortcut_stride: list[int] = []
        size = conv_out(config.input_size, config.stem_kernel, config.stem_stride, config.stem_kernel // 2)
        self.fixed_specs: list[LayerSpec] = [
            LayerSpec(
                "stem", config.in_channels, config.stem_channels, config.stem_kernel, config.stem_stride, size, size
            )
        ]
        if config.stem_pool:
            size = conv_out(size, 3, 2, 1)
        c_in = config.stem_channels
        block = 0
        self.extra_specs: list[tuple[int, LayerSpec]] = []
        for stage, (c_out, n_blocks, stage_stride) in enumerate(
            zip(config.stage_channels, config.blocks_per_stage, config.stage_strides)
        ):
            for j in range(n_blocks):
                stride = stage_stride if j == 0 else 1
                out = conv_out(size, 3, stride, 1)
                for k, (ci, s) in enumerate(((c_in, stride), (c_out, 1))):
                    convs.append(SwitchableConv2d(ci, c_out, 3, s, self.bit_choices))
                    specs.append(LayerSpec(f"stage{stage + 1}.block{j + 1}.conv{k + 1}", ci, c_out, 3, s, out, out))
                needs_projection = stride != 1 or c_in != c_out
                if needs_projection and config.shortcut == "B":
                    downsample[str(block)] = SwitchableConv2d(c_in, c_out, 1, stride, self.bit_choices)
                    spec = LayerSpec(f"stage{stage + 1}.block{j + 1}.downsample", c_in, c_out, 1, stride, out, out)
                    self.extra_specs.append((len(convs) - 2, spec))
                self._shortcut_stride.append(stride)
                self._shortcut_pad.append((c_out - c_in) // 2 if needs_projection else 0)
                c_in, size = c_out, out
                block += 1
        self.convs = nn.ModuleList(convs)
        # Plain tuples: ModuleList / ModuleDict lookups cost microseconds per step.
        self._conv_seq = tuple(convs)
        self._projection_seq = tuple(downsample.get(str(b)) for b in range(block))
        self.downsample = nn.ModuleDict(downsample)
        self.fc = QuantLinear(c_in, config.num_classes, REFERENCE_BITS)
        self.fixed_specs.append(LayerSpec("fc", c_in, config.num_classes, 1, 1, 1, 1))
        self.layer_specs: list[LayerSpec] = specs
        self.num_switchable: int = len(convs)
        self._frozen = False
        self._bitops8 = self.bitops([REFERENCE_BITS] * self.num_switchable)

    # Configuration helpers ----------------------------------------------------------------
    def validate_bits(self, bits: Sequence[int]) -> tuple[int, ...]:
        """Return ``bits`` as a tuple of ints, or raise ValueError naming what is wrong."""
        bits = tuple(int(b) for b in bits)
        if len(bits) != self.num_switchable:
            raise ValueError(
                f"a configuration needs one bit-width per switchable layer: expected {self.num_switchable} "
                f"values, got {len(bits)}"
            )
        bad = sorted({b for b in bits if b not in self.bit_choices})
        if bad:
            raise ValueError(f"bit-widths {bad} were not trained; choose each from {list(self.bit_choices)}")
        return bits

    def bitops(self, bits: Sequence[int]) -> float:
        """Exact BitOps of configuration ``bits`` (stem and classifier counted at 8x8)."""
        return float(total_bitops(self.layer_specs, self.fixed_specs, bits, self.extra_specs))

    @property
    def max_bitops(self) -> float:
        """BitOps of the all-8-bit configuration (the normaliser used by the environments)."""
        return self._bitops8

    def layer_bitops(self, i: int, bits: int) -> float:
        """BitOps spent by switchable layer ``i`` (and any layer tied to it) at ``bits``."""
        total = self.layer_specs[i].bitops(bits)
        total += sum(spec.bitops(bits) for j, spec in self.extra_specs if j == i)
        return float(total)

    # Step-wise inference ------------------------------------------------------------------
    def stem_forward(self, x: torch.Tensor) -> State:
        """Run the fixed 8-bit stem on a normalised image batch (N, C, H, W).

        Frozen, the returned activations are channels-last: every later frozen op keeps that
        layout, in which CPU convolutions of these shapes run 2-3x faster.
        """
        if not self._frozen:
            h = F.relu(self.stem(x, REFERENCE_BITS))
        else:
            y = self.stem.run_frozen(x, REFERENCE_BITS)
            # ReLU and the layout change in one pass (a one-channel input gives an NCHW output).
            h = torch.empty_like(y, memory_format=torch.channels_last)
            torch.clamp_min(y, 0.0, out=h)
        if self.config.stem_pool:
            h = F.max_pool2d(h, 3, 2, 1)
        return State(h, None)

    def step(
        self,
        state: State,
        i: int,
        bits: int | np.ndarray,
        observe: Callable[[torch.Tensor, torch.Tensor | None], None] | None = None,
        out: torch.Tensor | None = None,
    ) -> State:
        """Run switchable layer ``i`` on ``state`` and return the next state.

        Args:
            state: the activations after layer ``i - 1`` (or the stem).
            i: the switchable layer's index.
            bits: one bit-width for the whole batch, or an int array with one per row. Rows
                are then grouped by bit-width: each group runs the convolution, residual add
                and ReLU on its own rows and writes its own slice of the output.
            observe: called as ``observe(activations, rows)`` on the layer's output: once for
                a whole batch, or once per group, while those rows are still in cache (the
                environments compute their observation statistics here). ``rows`` are the
                batch rows of the activations, or None when they are the whole batch in order.
            out: frozen only: a channels-last buffer for the layer's output, which must not
                alias ``state.x`` or ``state.shortcut`` (callers that step many times reuse a
                few buffers instead of page-faulting fresh memory every layer).

        With mixed bit-widths, the returned state is grouped by bit-width (see :class:`State`).
        """
        rows = state.rows
        if not isinstance(bits, (int, np.integer)):
            bits = np.asarray(bits)
            if (bits == bits[0]).all():
                bits = int(bits[0])
            elif rows is not None:
                bits = bits[rows]  # bit-width of the row at each position of x
        conv = self._conv_seq[i]
        block = i // 2
        first = i % 2 == 0  # the block's first conv; its input is the shortcut of the second
        shortcut = self._shortcut(block, state.x, bits) if first else None
        # The residual's positions for each position of x, when the two are laid out differently.
        align = None
        if not first and rows is not state.shortcut_rows:
            align = state.positions(np.arange(state.x.shape[0]) if rows is None else rows, of_shortcut=True)
        device = state.x.device
        residual = state.shortcut
        # Frozen mixed bit-widths come out grouped; everything else in the order of x.
        grouped = self._frozen and not isinstance(bits, (int, np.integer))
        residual_at: torch.Tensor | None  # declarations only: nothing runs here
        batch_rows: torch.Tensor | None
        if grouped:
            # Per position of the grouped output: the residual row to add and the batch row it
            # is, looked up once here so that each group only slices them.
            order = np.argsort(bits, kind="stable")
            perm = torch.from_numpy(order).to(device)
            residual_at = perm if align is None else torch.from_numpy(align[order]).to(device)
            batch_rows = perm if rows is None else torch.from_numpy(rows[order]).to(device)
        else:
            residual_at = None if align is None else torch.from_numpy(align).to(device)
            batch_rows = None if rows is None else torch.from_numpy(rows).to(device)
        if not self._frozen:
            y = self._conv(conv, state.x, bits)
            if not first:
                y = y + (residual if residual_at is None else take_rows(residual, residual_at))  # type: ignore[arg-type,operator]
            y = F.relu(y)
            if observe is not None:
                observe(y, batch_rows)
            return State(y, shortcut, rows, rows if first else None)

        def finish(y: torch.Tensor, k: slice | None) -> None:
            # In place on the layer's own output: all of it (k None), or group k's slice of it.
            if not first:
                at = residual_at if k is None or residual_at is None else residual_at[k]
                y.add_(residual if at is None else take_rows(residual, at))  # type: ignore[arg-type]
            y.relu_()
            if observe is not None:
                observe(y, batch_rows if k is None or batch_rows is None else batch_rows[k])

        if not grouped:
            y = conv.run_frozen(state.x, int(bits), out=out)
            finish(y, None)
            return State(y, shortcut, rows, rows if first else None)
        y, order = conv.run_frozen_grouped(state.x, bits, finish, out, order)  # type: ignore[arg-type]
        return State(y, shortcut, order if rows is None else rows[order], rows if first else None)

    def _conv(self, conv: SwitchableConv2d, x: torch.Tensor, bits: int | np.ndarray) -> torch.Tensor:
        if isinstance(bits, (int, np.integer)):
            return conv.run_frozen(x, int(bits)) if self._frozen else conv(x, int(bits))
        if self._frozen:
            return conv.run_frozen_rows(x, bits)
        # Training path: one fake-quantized conv per bit-width group, written back in place.
        out = None
        for b in np.unique(bits):
            rows = torch.from_numpy(np.flatnonzero(bits == b)).to(x.device)
            y = self._conv(conv, x.index_select(0, rows), int(b))
            if out is None:
                out = y.new_empty((x.shape[0], *y.shape[1:]))
            out.index_copy_(0, rows, y)
        assert out is not None, "bits has at least one row"
        return out

    def _shortcut(self, block: int, x: torch.Tensor, bits: int | np.ndarray) -> torch.Tensor:
        projection = self._projection_seq[block]
        if projection is not None:
            return self._conv(projection, x, bits)
        stride, pad = self._shortcut_stride[block], self._shortcut_pad[block]
        if stride == 1 and not pad:
            return x
        if stride != 1:
            x = x[:, :, ::stride, ::stride]
        if pad:
            x = F.pad(x, (0, 0, 0, 0, pad, pad))
        return x

    def features(self, state: State) -> torch.Tensor:
        """Global-average-pooled features of the final state (N, C), in batch order."""
        x = state.x
        if not self._frozen:
            return state.select(slice(None)).x.mean(dim=(2, 3))
        # Frozen: reduce the (N, H*W, C) channels-last view, whatever layout x has, so a row's
        # features never depend on the memory layout or on the other rows of the batch.
        f = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, x.shape[1]).mean(1)
        if state.rows is None:
            return f
        return torch.empty_like(f).index_copy_(0, torch.from_numpy(state.rows).to(f.device), f)

    def head(self, state: State) -> torch.Tensor:
        """Run the fixed 8-bit classifier on the final state; returns logits (N, classes)."""
        f = self.features(state)
        return self.fc.run_frozen(f) if self._frozen else self.fc(f)

    def run_layers(self, state: State, bits: Sequence[int], start: int = 0) -> torch.Tensor:
        """Run layers ``start..`` at ``bits`` (one per remaining layer) and the head: logits."""
        for i, b in enumerate(bits, start):
            state = self.step(state, i, b)
        return self.head(state)

    def forward(self, x: torch.Tensor, bits: Sequence[int]) -> torch.Tensor:
        """Logits of batch ``x`` with switchable layer i at ``bits[i]``."""
        bits = self.validate_bits(bits)
        if self._frozen:
            with torch.inference_mode():
                return self.run_layers(self.stem_forward(x), bits)
        return self.run_layers(self.stem_forward(x), bits)

    # Freezing -----------------------------------------------------------------------------
    @property
    def frozen(self) -> bool:
        """True when inference uses the cached integer weights."""
        return self._frozen

    def _quant_modules(self):
        yield self.stem
        yield from self.convs
        yield from self.downsample.values()
        yield self.fc

    @torch.no_grad()
    def freeze(self) -> ResNetSupernet:
        """Eval mode, no gradients, and every (layer, bit) weight quantized once and cached."""
        self.eval()
        self.requires_grad_(False)
        for m in self._quant_modules():
            m.freeze()
        self._frozen = True
        return self

    def unfreeze(self) -> ResNetSupernet:
        """Back to the trainable fake-quant path (caches dropped)."""
        for m in self._quant_modules():
            m.unfreeze()
        self.requires_grad_(True)
        self._frozen = False
        return self

    def _apply(self, fn, *args, **kwargs):
        # .to(), .cuda(), .double() ... move parameters; rebuild the caches on the new device.
        out = super()._apply(fn, *args, **kwargs)
        if getattr(self, "_frozen", False):
            for m in self._quant_modules():
                m.freeze()
        return out

    @torch.no_grad()
    def init_quantizers(self, x: torch.Tensor) -> None:
        """Set every LSQ step to its MSE-optimal value, propagating ``x`` at 8 bits (warm start)."""
        self.stem.init_steps(x)
        state = self.stem_forward(x)
        for i, conv in enumerate(self.convs):
            conv.init_steps(state.x)  # type: ignore[operator]
            if str(i // 2) in self.downsample and i % 2 == 0:
                self.downsample[str(i // 2)].init_steps(state.x)  # type: ignore[operator]
            state = self.step(state, i, max(self.bit_choices))
        self.fc.init_steps(self.features(state))


def resnet20(bit_choices: Sequence[int] = BIT_CHOICES, num_classes: int = 10) -> ResNetSupernet:
    """ResNet-20 supernet for 28x28 grey images (Fashion-MNIST): 18 switchable 3x3 convs."""
    return ResNetSupernet(ResNetConfig(num_classes=num_classes, bit_choices=tuple(bit_choices)))
