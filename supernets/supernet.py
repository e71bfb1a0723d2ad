"""The one supernet interface: stem -> switchable layer i at b bits -> head, for every family.

A family (ResNet, MobileNetV2, a plain CNN, a user's own) is an architecture config whose
:meth:`~ArchConfig.plan` lists its layers as :class:`LayerPlan` rows; :class:`Supernet` builds
the switchable layers, the BitOps descriptors, the step-wise inference and the exact frozen
integer path from that list, so the engine, the envs, BitOps, training, publishing and the float
reference never see a family (see :mod:`supernets.families` for registering one).

What a plan can say, per switchable layer (one environment step each):

* a convolution of any square kernel, stride and ``groups`` (``groups == c_in`` is depthwise),
  followed by its own per-bit BatchNorm;
* ``opens``: this layer's input becomes the pending residual (``"A"``: subsampled and zero-padded
  when the shapes differ, parameter-free; ``"B"``: a 1x1 conv + BN at this layer's bit-width
  when they differ); ``closes``: the pending residual is added before the activation;
* ``relu``: False leaves the output linear (a linear bottleneck); the next layer then quantizes
  its input as signed;
* ``pool``: a max-pool of that kernel and stride after the activation.

The stem conv (with an optional 3x3/2 max-pool) and the classifier after global average pooling
are fixed at 8 bits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from supernets.bitops import REFERENCE_BITS, LayerSpec, conv_out, total_bitops
from supernets.layers import QuantLinear, SwitchableConv2d, inverse_permutation, take_rows
from supernets.plans import BIT_CHOICES, SHORTCUTS, ArchConfig, LayerPlan, Plan, StemPlan, check_plan

__all__ = ["BIT_CHOICES", "SHORTCUTS", "ArchConfig", "LayerPlan", "Plan", "State", "StemPlan", "Supernet", "check_plan"]


class State(NamedTuple):
    """Activations between two steps: the main path and, inside a residual block, its shortcut.

    A step with mixed bit-widths leaves its output grouped by bit-width rather than in batch
    order (putting it back costs as much as the layer's gathers): ``rows[k]`` is then the
    batch row held at position ``k`` of ``x``, and ``shortcut_rows`` the same for
    ``shortcut``. ``None`` means in batch order. :meth:`select` and
    :meth:`Supernet.head` give results in batch order whatever the layout.
    """

    x: torch.Tensor
    shortcut: torch.Tensor | None
    rows: np.ndarray | None = None
    shortcut_rows: np.ndarray | None = None

    def positions(self, rows: np.ndarray, of_shortcut: bool = False) -> np.ndarray:
        """Where batch rows ``rows`` sit in ``x`` (or in ``shortcut``)."""
        return _positions(self.shortcut_rows if of_shortcut else self.rows, rows)

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


def _positions(held: np.ndarray | None, rows: np.ndarray) -> np.ndarray:
    return np.asarray(rows, dtype=np.int64) if held is None else inverse_permutation(held)[rows]


@dataclass(frozen=True)
class _Step:
    # What step i needs at run time, looked up once per step (plain attributes are fastest).
    opens: bool
    closes: bool
    relu: bool
    pool: int
    block: int  # index of the residual block this layer opens (for its shortcut), else -1


class Supernet(nn.Module):
    """Weight-shared, layer-wise quantizable network: any bit-width per switchable layer.

    Built from ``config.plan()``; every family's supernet is this class (or a subclass that
    only names it). The interface the engine, envs and agents use:

    * ``stem_forward(x) -> State``, ``step(state, i, bits) -> State``, ``head(state) -> logits``;
    * ``layer_specs`` (one :class:`~supernets.bitops.LayerSpec` per switchable layer, in step
      order), ``layer_kinds``, ``fixed_specs`` (stem and classifier), ``extra_specs`` (layers
      tied to a switchable layer's bit-width), ``num_switchable``, ``bit_choices``;
    * ``bitops(bits)``, ``layer_bitops(i, b)``, ``max_bitops``;
    * ``freeze()`` / ``unfreeze()``: the exact integer frozen path, bit-identical whatever the
      batch size, grouping or layout (what lets the vector env reproduce the single env).

    Args:
        config: the architecture (an :class:`ArchConfig` of a registered family).
    """

    def __init__(self, config: ArchConfig) -> None:
        super().__init__()
        self.config = config.validate()
        plan = config.plan()
        self.plan = plan
        self.bit_choices: tuple[int, ...] = tuple(sorted(config.bit_choices))
        stem = plan.stem
        self.stem = SwitchableConv2d(
            config.in_channels, stem.channels, stem.kernel, stem.stride, (REFERENCE_BITS,), True
        )
        self._stem_pool = stem.pool
        size = conv_out(config.input_size, stem.kernel, stem.stride, stem.kernel // 2)
        self.fixed_specs: list[LayerSpec] = [
            LayerSpec("stem", config.in_channels, stem.channels, stem.kernel, stem.stride, size, size)
        ]
        if stem.pool:
            size = conv_out(size, 3, 2, 1)
        convs: list[SwitchableConv2d] = []
        downsample: dict[str, SwitchableConv2d] = {}
        specs: list[LayerSpec] = []
        steps: list[_Step] = []
        self.extra_specs: list[tuple[int, LayerSpec]] = []
        self._shortcut_pad: list[int] = []  # option A: zero channels added on each side, per block
        self._shortcut_stride: list[int] = []
        c_in, signed = stem.channels, False
        block, opened = -1, (0, 0, 1)  # (layer, c_in, stride so far) of the open residual
        reads_from = []  # oldest earlier output each step reads (its input, or its residual's source)
        for i, layer in enumerate(plan.layers):
            out = conv_out(size, layer.kernel, layer.stride, layer.kernel // 2)
            convs.append(
                SwitchableConv2d(c_in, layer.c_out, layer.kernel, layer.stride, self.bit_choices, signed, layer.groups)
            )
            specs.append(LayerSpec(layer.name, c_in, layer.c_out, layer.kernel, layer.stride, out, out, layer.groups))
            if layer.opens is not None:
                block += 1
                opened = (i, c_in, 1)
            opened = (opened[0], opened[1], opened[2] * layer.stride)
            reads_from.append(opened[0] - 1 if layer.closes else i - 1)
            if layer.closes:
                j, c_open, stride = opened
                needs_projection = stride != 1 or c_open != layer.c_out
                if needs_projection and plan.layers[j].opens == "B":
                    downsample[str(block)] = SwitchableConv2d(
                        c_open, layer.c_out, 1, stride, self.bit_choices, convs[j].signed_input
                    )
                    name = plan.layers[j].shortcut_name or f"{plan.layers[j].name}.downsample"
                    self.extra_specs.append((j, LayerSpec(name, c_open, layer.c_out, 1, stride, out, out)))
                self._shortcut_stride.append(stride)
                self._shortcut_pad.append((layer.c_out - c_open) // 2 if needs_projection else 0)
            steps.append(
                _Step(layer.opens is not None, layer.closes, layer.relu, layer.pool, block if layer.opens else -1)
            )
            if layer.pool:
                out = conv_out(out, layer.pool, layer.pool, 0)
            c_in, size, signed = layer.c_out, out, not layer.relu
        self.convs = nn.ModuleList(convs)
        # Plain tuples: ModuleList / ModuleDict lookups cost microseconds per step.
        self._conv_seq = tuple(convs)
        self._steps = tuple(steps)
        self._projection_seq = tuple(downsample.get(str(b)) for b in range(block + 1))
        self.downsample = nn.ModuleDict(downsample)
        self.fc = QuantLinear(c_in, config.num_classes, REFERENCE_BITS)
        self.fixed_specs.append(LayerSpec("fc", c_in, config.num_classes, 1, 1, 1, 1))
        self.layer_specs: list[LayerSpec] = specs
        self.layer_kinds: list[str] = [layer.kind for layer in plan.layers]
        self.num_switchable: int = len(convs)
        # A frozen caller reusing output buffers must keep this many: step t reads outputs back to
        # t - (span - 1) (its input, and the source of the residual it closes).
        self.buffer_span: int = max(i - r for i, r in enumerate(reads_from)) + 1
        self.signed_inputs: bool = any(c.signed_input for c in convs)
        self._frozen = False
        self._bitops8 = self.bitops([REFERENCE_BITS] * self.num_switchable)

    @property
    def family(self) -> str:
        """The registered family name of this supernet's config."""
        return self.config.family

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
        if self._stem_pool:
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
                and activation on its own rows and writes its own slice of the output.
            observe: called as ``observe(activations, rows)`` on the layer's output (after any
                pooling): once for a whole batch, or once per group, while those rows are
                still in cache (the environments compute their observation statistics here).
                ``rows`` are the batch rows of the activations, or None when they are the
                whole batch in order.
            out: frozen only: a channels-last buffer for the layer's convolution output, which
                must not alias ``state.x`` or ``state.shortcut`` (callers that step many times
                reuse :attr:`buffer_span` buffers per shape instead of page-faulting fresh
                memory every layer).

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
        plan = self._steps[i]
        pending: torch.Tensor | None
        if plan.opens:  # this layer's input is the residual its block adds at the end
            pending, pending_rows = self._shortcut(plan.block, state.x, bits), rows
        else:
            pending, pending_rows = state.shortcut, state.shortcut_rows
        residual = None
        if plan.closes:
            residual, carried, carried_rows = pending, None, None
        else:
            carried, carried_rows = pending, pending_rows
        # The residual's positions for each position of x, when the two are laid out differently.
        align = None
        if residual is not None and rows is not pending_rows:
            align = _positions(pending_rows, np.arange(state.x.shape[0]) if rows is None else rows)
        device = state.x.device
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
            if residual is not None:
                y = y + (residual if residual_at is None else take_rows(residual, residual_at))
            if plan.relu:
                y = F.relu(y)
            if plan.pool:
                y = F.max_pool2d(y, plan.pool)
            if observe is not None:
                observe(y, batch_rows)
            return State(y, carried, rows, carried_rows)
        # Pooling changes the shape, so a pooled layer is observed once, on the whole pooled output.
        observe_groups = observe if not plan.pool else None

        def finish(y: torch.Tensor, k: slice | None) -> None:
            # In place on the layer's own output: all of it (k None), or group k's slice of it.
            if residual is not None:
                at = residual_at if k is None or residual_at is None else residual_at[k]
                y.add_(residual if at is None else take_rows(residual, at))
            if plan.relu:
                y.relu_()
            if observe_groups is not None:
                observe_groups(y, batch_rows if k is None or batch_rows is None else batch_rows[k])

        if not grouped:
            y = conv.run_frozen(state.x, int(bits), out=out)
            finish(y, None)
            new_rows = rows
        else:
            y, order = conv.run_frozen_grouped(state.x, bits, finish, out, order)  # type: ignore[arg-type]
            new_rows = order if rows is None else rows[order]
        if plan.pool:
            # Row by row, so grouped rows pool exactly as they would alone; channels-last is kept.
            y = F.max_pool2d(y, plan.pool)
            if observe is not None:
                observe(y, batch_rows)
        return State(y, carried, new_rows, carried_rows)

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
    def freeze(self) -> Supernet:
        """Eval mode, no gradients, and every (layer, bit) weight quantized once and cached."""
        self.eval()
        self.requires_grad_(False)
        for m in self._quant_modules():
            m.freeze()
        self._frozen = True
        return self

    def unfreeze(self) -> Supernet:
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
            plan = self._steps[i]
            if plan.opens and self._projection_seq[plan.block] is not None:
                self._projection_seq[plan.block].init_steps(state.x)  # type: ignore[union-attr]
            state = self.step(state, i, max(self.bit_choices))
        self.fc.init_steps(self.features(state))
