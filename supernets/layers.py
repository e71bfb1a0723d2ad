"""Switchable quantized layers: one set of full-precision weights, one LSQ step and one
BatchNorm per candidate bit-width, and a frozen integer-code inference path.

Frozen inference computes ``conv(activation codes, weight codes)`` in float32 and then one
per-channel affine (LSQ steps and BatchNorm folded together). The codes are small integers,
so the convolution is exact integer arithmetic (every partial sum stays below 2**24 in
practice): results are bit-identical whatever the batch size, grouping or memory layout, which
is what lets the batched vector env reproduce single-env episodes exactly, and lets the frozen
path keep activations in channels-last layout (2-3x faster convolutions on CPU).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from supernets.bitops import conv_out
from supernets.int_kernels import conv_codes
from supernets.quant import lsq_fake_quant, mse_optimal_step, quantize_codes, signed_range, subsample, unsigned_range


@dataclass(frozen=True)
class FrozenConv:
    """Cached tensors for one (layer, bit-width): everything a frozen forward pass needs."""

    weight_codes: torch.Tensor  # integer-valued float32, (C_out, C_in, k, k)
    act_step: float
    act_qmin: int
    act_qmax: int
    out_scale: torch.Tensor  # (1, C_out, 1, 1): weight step * activation step * BN scale
    out_shift: torch.Tensor  # (1, C_out, 1, 1): BN shift


class SwitchableConv2d(nn.Module):
    """Conv + BatchNorm whose weights and input activation are quantized at a chosen bit-width.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel size.
        stride: convolution stride.
        bit_choices: the candidate bit-widths; one LSQ step pair and one BatchNorm each.
        signed_input: quantize the input as signed (the network's input image, or a linear
            bottleneck's output) instead of unsigned (a post-ReLU activation).
        groups: convolution groups (``in_channels`` for a depthwise conv).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        bit_choices: Sequence[int],
        signed_input: bool = False,
        groups: int = 1,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride, self.padding = kernel_size, stride, kernel_size // 2
        self.bit_choices = tuple(int(b) for b in bit_choices)
        self.signed_input = signed_input
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, kernel_size, kernel_size))
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        self.weight_step = nn.Parameter(torch.full((len(self.bit_choices),), 0.01))
        self.act_step = nn.Parameter(torch.full((len(self.bit_choices),), 0.05))
        self.bns = nn.ModuleList(nn.BatchNorm2d(out_channels) for _ in self.bit_choices)
        self._slot = {b: i for i, b in enumerate(self.bit_choices)}
        self._frozen: dict[int, FrozenConv] | None = None

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, bit_choices={self.bit_choices}"
            + (f", groups={self.groups}" if self.groups > 1 else "")
        )

    def act_range(self, bits: int) -> tuple[int, int]:
        """Integer code range of this layer's input quantizer at ``bits`` (signed or unsigned)."""
        return signed_range(bits) if self.signed_input else unsigned_range(bits)

    def slot(self, bits: int) -> int:
        """Index of ``bits`` in this layer's candidate list (KeyError if not trained)."""
        return self._slot[bits]

    def forward(self, x: torch.Tensor, bits: int) -> torch.Tensor:
        """Fake-quantized conv + BN at ``bits`` (training and un-frozen evaluation)."""
        i = self._slot[bits]
        aq = lsq_fake_quant(x, self.act_step[i], *self.act_range(bits), numel=x[0].numel())
        wq = lsq_fake_quant(self.weight, self.weight_step[i], *signed_range(bits), numel=self.weight.numel())
        y = F.conv2d(aq, wq, stride=self.stride, padding=self.padding, groups=self.groups)
        return self.bns[i](y)

    @torch.no_grad()
    def init_steps(self, x: torch.Tensor) -> None:
        """Set every bit-width's steps to the MSE-optimal value for these weights and input ``x``."""
        w, x = subsample(self.weight), subsample(x)  # once, shared by every bit-width
        for i, b in enumerate(self.bit_choices):
            self.weight_step[i] = mse_optimal_step(w, *signed_range(b))
            self.act_step[i] = mse_optimal_step(x, *self.act_range(b))

    @torch.no_grad()
    def load_float_bn(self, bn: nn.BatchNorm2d) -> None:
        """Copy a full-precision BatchNorm into every per-bit BatchNorm (warm start)."""
        for own in self.bns:
            own.load_state_dict(bn.state_dict())

    # Frozen inference -------------------------------------------------------------------
    @property
    def frozen(self) -> bool:
        return self._frozen is not None

    @torch.no_grad()
    def freeze(self) -> None:
        """Quantize the weights at every bit-width once and fold steps and BN into an affine."""
        cache = {}
        for i, b in enumerate(self.bit_choices):
            w_step, a_step = float(self.weight_step[i].abs()), float(self.act_step[i].abs())
            bn = cast(nn.BatchNorm2d, self.bns[i])  # a ModuleList types its items as Module
            bn_scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # type: ignore[operator,arg-type]  # BN tracks running stats
            shift = bn.bias - bn.running_mean * bn_scale  # type: ignore[operator]
            qmin, qmax = self.act_range(b)
            cache[b] = FrozenConv(
                # Channels-last like the frozen activations, so convolutions don't convert it per call.
                weight_codes=quantize_codes(self.weight, w_step, *signed_range(b)).contiguous(
                    memory_format=torch.channels_last
                ),
                act_step=a_step,
                act_qmin=qmin,
                act_qmax=qmax,
                out_scale=(bn_scale * (w_step * a_step)).view(1, -1, 1, 1).contiguous(),
                out_shift=shift.view(1, -1, 1, 1).contiguous(),
            )
        self._frozen = cache

    def unfreeze(self) -> None:
        """Drop the inference cache (call before training again)."""
        self._frozen = None

    def run_frozen(
        self, x: torch.Tensor, bits: int, inplace: bool = False, out: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Inference at ``bits`` with the cached integer weights: codes -> conv -> affine.

        ``inplace`` lets the quantization overwrite ``x`` (a temporary the caller owns); ``out``
        receives the result (a view into a larger buffer saves a copy).
        """
        c = self._frozen[bits]  # type: ignore[index]
        # One temporary, modified in place: these tensors are memory-bound at large batches.
        codes = (x.div_(c.act_step) if inplace else x.div(c.act_step)).round_().clamp_(c.act_qmin, c.act_qmax)
        # F.conv2d in float32, or an int8 kernel with the same bits (supernets.int_kernels, opt-in).
        y = conv_codes(codes, c.weight_codes, self.stride, self.padding, self.groups, (c.act_qmin, c.act_qmax))
        # With ``out``, y may have extra (padding) rows past out's.
        if out is None:
            y = y.mul_(c.out_scale)
        else:
            y = torch.mul(y if len(y) == len(out) else y[: len(out)], c.out_scale, out=out)
        return y.add_(c.out_shift)

    def run_frozen_grouped(
        self,
        x: torch.Tensor,
        bits: np.ndarray,
        epilogue: Callable[[torch.Tensor, slice], object] | None = None,
        out: torch.Tensor | None = None,
        order: np.ndarray | None = None,
    ) -> tuple[torch.Tensor, np.ndarray]:
        """Inference with one bit-width per row of channels-last ``x``, output grouped by bit-width.

        Returns ``(y, order)``: ``y[k]`` is row ``order[k]`` of ``x`` run at ``bits[order[k]]``,
        bit-identical to :meth:`run_frozen` on that row alone; ``order`` sorts ``bits`` stably.
        Each group gathers its rows, runs the scalar frozen path in place and writes its output
        into its own contiguous slice of ``y``: no scatter back to the input's order, whose
        indexed writes cost as much as the gathers. ``epilogue(y_group, k)``, if given,
        post-processes each group's slice in place while it is still in cache (``k``: the slice
        of ``order`` that holds the group, so the caller can look up anything it keeps per row
        in that order). ``out``, if given, receives ``y`` (channels-last, not aliasing ``x``);
        ``order``, if given, must be ``np.argsort(bits, kind="stable")``, computed beforehand.
        """
        if order is None:
            order = np.argsort(bits, kind="stable")
        sorted_bits = bits[order]
        bounds = [*np.flatnonzero(np.diff(sorted_bits, prepend=-1)).tolist(), len(bits)]
        perm = torch.from_numpy(order).to(x.device)
        rows_nhwc = x.permute(0, 2, 3, 1)  # gathers on this view move whole channels-last rows
        if out is None:
            h, w = (conv_out(s, self.kernel_size, self.stride, self.padding) for s in x.shape[2:])
            out = x.new_empty((len(bits), h, w, self.out_channels)).permute(0, 3, 1, 2)
        for a, b in itertools.pairwise(bounds):
            # Convolve a padded batch: each new batch size costs oneDNN a new primitive (about a
            # millisecond, and a cache entry), and bucketed sizes bound how many there are.
            codes = rows_nhwc.new_empty((padded_batch(b - a), *rows_nhwc.shape[1:]))
            torch.index_select(rows_nhwc, 0, perm[a:b], out=codes[: b - a])
            codes[b - a :].zero_()
            y = self.run_frozen(codes.permute(0, 3, 1, 2), int(sorted_bits[a]), inplace=True, out=out[a:b])
            if epilogue is not None:
                epilogue(y, slice(a, b))
        return out, order

    def run_frozen_rows(self, x: torch.Tensor, bits: np.ndarray) -> torch.Tensor:
        """Like :meth:`run_frozen_grouped`, with the output rows back in the order of ``x``."""
        y, order = self.run_frozen_grouped(x, bits)
        return take_rows(y, torch.from_numpy(inverse_permutation(order)).to(x.device))


def padded_batch(n: int) -> int:
    """``n`` rounded up to 4 significant bits (at most 12.5% more): 64 distinct sizes up to 1,024.

    Finer steps waste less compute, but they let oneDNN's primitive cache (one entry per batch
    size) keep growing for longer in a long run (`abn-gym perf` measures that growth).
    """
    if n <= 16:
        return n
    shift = n.bit_length() - 4
    return -(-n >> shift) << shift


def inverse_permutation(order: np.ndarray) -> np.ndarray:
    """``inv`` with ``inv[order[k]] == k``."""
    inv = np.empty_like(order)
    inv[order] = np.arange(len(order), dtype=order.dtype)
    return inv


def take_rows(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``x[rows]`` along the batch, channels-last out: one contiguous copy per row."""
    # index_select on the (N, H, W, C) view moves whole rows and keeps the channels-last layout;
    # on NCHW strides it would not, and advanced indexing is about 3x slower.
    return x.permute(0, 2, 3, 1).index_select(0, rows).permute(0, 3, 1, 2)


