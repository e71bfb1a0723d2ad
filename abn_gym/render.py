"""Render modes of the abn-gym envs: the bit-widths chosen so far, as text or as a picture.

``"ansi"``: one line per layer already run (bit-width and its BitOps), then the BitOps spent.
``"rgb_array"``: the episode's input image on the left, labelled with its index; on the right
one bar per switchable layer, its height the bit-width chosen for this image (colour from blue,
fewest bits, to red, most), a grey stub for layers still to come and a dark mark under the layer
decided next. The bars have a labelled bits axis on their right (guides at the fewest, half and
most bits) and layer numbers under them; along the bottom a strip shows the BitOps spent as a
share of the all-8 configuration, with the share written under it. Drawn with numpy and a small
built-in pixel font, so rendering needs no plotting library and never runs unless asked for.
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
_INK = (40, 40, 40)
_SCALE = 2  # the pixel font's 3x5 glyphs drawn 2x: 6x10 pixels a character, 8 with the space after it

# A 3x5 pixel font for the frame's labels: digits and the few capitals they use. Built in, so that
# labelling the frame needs no font file and no plotting library.
_GLYPHS = {
    "0": "###|#.#|#.#|#.#|###",
    "1": ".#.|##.|.#.|.#.|###",
    "2": "###|..#|###|#..|###",
    "3": "###|..#|.##|..#|###",
    "4": "#.#|#.#|###|..#|..#",
    "5": "###|#..|###|..#|###",
    "6": "###|#..|###|#.#|###",
    "7": "###|..#|..#|.#.|.#.",
    "8": "###|#.#|###|#.#|###",
    "9": "###|#.#|###|..#|###",
    "A": ".#.|#.#|###|#.#|#.#",
    "B": "##.|#.#|##.|#.#|##.",
    "E": "###|#..|##.|#..|###",
    "F": "###|#..|##.|#..|#..",
    "G": ".##|#..|#.#|#.#|.##",
    "I": "###|.#.|.#.|.#.|###",
    "L": "#..|#..|#..|#..|###",
    "M": "#.#|###|###|#.#|#.#",
    "O": ".#.|#.#|#.#|#.#|.#.",
    "P": "##.|#.#|##.|#..|#..",
    "R": "##.|#.#|##.|#.#|#.#",
    "S": ".##|#..|.#.|..#|##.",
    "T": "###|.#.|.#.|.#.|.#.",
    "Y": "#.#|#.#|.#.|.#.|.#.",
    "-": "...|...|###|...|...",
    "%": "#.#|..#|.#.|#..|#.#",
    " ": "...|...|...|...|...",
}
_GLYPH_W, _GLYPH_H = 4 * _SCALE, 5 * _SCALE  # advance per character and height, in pixels


def _text_width(text: str) -> int:
    return len(text) * _GLYPH_W - _SCALE


def _draw_text(frame: np.ndarray, x: int, y: int, text: str, colour: tuple[int, int, int] = _INK) -> None:
    """Writes ``text`` (capitals, digits, ``-`` and ``%``) with its top-left corner at (x, y)."""
    for k, char in enumerate(text):
        rows = _GLYPHS[char].split("|")
        mask = np.array([[c == "#" for c in row] for row in rows]).repeat(_SCALE, 0).repeat(_SCALE, 1)
        x0 = x + k * _GLYPH_W
        frame[y : y + _GLYPH_H, x0 : x0 + 3 * _SCALE][mask] = colour


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
    if engine.costs.model != "bitops":  # the cost the reward and the budget price
        lines.append(
            f"cost model {engine.costs.model}: spent {engine.spent[row]:.3f} of all-8's {engine.costs.unit} "
            "in the switchable layers"
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
    trained = engine.net.bit_choices
    lo, hi = min(trained), max(trained)
    guides = sorted({lo, hi // 2, hi})  # faint guides at the fewest, half and most bits
    left = _MARGIN + w + 2 * _MARGIN
    right = left + layers * (_BAR + _GAP) - _GAP  # one past the last bar
    ticks = right + _MARGIN  # the bits axis' numbers, then its name
    axis_name = "BITS"
    width = ticks + _text_width(str(hi)) + _MARGIN + _text_width(axis_name) + _MARGIN
    base = _MARGIN + h  # the bars stand on this row
    numbers = base + 7  # layer numbers, under the mark of the next layer
    name_row = numbers + _GLYPH_H + 3
    strip = name_row + _GLYPH_H + 5
    share_row = strip + 4 + 3
    height = share_row + _GLYPH_H + _MARGIN
    # Every part has a fixed place, whatever the state: frames of one episode have one shape.
    width = max(width, left + _text_width("BITOPS 100% OF ALL-8") + _MARGIN)
    frame = np.full((height, width, 3), 255, dtype=np.uint8)
    frame[_MARGIN : _MARGIN + h, _MARGIN : _MARGIN + w] = img
    if started:
        _draw_text(frame, _MARGIN, numbers, f"IMAGE {int(engine.indices[row])}")
    for b in guides:
        y = base - round(h * b / hi)
        frame[y, left:right] = _GRID
        _draw_text(frame, ticks, min(max(y - _GLYPH_H // 2, 0), base - _GLYPH_H), str(b))
    # The axis name halfway between the two highest guides, clear of their numbers.
    mid = base - round(h * (guides[-1] + guides[-2]) / (2 * hi)) if len(guides) > 1 else base - h // 2
    _draw_text(frame, ticks + _text_width(str(hi)) + _MARGIN, mid - _GLYPH_H // 2, axis_name)
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
    # Numbers under the first layer of each stage of six and under the last, centred on their bars.
    for i in sorted({*range(0, layers, 6), layers - 1}):
        label = str(i)
        centre = left + i * (_BAR + _GAP) + _BAR // 2
        x = min(max(centre - _text_width(label) // 2, left), right - _text_width(label))
        _draw_text(frame, x, numbers, label)
    _draw_text(frame, (left + right - _text_width("LAYER")) // 2, name_row, "LAYER")
    spent = float(engine.spent_ops[row]) / engine.max_bitops if started else 0.0
    frame[strip : strip + 4, left:right] = _STUB
    frame[strip : strip + 4, left : left + round((right - left) * min(spent, 1.0))] = _SPENT
    _draw_text(frame, left, share_row, f"BITOPS {round(100 * spent)}% OF ALL-8")
    return frame


def render(mode: str, engine: EpisodeEngine, row: int, started: bool = True) -> str | np.ndarray:
    """The frame of episode ``row`` in ``mode`` (one of :data:`RENDER_MODES`)."""
    return ansi(engine, row, started) if mode == "ansi" else rgb_array(engine, row, started)
