"""Cost models: what one switchable layer costs at one bit-width, for BitOps and for hardware.

Every consumer (the engine's reward, budget, mask and observation; ``info``; static search; the
front and its mixtures; the bench's columns) asks :func:`cost_table` for one :class:`CostTable`
and reads the same numbers from it. Three kinds of model:

* ``"bitops"`` (the default): ``w_bits * a_bits * MACs`` per conv or linear layer, exactly
  :mod:`supernets.bitops`; the numbers are integers, the same ones the envs always used.
* ``"bitfusion"``: BitFusion (Sharma et al., ISCA 2018, "Bit Fusion: Bit-Level Dynamically
  Composable Architecture for Accelerating Deep Neural Networks") composes a multiply from 2-bit
  "BitBricks", so a MAC at widths (w, a) costs ``ceil(w/2) * ceil(a/2)`` bricks: 3 bits cost what
  4 do, and 8 bits cost 16 bricks. Integers too.
* a user's table, given as the path of a ``.csv`` or ``.json`` file: a cost (latency in ms, energy
  in mJ, ...) for every layer at every bit-width, the form of HAQ's per-layer lookup tables
  (Wang et al., CVPR 2019). See :func:`load_cost_file` for the two formats. It is checked against
  the supernet's layers, and a missing or unknown layer, bit-width or a negative cost is refused
  with a message naming it.

As with BitOps, a switchable layer's weights and input activations share its bit-width, a layer
tied to a switchable one (ResNet's "B" downsample) follows that layer's width, and the fixed layers
(stem conv and classifier) run at 8 bits.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from supernets.bitops import REFERENCE_BITS, LayerSpec
from supernets.foundation.errors import UsageError
from supernets.foundation.files import atomic_write_text, sha256

COST_MODELS = ("bitops", "bitfusion")
"""The built-in cost models; any other value of ``cost_model`` is read as a table's path."""

DEFAULT_COST_MODEL = "bitops"

TABLE_FORMAT = (
    "a CSV with the header 'layer,bits,cost' (one row per layer and bit-width; an optional "
    '\'# unit: ms\' comment line first) or a JSON object {"unit": "ms", "layers": {LAYER: {BITS: COST}}}'
)


class CostModelError(UsageError):
    """A cost model cannot be used: an unknown name, or a table that does not fit the supernet."""


class LayeredNet(Protocol):
    """What a cost model reads of a supernet: its layers' descriptors (no weights, no forward)."""

    layer_specs: list[LayerSpec]
    fixed_specs: list[LayerSpec]
    extra_specs: list[tuple[int, LayerSpec]]


@dataclass(frozen=True)
class CostTable:
    """The cost of every switchable layer at every bit-width, under one cost model.

    Attributes:
        model: "bitops", "bitfusion", or "table:FILE" for a user's table (its file name).
        unit: the cost's unit: "BitOps", "bricks", or the table's (e.g. "ms").
        bit_choices: the bit-widths of the columns of ``layers``.
        layers: (num_switchable, len(bit_choices)) costs; row t holds switchable layer t and the
            layers tied to its width. int64 for the built-in models (exact), float64 for a table.
        fixed: the cost of the fixed layers (stem conv and classifier at 8 bits).
        all8: the cost of the all-8 configuration, fixed layers included: the normaliser of every
            cost fraction (rewards, budgets, observations).
        sha256: the table file's checksum (None for the built-in models), recorded with results.
    """

    model: str
    unit: str
    bit_choices: tuple[int, ...]
    layers: np.ndarray
    fixed: float
    all8: float
    sha256: str | None = None

    def column(self, bits: int) -> int:
        """The column of ``layers`` that holds ``bits``."""
        try:
            return self.bit_choices.index(int(bits))
        except ValueError:
            raise CostModelError(f"bit-width {bits} is not one of {list(self.bit_choices)}") from None

    def total(self, bits: Sequence[int]) -> float:
        """The cost of configuration ``bits`` (one bit-width per switchable layer), fixed layers included."""
        if len(bits) != len(self.layers):
            raise CostModelError(f"expected {len(self.layers)} bit-widths, got {len(bits)}")
        cols = [self.column(b) for b in bits]
        total = self.layers[np.arange(len(cols)), cols].sum()
        # Integers stay exact: the same sum, in the same order, as supernets.bitops.total_bitops.
        return float(int(total) + int(self.fixed)) if self.layers.dtype.kind == "i" else float(total + self.fixed)

    def fraction(self, bits: Sequence[int]) -> float:
        """``total(bits)`` as a fraction of the all-8 configuration's cost."""
        return self.total(bits) / self.all8

    def describe(self) -> dict[str, Any]:
        """What results and cards record of the model: its name, unit and (for a table) checksum."""
        return {"model": self.model, "unit": self.unit, "sha256": self.sha256}


