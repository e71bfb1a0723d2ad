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
from pathlib import Path
from typing import Any

import pandas as pd

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
        """(divisor, prefix) of the cost column: G for BitOps; the largest prefix below all-8 for bricks."""
        if self.is_bitops:
            return 1e9, "G"
        if self.model.get("unit") in COUNTED_UNITS:
            return next(((s, p) for s, p in _PREFIXES if self.all8 >= s), (1.0, ""))
        return 1.0, ""

    @property
    def header(self) -> str:
        """The cost column's header: ``GBitOps`` under BitOps, else e.g. ``cost (Mbricks)`` or ``cost (ms)``."""
        if self.is_bitops:
            return "GBitOps"
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


def pareto_cost_plot(table: pd.DataFrame, path: str | Path, title: str, cost: CostColumns) -> Path:
    """The bench's Pareto plot (:func:`agents.app.plots.pareto_figure`) with the cost on the x axis.

    Under BitOps it is exactly :func:`agents.app.plots.pareto_plot`. Under another model the plot is
    drawn from a copy of the table whose ``bitops`` column holds the cost, scaled so that the figure's
    division by 1e9 gives the cost column's units, and the axis is labelled for the model.
    """
    from agents.app.plots import pareto_figure, pareto_plot, plt  # lazy: matplotlib, as bench imports its plots

    if cost.is_bitops:
        return pareto_plot(table, path, title)
    divisor, prefix = cost.scale
    view = table.assign(bitops=table["cost"] * (1e9 / divisor))
    fig = pareto_figure(view, title)
    ax = fig.axes[0]
    ax.set_xlabel(f"mean cost per input ({prefix}{cost.model.get('unit')}, cost model {cost.model.get('model')})")
    if not title:
        ax.set_title(f"accuracy vs cost ({cost.model.get('model')})")
    path = Path(path)
    tmp = path.with_suffix(".tmp.png")  # written whole, then moved, as every bench file is
    fig.savefig(tmp, dpi=130, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path