class QuantLinear(nn.Module):
    """Linear classifier with weights and (unsigned) input quantized at a fixed bit-width."""

    def __init__(self, in_features: int, out_features: int, bits: int = 8) -> None:
        super().__init__()
        self.in_features, self.out_features, self.bits = in_features, out_features, bits
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        self.weight_step = nn.Parameter(torch.tensor(0.01))
        self.act_step = nn.Parameter(torch.tensor(0.05))
        self._frozen: tuple[torch.Tensor, float, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Fake-quantized linear layer (training path)."""
        aq = lsq_fake_quant(x, self.act_step, *unsigned_range(self.bits), numel=x[0].numel())
        wq = lsq_fake_quant(self.weight, self.weight_step, *signed_range(self.bits), numel=self.weight.numel())
        return F.linear(aq, wq, self.bias)

    @torch.no_grad()
    def init_steps(self, x: torch.Tensor) -> None:
        """MSE-optimal initial steps for these weights and input ``x``."""
        self.weight_step.fill_(mse_optimal_step(self.weight, *signed_range(self.bits)))
        self.act_step.fill_(mse_optimal_step(x, *unsigned_range(self.bits)))

    @torch.no_grad()
    def freeze(self) -> None:
        """Cache integer weight codes and the output scale."""
        w_step, a_step = float(self.weight_step.abs()), float(self.act_step.abs())
        codes = quantize_codes(self.weight, w_step, *signed_range(self.bits))
        self._frozen = (codes.t().contiguous(), a_step, torch.full((1,), w_step * a_step, device=codes.device))

    def unfreeze(self) -> None:
        """Drop the inference cache."""
        self._frozen = None

    def run_frozen(self, x: torch.Tensor) -> torch.Tensor:
        """Integer-code inference: exact integer matmul, then scale and bias."""
        w_codes_t, a_step, scale = self._frozen  # type: ignore[misc]
        codes = torch.clamp(torch.round(x / a_step), *unsigned_range(self.bits))
        return torch.addcmul(self.bias, codes @ w_codes_t, scale)
