"""Observation layout: a fixed-size, bounded float32 vector, or the same parts as a flat Dict.

| part | size | meaning | range |
| --- | --- | --- | --- |
| act_mean | C_max | per-channel mean of the layer's input activation / its 8-bit clip range, zero-padded | [0, 1] |
| act_std | C_max | per-channel standard deviation, same scaling | [0, 1] |
| layer | 6 | next layer: C_in, C_out, stride, kernel (each / network max), share of MACs, position | [0, 1] |
| layer_onehot | L | one-hot of the next layer's index (all zero after the last layer) | {0, 1} |
| bits_so_far | L | bit-width chosen for each earlier layer / 8 (0 for layers still to come) | [0, 1] |
| bitops_spent | 1 | BitOps of the switchable layers so far / BitOps of the all-8 configuration | [0, 1] |
| budget | 1 | the episode's BitOps budget as a fraction of all-8 (1 when there is none) | [0, 1] |
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces

from supernets.supernet import Supernet

OBS_MODES = ("vector", "dict")
STAT_CLIP = 1.0


class ObservationLayout:
    """Offsets of each part inside the vector observation, plus the static per-layer table.

    Args:
        net: the supernet (architecture only is read; weights may be absent).
    """

    def __init__(self, net: Supernet) -> None:
        specs = net.layer_specs
        self.num_layers = len(specs)
        self.max_channels = max(max(s.c_in, s.c_out) for s in specs)
        sizes = {
            "act_mean": self.max_channels,
            "act_std": self.max_channels,
            "layer": 6,
            "layer_onehot": self.num_layers,
            "bits_so_far": self.num_layers,
            "bitops_spent": 1,
            "budget": 1,
        }
        self.slices: dict[str, slice] = {}
        start = 0
        for name, size in sizes.items():
            self.slices[name] = slice(start, start + size)
            start += size
        self.size = start
        max_c = float(self.max_channels)
        max_stride = float(max(s.stride for s in specs))
        max_kernel = float(max(s.kernel for s in specs))
        total_macs = float(sum(s.macs for s in specs))
        table = np.zeros((self.num_layers + 1, 6 + self.num_layers), dtype=np.float32)
        for i, s in enumerate(specs):
            table[i, :6] = [
                s.c_in / max_c,
                s.c_out / max_c,
                s.stride / max_stride,
                s.kernel / max_kernel,
                s.macs / total_macs,
                i / max(1, self.num_layers - 1),
            ]
            table[i, 6 + i] = 1.0
        # Row L (after the last layer) stays zero: there is no next layer.
        self.layer_table = table

    def vector_space(self) -> spaces.Box:
        """The observation space of ``obs_mode="vector"``."""
        return spaces.Box(0.0, 1.0, (self.size,), np.float32)

    def dict_space(self) -> spaces.Dict:
        """The observation space of ``obs_mode="dict"`` (flat, for SB3's MultiInputPolicy)."""
        return spaces.Dict(
            {name: spaces.Box(0.0, 1.0, (sl.stop - sl.start,), np.float32) for name, sl in self.slices.items()}
        )

    def space(self, obs_mode: str) -> spaces.Space:
        """Space for ``obs_mode``."""
        return self.vector_space() if obs_mode == "vector" else self.dict_space()

    def split(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Batched vector observations (N, size) -> dict of (N, part) arrays (views)."""
        return {name: batch[:, sl] for name, sl in self.slices.items()}


def stats_scale(inv_range: float, height: int, width: int) -> np.ndarray:
    """The (2, 1) factors that turn (sum x, sum x^2) over H x W into scaled (E[x], E[x^2])."""
    hw = height * width
    return np.array([[inv_range / hw], [inv_range * inv_range / hw]], dtype=np.float32)


def channel_sums(x: torch.Tensor, sums: torch.Tensor, squares: torch.Tensor, scratch: torch.Tensor) -> None:
    """Write per-channel sums of ``x`` and of ``x**2`` over H x W, for activations x (N, C, H, W).

    Args:
        x: activations.
        sums: (N, C) output for the sums.
        squares: (N, C) output for the sums of squares.
        scratch: a buffer shaped and laid out like ``x`` for the squares, reused to spare a
            large allocation per call.
    """
    # On channels-last activations the reduction over H x W is one vectorised pass per row whose
    # result does not depend on the other rows of the batch (the tests compare batch 1 with
    # batch N bit for bit). Two plain sums are about 10x faster on CPU than torch.var_mean.
    torch.sum(x, (2, 3), out=sums)
    torch.sum(torch.mul(x, x, out=scratch), (2, 3), out=squares)


def write_stats(sums: np.ndarray, stats: np.ndarray, scale: np.ndarray, signed: bool = False) -> None:
    """Write per-channel (mean, std), scaled and clipped to [0, 1], from :func:`channel_sums`.

    Args:
        sums: (N, 2, C) float32 sums from :func:`channel_sums`.
        stats: float32 (N, 2, C) view of the observations; ``[:, 0]`` gets the means, ``[:, 1]`` the stds.
        scale: from :func:`stats_scale` for this layer.
        signed: the activations may be negative (a linear bottleneck's output): clip the means at 0 too.
    """
    np.multiply(sums, scale, out=stats)
    mean, sq = stats[:, 0], stats[:, 1]
    sq -= np.square(mean)
    np.sqrt(np.maximum(sq, 0.0, out=sq), out=sq)
    # Inputs that follow a ReLU have both statistics >= 0: only the upper bound needs clipping.
    np.minimum(stats, STAT_CLIP, out=stats)
    if signed:
        np.maximum(stats, 0.0, out=stats)
