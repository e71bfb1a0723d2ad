"""Render modes of the abn-gym envs: the bit-widths chosen so far, as text or as a picture.

``"ansi"``: one line per layer already run (bit-width and its BitOps), then the BitOps spent.
``"rgb_array"``: the episode's input image on the left; on the right one bar per switchable
layer, its height the bit-width chosen for this image (colour from blue, fewest bits, to red,
most), a grey stub for layers still to come, a dark mark under the layer decided next, and
along the bottom the BitOps spent as a share of the all-8 configuration. Drawn with numpy
only, so rendering needs no plotting library and never runs unless asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from abn_gym.engine import EpisodeEngine

RENDER_MODES = ("ansi", "rgb_array")
RENDER_FPS = 4

_MARGIN, _BAR, _GAP, _IMAGE = 4, 6, 2, 112  # pixels; the image is scaled up to about _IMAGE high
_LOW, _HIGH = np.array([49, 130, 189]), np.array([222, 45, 38])  # colours of the fewest and most bits
_STUB, _MARK, _GRID, _SPENT = (200, 200, 200), (40, 40, 40), (230, 230, 230), (90, 90, 90)


def layer_bitops(engine: EpisodeEngine, row: int) -> np.ndarray:
    """BitOps of each layer already run in episode ``row``, at the bit-width it ran."""
    t = engine.t
    actions = np.searchsorted(engine.bit_choices, engine.chosen[row, :t])
    return engine.cost_ops[np.arange(t), actions]


def ansi(engine: EpisodeEngine, row: int, started: bool = True) -> str:
    """The text frame of episode ``row``: bit-width and BitOps per layer so far, then the totals."""
    if not started:
        return "no episode yet: call reset() first\n"
    t, layers = engine.t, engine.num_layers
    state = "every layer has run" if t >= layers else f"layer {t} is next"
    lines = [f"image {int(engine.indices[row])} of the {engine.split.name} split, {t}/{layers} layers run; {state}"]
    lines.append("layer  bits    MBitOps")
    for i, ops in enumerate(layer_bitops(engine, row)):
        lines.append(f"{i:5d}  {int(engine.chosen[row, i]):4d}  {ops / 1e6:9.3f}")
    spent = int(engine.spent_ops[row])
    lines.append(
        f"spent {spent / 1e6:.3f} MBitOps in the switchable layers ({spent / engine.max_bitops:.3f} of all-8), "
        f"{(spent + engine.fixed_ops) / 1e6:.3f} M with the fixed 8-bit layers"
    )
    if engine.budgets[row] < 1.0:
        lines.append(f"budget {engine.budgets[row]:.3f} of all-8")
    return "\n".join(lines) + "\n"


def _image(engine: EpisodeEngine, row: int, started: bool) -> np.ndarray:
    """The episode's input as an (H, W, 3) uint8 array, scaled up by a whole factor (blank before reset)."""
    img = engine.split.images[int(engine.indices[row])].numpy()  # (C, H, W) uint8
    if img.shape[0] == 1:
        img = np.repeat(img, 3, axis=0)
    img = img.transpose(1, 2, 0)
    scale = max(1, _IMAGE // img.shape[0])
    img = img.repeat(scale, axis=0).repeat(scale, axis=1)
    return img if started else np.full_like(img, 255)


def rgb_array(engine: EpisodeEngine, row: int, started: bool = True) -> np.ndarray:
    """The picture of episode ``row``: its image beside its bits per layer, as (H, W, 3) uint8."""
    img = _image(engine, row, started)
    h, w = img.shape[:2]
    layers = engine.num_layers
    left = _MARGIN + w + 2 * _MARGIN
    width = left + layers * (_BAR + _GAP) - _GAP + _MARGIN
    height = _MARGIN + h + 2 + 3 + 2 + 4 + _MARGIN
    frame = np.full((height, width, 3), 255, dtype=np.uint8)
    frame[_MARGIN : _MARGIN + h, _MARGIN : _MARGIN + w] = img
    base = _MARGIN + h  # the bars stand on this row
    trained = engine.net.bit_choices
    lo, hi = min(trained), max(trained)
    for b in (lo, hi // 2, hi):  # faint guides at the fewest, half and most bits
        frame[base - round(h * b / hi), left : width - _MARGIN] = _GRID
    t = engine.t if started else 0
    for i in range(layers):
        x = left + i * (_BAR + _GAP)
        if i < t:
            bits = int(engine.chosen[row, i])
            share = (bits - lo) / max(hi - lo, 1)
            colour = np.round(_LOW + share * (_HIGH - _LOW)).astype(np.uint8)
            frame[base - round(h * bits / hi) : base, x : x + _BAR] = colour
        else:
            frame[base - 2 : base, x : x + _BAR] = _STUB
        if i == t:
            frame[base + 2 : base + 5, x : x + _BAR] = _MARK
    spent = float(engine.spent_ops[row]) / engine.max_bitops if started else 0.0
    strip = width - _MARGIN - left
    top = base + 7
    frame[top : top + 4, left : width - _MARGIN] = _STUB
    frame[top : top + 4, left : left + round(strip * min(spent, 1.0))] = _SPENT
    return frame


def render(mode: str, engine: EpisodeEngine, row: int, started: bool = True) -> str | np.ndarray:
    """The frame of episode ``row`` in ``mode`` (one of :data:`RENDER_MODES`)."""
    return ansi(engine, row, started) if mode == "ansi" else rgb_array(engine, row, started)
