"""The bench under a cost model: which column is the cost, what the leaderboard calls it, and its plot.

``abn-gym bench`` ranks rows by accuracy against the cost of the env's ``cost_model``
(:func:`supernets.costs.cost_table`): BitOps by default, BitFusion's bricks, or a user's table. The
records carry both (``bitops`` and ``cost``), and the front, the mixtures and the verdicts use the
cost. Under BitOps the cost *is* the BitOps, so the verdicts read the ``bitops`` column exactly as
before and the table keeps its GBitOps columns; under another model the cost columns are named
for it ("cost (Mbricks)", "cost / all-8"), and a line above the table names the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from supernets.bitops import bitops_unit
from supernets.costs import DEFAULT_COST_MODEL

_PREFIXES = ((1e9, "G"), (1e6, "M"), (1e3, "k"))
COUNTED_UNITS = ("BitOps", "bricks")
"""Units that count operations, shown with a G/M/k prefix; a table's unit (ms, mJ) is shown as it is."""


@dataclass(frozen=True)
class CostColumns:
    """How a leaderboard shows the cost of one cost model.

    Args:
        model: the model's ``CostTable.describe()``: {"model", "unit", "sha256"}.
        all8: the all-8 configuration's cost (picks the prefix of a counted unit).
    """

    model: dict[str, Any]
    all8: float

    @property
    def is_bitops(self) -> bool:
        """Whether the cost is BitOps: the leaderboard's columns stay exactly as they were."""
        return self.model.get("model", DEFAULT_COST_MODEL) == DEFAULT_COST_MODEL

    @property
    def column(self) -> str:
        """The leaderboard's column (row key) holding the mean cost: ``bitops`` under BitOps, else ``cost``."""
        return "bitops" if self.is_bitops else "cost"

    @property
    def fraction_column(self) -> str:
        """The row key of the cost as a fraction of all-8 (``bitops_fraction`` under BitOps)."""
        return "bitops_fraction" if self.is_bitops else "cost_fraction"

    @property
    def scale(self) -> tuple[float, str]:
        """(divisor, prefix) of the cost column: G for BitOps (M or k for a network under 0.1 GBitOps,
        :func:`supernets.bitops.bitops_unit`); the largest prefix below all-8 for bricks."""
        if self.is_bitops:
            if self.all8 <= 0:  # all-8 not given (the zoo's tables): GBitOps, as the tables always were
                return 1e9, "G"
            scale, unit = bitops_unit(self.all8)
            return scale, unit.removesuffix("BitOps")
        if self.model.get("unit") in COUNTED_UNITS:
            return next(((s, p) for s, p in _PREFIXES if self.all8 >= s), (1.0, ""))
        return 1.0, ""

    @property
    def header(self) -> str:
        """The cost column's header: ``GBitOps`` under BitOps (``MBitOps`` for a small network), else e.g.
        ``cost (Mbricks)`` or ``cost (ms)``."""
        if self.is_bitops:
            return f"{self.scale[1]}BitOps"
        return f"cost ({self.scale[1]}{self.model.get('unit')})"

    @property
    def fraction_header(self) -> str:
        """The cost fraction's header: ``BitOps / fixed-8`` under BitOps (as it was), else ``cost / all-8``."""
        return "BitOps / fixed-8" if self.is_bitops else "cost / all-8"

    def cell(self, row: Any) -> str:
        """A row's mean cost as the cost column shows it."""
        value = float(row[self.column]) / self.scale[0]
        return f"{value:.4f}" if self.is_bitops or self.scale[1] else f"{value:.6g}"

    def line(self) -> str:
        """The line above a leaderboard that names its cost model."""
        model, unit, sha = self.model.get("model"), self.model.get("unit"), self.model.get("sha256")
        text = f"Cost model: `{model}` ({unit}"
        text += f", table sha256 {sha[:12]}...)" if sha else ")"
        about = {
            "bitops": "BitOps = w_bits x a_bits x MACs per layer",
            "bitfusion": "BitFusion bricks = ceil(w/2) x ceil(a/2) per MAC",
        }.get(str(model), "a user's per-layer cost table")
        return f"{text}: {about}; the front, the mixtures and the verdicts use this cost."
