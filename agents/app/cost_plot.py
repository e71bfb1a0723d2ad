"""The bench's Pareto plot under a cost model: the cost on the x axis (:mod:`agents.app.costs`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from agents.app.costs import CostColumns
from agents.app.plots import pareto_figure, pareto_plot, plt


def pareto_cost_plot(table: pd.DataFrame, path: str | Path, title: str, cost: CostColumns) -> Path:
    """The bench's Pareto plot (:func:`agents.app.plots.pareto_figure`) with the cost on the x axis.

    Under BitOps it is exactly :func:`agents.app.plots.pareto_plot`. Under another model the plot is
    drawn from a copy of the table whose ``bitops`` column holds the cost, scaled so that the figure's
    division by 1e9 gives the cost column's units, and the axis is labelled for the model.
    """
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