def bitfusion_bricks(w_bits: int, a_bits: int) -> int:
    """BitFusion's 2-bit bricks per MAC at weight width ``w_bits`` and activation width ``a_bits``."""
    return math.ceil(w_bits / 2) * math.ceil(a_bits / 2)


_PER_MAC = {"bitops": lambda b: b * b, "bitfusion": lambda b: bitfusion_bricks(b, b)}
_UNITS = {"bitops": "BitOps", "bitfusion": "bricks"}


def _tied(net: LayeredNet, t: int) -> list[LayerSpec]:
    """Switchable layer t and the layers that follow its width."""
    return [net.layer_specs[t], *(spec for j, spec in net.extra_specs if j == t)]


def cost_table(net: LayeredNet, bit_choices: Sequence[int], cost_model: str | Path = DEFAULT_COST_MODEL) -> CostTable:
    """The :class:`CostTable` of ``net`` at ``bit_choices`` under ``cost_model``.

    Args:
        net: a supernet (anything with ``layer_specs``, ``fixed_specs`` and ``extra_specs``).
        bit_choices: the bit-widths a switchable layer may take.
        cost_model: "bitops", "bitfusion", or the path of a cost table (see :data:`TABLE_FORMAT`).
    """
    choices = tuple(int(b) for b in bit_choices)
    name = str(cost_model)
    if name in _PER_MAC:
        per_mac = _PER_MAC[name]
        layers = np.array(
            [[sum(per_mac(b) * s.macs for s in _tied(net, t)) for b in choices] for t in range(len(net.layer_specs))],
            dtype=np.int64,
        )
        fixed = sum(per_mac(REFERENCE_BITS) * s.macs for s in net.fixed_specs)
        eight = sum(per_mac(REFERENCE_BITS) * s.macs for t in range(len(net.layer_specs)) for s in _tied(net, t))
        return CostTable(name, _UNITS[name], choices, layers, float(fixed), float(eight + fixed))
    path = Path(name)
    if path.suffix.lower() not in (".csv", ".json"):
        raise CostModelError(
            f"unknown cost_model {name!r}: choose one of {list(COST_MODELS)}, or give the path of a cost table "
            f"(.csv or .json): {TABLE_FORMAT}"
        )
    unit, costs = load_cost_file(path)
    return _table_from_costs(net, choices, costs, unit, path)


def load_cost_file(path: str | Path) -> tuple[str, dict[str, dict[int, float]]]:
    """Read a user's cost table: (unit, {layer name: {bits: cost}}).

    CSV: a header ``layer,bits,cost`` and one row per layer and bit-width; an optional first line
    ``# unit: ms`` names the unit. JSON: ``{"unit": "ms", "layers": {"stem": {"8": 0.01}, ...}}``.
    Layer names are the supernet's (``supernet describe`` or :func:`layer_names` lists them).
    """
    path = Path(path)
    if not path.is_file():
        raise CostModelError(f"cost table {path} does not exist: give the path of {TABLE_FORMAT}")
    text = path.read_text(encoding="utf-8")
    costs: dict[str, dict[int, float]] = {}
    unit = "cost"
    if path.suffix.lower() == ".json":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CostModelError(f"cost table {path} is not valid JSON ({exc}); expected {TABLE_FORMAT}") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("layers"), dict):
            raise CostModelError(f"cost table {path} has no 'layers' object; expected {TABLE_FORMAT}")
        unit = str(obj.get("unit", unit))
        for layer, row in obj["layers"].items():
            if not isinstance(row, dict):
                raise CostModelError(f"cost table {path}: layer {layer!r} needs an object {{BITS: COST}}, got {row!r}")
            for bits, cost in row.items():
                _put(costs, path, str(layer), bits, cost)
        return unit, costs
    lines = text.splitlines()
    if lines and lines[0].lstrip().startswith("#"):
        head = lines.pop(0).lstrip("# \t")
        if head.lower().startswith("unit:"):
            unit = head.split(":", 1)[1].strip() or unit
    reader = csv.DictReader(lines)
    if reader.fieldnames is None or [f.strip() for f in reader.fieldnames] != ["layer", "bits", "cost"]:
        raise CostModelError(f"cost table {path} has the header {reader.fieldnames}; expected {TABLE_FORMAT}")
    for row in reader:
        _put(costs, path, (row["layer"] or "").strip(), row["bits"], row["cost"])
    return unit, costs


