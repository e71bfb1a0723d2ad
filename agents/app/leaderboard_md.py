"""The leaderboard's full Markdown table (``leaderboard.md``); the compact one is :mod:`agents.app.front`'s."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from agents.app.costs import CostColumns


def _points(value: float | None, ci: Sequence[float | None]) -> str:
    if value is None or ci[0] is None or not np.isfinite(value):
        return "-"
    return f"{100 * value:+.2f} ({100 * ci[0]:+.2f} to {100 * ci[1]:+.2f})"


def _yes_no(flag: Any) -> str:
    return "yes" if flag is True else "no" if flag is False else "-"


def format_markdown(table: pd.DataFrame, cost: CostColumns | None = None) -> str:
    """The leaderboard as a Markdown table (accuracy in %, BitOps in G, decision cost in M MACs).

    ``cost`` names the cost model's columns (:class:`agents.app.costs.CostColumns`); None or BitOps:
    ``GBitOps`` and ``BitOps / fixed-8``, as always. Under another model they hold its cost
    (e.g. ``cost (Mbricks)`` and ``cost / all-8``).

    With paired statistics, three more columns (points, paired 95% CIs): the difference to the reference
    row, the gap to the static front, and the gap to the static mixtures, marked **beats** when its whole
    interval is above zero. A ``normalize_obs`` column (the zoo's) gives an ``obs normalised`` column.
    """
    paired = "paired" in table.columns and table["paired"].notna().all()
    ref = table["paired"].iloc[0]["reference"] if paired and len(table) else ""
    norm = "normalize_obs" in table.columns  # the zoo's learned rows: observations normalised or not
    cost = cost or CostColumns({"model": "bitops"}, 0.0)
    head = "| agent | " + ("obs normalised | " if norm else "")
    head += f"accuracy % (95% CI) | {cost.header} | decision MMACs | "
    head += f"{cost.fraction_header} | "
    align = "| --- | " + ("--- | " if norm else "") + "---: | ---: | ---: | ---: | "
    if paired:
        head += (
            f"Δ accuracy vs {ref}, points (paired 95% CI) | gap to static front, points (paired 95% CI) | "
            "gap to static mixtures, points (paired 95% CI) | "
        )
        align += "---: | ---: | ---: | "
    head += "reward (95% CI) | episodes | seeds | wall s |"
    align += "---: | ---: | ---: | ---: |"
    lines = [head, align]
    for _, r in table.iterrows():
        cell = f"{_yes_no(r['normalize_obs'])} | " if norm else ""
        line = (
            f"| {r['agent']} | {cell}{100 * r['accuracy']:.2f} ({100 * r['accuracy_ci'][0]:.2f}-"
            f"{100 * r['accuracy_ci'][1]:.2f}) | {cost.cell(r)} | {r['decision_macs'] / 1e6:.2f} | "
            f"{r[cost.fraction_column]:.3f} | "
        )
        if paired:
            p, f = r["paired"], r["front"]
            gap = _points(f["accuracy_gap"], f["accuracy_gap_ci"]) + (f" vs {f['against']}" if f["against"] else "")
            hull = _points(f.get("hull_gap"), f.get("hull_gap_ci", [None, None]))
            hull += " **beats**" if f.get("beats_static_mixtures") else ""  # the verdict: see agents.app.front
            line += f"{_points(p['accuracy_delta'], p['accuracy_delta_ci'])} | {gap} | {hull} | "
        line += (
            f"{r['reward']:.4f} ({r['reward_ci'][0]:.4f}-{r['reward_ci'][1]:.4f}) | "
            f"{r['episodes']} | {r['seeds']} | {r['wall_s']:.1f} |"
        )
        lines.append(line)
    labelled = [r["agent"] for _, r in table.iterrows() if r.get("uses_label")]
    if labelled:
        lines += ["", f"{', '.join(labelled)}: uses the labels, an upper bound rather than a controller."]
    declared = [r["agent"] for _, r in table.iterrows() if r.get("decision_cost") == "declared"]
    if declared:
        lines += ["", f"{', '.join(declared)}: decision MMACs declared by the agent, not measured."]
    return "\n".join(lines)