def _put(costs: dict[str, dict[int, float]], path: Path, layer: str, bits: Any, cost: Any) -> None:
    try:
        b = int(str(bits).strip())
        c = float(str(cost).strip())
    except (TypeError, ValueError):
        raise CostModelError(
            f"cost table {path}: layer {layer!r} has bits={bits!r}, cost={cost!r}; both must be numbers"
        ) from None
    if not math.isfinite(c) or c < 0:
        raise CostModelError(
            f"cost table {path}: layer {layer!r} at {b} bits costs {c}; a cost is a finite number >= 0"
        )
    if b in costs.setdefault(layer, {}):
        raise CostModelError(f"cost table {path}: layer {layer!r} at {b} bits is given twice")
    costs[layer][b] = c


def layer_names(net: LayeredNet) -> dict[str, list[str]]:
    """The layer names a cost table must cover: {"switchable": [...], "tied": [...], "fixed": [...]}."""
    return {
        "switchable": [s.name for s in net.layer_specs],
        "tied": [s.name for _, s in net.extra_specs],
        "fixed": [s.name for s in net.fixed_specs],
    }


def _table_from_costs(
    net: LayeredNet, choices: tuple[int, ...], costs: dict[str, dict[int, float]], unit: str, path: Path
) -> CostTable:
    names = layer_names(net)
    known = {*names["switchable"], *names["tied"], *names["fixed"]}
    unknown = sorted(set(costs) - known)
    if unknown:
        raise CostModelError(
            f"cost table {path} names layers the supernet does not have: {unknown[:5]}; its layers are {sorted(known)}"
        )
    wanted = sorted({*choices, REFERENCE_BITS})

    def need(layer: str, widths: Sequence[int]) -> dict[int, float]:
        row = costs.get(layer)
        if row is None:
            raise CostModelError(
                f"cost table {path} has no row for layer {layer!r}: give its cost at bits {list(widths)}"
            )
        missing = [b for b in widths if b not in row]
        if missing:
            raise CostModelError(f"cost table {path}: layer {layer!r} has no cost at bits {missing}; add those rows")
        return row

    layers = np.zeros((len(net.layer_specs), len(choices)), dtype=np.float64)
    eight = 0.0
    for t in range(len(net.layer_specs)):
        for spec in _tied(net, t):
            row = need(spec.name, wanted)
            layers[t] += [row[b] for b in choices]
            eight += row[REFERENCE_BITS]
    fixed = sum(need(s.name, [REFERENCE_BITS])[REFERENCE_BITS] for s in net.fixed_specs)
    all8 = eight + fixed
    if all8 <= 0:
        raise CostModelError(f"cost table {path}: the all-8 configuration costs {all8}; it must cost more than 0")
    return CostTable(f"table:{path.name}", unit, choices, layers, float(fixed), float(all8), sha256(path))


def write_cost_file(path: str | Path, costs: dict[str, dict[int, float]], unit: str) -> None:
    """Write ``costs`` ({layer: {bits: cost}}) as a CSV cost table that :func:`load_cost_file` reads."""
    rows = [f"# unit: {unit}", "layer,bits,cost"]
    rows += [f"{layer},{b},{c!r}" for layer, row in costs.items() for b, c in sorted(row.items())]
    atomic_write_text(path, "\n".join(rows) + "\n")
