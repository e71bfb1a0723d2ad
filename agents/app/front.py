"""How a leaderboard reaches its verdicts: rows from episodes, the static front, the static mixtures.

Everything here is pure arithmetic on episode records (no env, no agents), so it can be checked
on hand-made records where the right answer is known, and mutation-tested quickly:

- :func:`check_row_names`: one name, one row (duplicates and impostors of built-in names refused);
- :func:`leaderboard`: one row per agent from its episodes;
- :func:`per_image`: the (agents, images) matrices the paired statistics pair on;
- :func:`static_hull_mixture`: the best coin flip between two static rows at a given BitOps spend;
- :func:`add_paired`: paired differences against a reference row, the static front and the mixtures;
- :func:`front_summary`: which rows the front held, for ``results.json``;
- :func:`format_compact_markdown`: the leaderboard in six columns, one short line per row.

The verdict is the gap to the static mixtures: a row **beats** them when the whole paired 95%
interval of that gap lies above zero (``front.beats_static_mixtures``). The gap to the static
front (the staircase of single static rows) stays as a figure, without the label: any cheap row
landing just above one of the staircase's steps would "beat" it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from agents.app.costs import CostColumns
from agents.app.stats import interval, paired_bootstrap
from supernets.foundation.errors import UsageError

STATIC_PREFIXES = ("fixed-", "static-")
"""Rows that run one configuration for every input: the static front agents are judged against."""

RESERVED_NAMES = ("random", "greedy", "oracle", "ppo", "escalation")
RESERVED_PREFIXES = ("fixed-", "static-", "greedy@", "escalation@")
"""Names of built-in agents (and the forms they take): a user's agent may not call itself one of these."""


def is_reserved_name(name: str) -> bool:
    """Whether ``name`` is, or has the form of, a built-in agent's leaderboard name."""
    return name in RESERVED_NAMES or name.startswith(RESERVED_PREFIXES)


def check_row_names(rows: Sequence[tuple[str, str, bool]]) -> None:
    """Refuse two rows with one name, and a custom agent named like a built-in one.

    ``rows`` holds (spec, row name, custom) per agent: the ``--agents`` entry it came from, the
    name its row gets, and whether the name was chosen by the user's own code. One name, one
    row: a merged row would average two agents, and an impostor of ``fixed-b`` would join the
    static front.
    """
    seen: dict[str, str] = {}
    for spec, name, custom in rows:
        if custom and is_reserved_name(name):
            raise UsageError(
                f"agent {spec!r} calls itself {name!r}, the name of a built-in agent; one name, one row: "
                "give your agent's `name` attribute a name of its own"
            )
        if name in seen:
            first = seen[name]
            if first == spec:
                raise UsageError(
                    f"--agents lists {spec!r} twice; one name, one row: list each agent once "
                    "(--seeds gives more episodes per image)"
                )
            raise UsageError(
                f"agents {first!r} and {spec!r} would both be the row {name!r}; one name, one row: "
                "give each agent a name of its own"
            )
        seen[name] = spec


def leaderboard(records: Sequence[dict], agents_meta: dict[str, dict], max_bitops: float) -> pd.DataFrame:
    """One row per agent: accuracy and reward with 95% CIs, mean BitOps, decision cost, wall time.

    Records with a ``cost`` (the env's cost model, :mod:`agents.app.costs`) give each row its mean
    ``cost`` and ``cost_fraction`` (the mean of the episodes' fractions of all-8) too.
    """
    df = pd.DataFrame.from_records(records)
    costed = "cost" in df.columns
    rows = []
    for name, meta in agents_meta.items():
        sub = df[df["agent"] == name]
        seeds = sorted(sub["seed"].unique())
        acc = [sub[sub["seed"] == s]["correct"].to_numpy(float) for s in seeds]
        rew = [sub[sub["seed"] == s]["reward"].to_numpy(float) for s in seeds]
        a, a_lo, a_hi = interval(acc)
        r, r_lo, r_hi = interval(rew)
        rows.append(
            {
                "agent": name,
                "accuracy": a,
                "accuracy_ci": [a_lo, a_hi],
                "bitops": float(sub["bitops"].mean()),
                "decision_macs": float(sub["decision_macs"].mean()),
                "bitops_fraction": float(sub["bitops"].mean()) / max_bitops,
                "reward": r,
                "reward_ci": [r_lo, r_hi],
                "episodes": int(len(sub) // max(1, len(seeds))),
                "seeds": len(seeds),
                "wall_s": float(meta.get("wall_s", float("nan"))),
                "uses_label": bool(meta.get("uses_label")),
            }
        )
        if costed:
            rows[-1].update(cost=float(sub["cost"].mean()), cost_fraction=float(sub["cost_fraction"].mean()))
    return pd.DataFrame(rows)


def per_image(records: Sequence[dict], agents: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(agents, images) correctness and return, averaged over each agent's seeds, images in index order."""
    df = pd.DataFrame.from_records(records, columns=["agent", "index", "correct", "reward"])
    df = df.astype({"correct": float})
    mean = df.groupby(["agent", "index"], sort=True)[["correct", "reward"]].mean()
    correct = mean["correct"].unstack("index").reindex(list(agents))
    reward = mean["reward"].unstack("index").reindex(list(agents))
    if correct.isna().to_numpy().any():
        raise ValueError("paired statistics need every agent to run on the same images")
    return correct.to_numpy(), reward.to_numpy()


def static_hull_mixture(x: float, points: Sequence[tuple[int, float, float]]) -> list[tuple[int, float]] | None:
    """The random mixture of static rows with mean BitOps ``x`` and the highest expected accuracy.

    ``points`` are (row, BitOps, accuracy). Returns [(row, weight), ...] (one or two rows) on the
    upper concave hull of the points, flat beyond the most accurate one; None when ``x`` is
    below every row's BitOps.
    """
    pts = sorted(points, key=lambda p: (p[1], -p[2]))
    if not pts or x < pts[0][1] * (1 - 1e-9):
        return None
    hull = upper_hull(pts)
    for (a, xa, _), (b, xb, _) in itertools.pairwise(hull):
        if xa <= x <= xb:
            w = (xb - x) / (xb - xa)
            return [(a, w), (b, 1 - w)] if 0 < w < 1 else [(a if w >= 1 else b, 1.0)]
    last = hull[-1] if x >= hull[-1][1] else hull[0]
    return [(last[0], 1.0)]


def upper_hull(points: Sequence[tuple[int, float, float]]) -> list[tuple[int, float, float]]:
    """The static mixtures' front: the (row, BitOps, accuracy) points on the upper concave hull, cheapest first.

    From the cheapest point to the most accurate one; a point that spends more for no more
    accuracy, or lies on or under a chord between two others, is left out.
    """
    pts = sorted(points, key=lambda p: (p[1], -p[2]))
    hull: list[tuple[int, float, float]] = []
    for p in pts:
        if hull and p[2] <= hull[-1][2]:
            continue  # spends more for no more accuracy: never on the front
        while len(hull) >= 2:
            (_, x1, y1), (_, x2, y2) = hull[-2], hull[-1]
            if (y2 - y1) * (p[1] - x1) <= (p[2] - y1) * (x2 - x1):  # hull[-1] lies on or below the chord
                hull.pop()
            else:
                break
        hull.append(p)
    return hull


def add_paired(
    table: pd.DataFrame,
    records: Sequence[dict],
    reference: str,
    front_rows: Sequence[str] | None = None,
    cost: str = "bitops",
) -> pd.DataFrame:
    """Add the ``paired`` and ``front`` columns: per-image differences with a paired bootstrap over images.

    ``paired`` compares each row with the ``reference`` row. ``front`` holds two gaps:

    - ``hull_gap``, the verdict: the gap to the best *random mixture* of two static rows with the
      same mean BitOps (the static rows' upper concave hull), a baseline any controller gets for
      free by flipping a coin per input; per image, the mixture scores the weighted mean of its
      two rows' correctness, so the gap is paired too. ``beats_static_mixtures`` is true when the
      whole 95% interval of this gap lies above zero: the leaderboards' **beats**.
    - ``accuracy_gap``, the gap to the most accurate single static row (``against``) whose mean
      BitOps are no higher than the row's own (the staircase front). ``beats_static_front`` is
      true when its whole 95% interval lies above zero; it is kept for readers of older results
      and is no longer a label: a row just above one of the staircase's steps clears it cheaply.

    A row cheaper than every static row has neither comparison (gaps null, flags false).

    ``front_rows`` names the static rows (default: every row named fixed-b or static-b); each
    must be a row of ``table``. ``cost`` is the column the rows spend (``bitops``, or ``cost``
    under another cost model): "no more", "cheaper" and "the same mean spend" are measured in it.
    """
    names = list(table["agent"])
    if reference not in names:
        raise UsageError(
            f"--reference {reference!r} is not a row of this leaderboard; the rows are: {', '.join(names)}"
        )
    if front_rows is None:
        static = [i for i, n in enumerate(names) if n.startswith(STATIC_PREFIXES)]
    else:
        missing = [n for n in front_rows if n not in names]
        if missing:
            raise ValueError(f"front rows {missing} are not rows of the leaderboard")
        static = [names.index(n) for n in front_rows]
    correct, reward = per_image(records, names)
    ref = names.index(reference)
    bitops = table[cost].to_numpy(float)
    accuracy = table["accuracy"].to_numpy(float)
    against: list[int | None] = []
    for i in range(len(names)):
        cheaper = [j for j in static if bitops[j] <= bitops[i] * (1 + 1e-9)]
        against.append(max(cheaper, key=lambda j: (accuracy[j], -bitops[j])) if cheaper else None)
    deltas = [correct - correct[ref], reward - reward[ref]]
    deltas.append(
        np.stack([correct[i] - correct[j] if j is not None else correct[i] * np.nan for i, j in enumerate(against)])
    )
    hull = [static_hull_mixture(bitops[i], [(j, bitops[j], accuracy[j]) for j in static]) for i in range(len(names))]
    deltas.append(
        np.stack(
            [
                correct[i] - sum(w * correct[j] for j, w in mix) if mix else correct[i] * np.nan
                for i, mix in enumerate(hull)
            ]
        )
    )
    mean, lo, hi = paired_bootstrap(np.concatenate(deltas))
    k = len(names)
    paired, front = [], []
    for i in range(k):
        paired.append(
            {
                "reference": reference,
                "accuracy_delta": float(mean[i]),
                "accuracy_delta_ci": [float(lo[i]), float(hi[i])],
                "reward_delta": float(mean[k + i]),
                "reward_delta_ci": [float(lo[k + i]), float(hi[k + i])],
            }
        )
        j = against[i]
        gap = [float(v[2 * k + i]) for v in (mean, lo, hi)] if j is not None else [None, None, None]
        mix = hull[i]
        hull_gap = [float(v[3 * k + i]) for v in (mean, lo, hi)] if mix else [None, None, None]
        front.append(
            {
                "against": names[j] if j is not None else None,
                "accuracy_gap": gap[0],
                "accuracy_gap_ci": gap[1:],
                "beats_static_front": bool(j is not None and gap[1] > 0),
                "hull_mixture": [[names[m], float(w)] for m, w in mix] if mix else None,
                "hull_gap": hull_gap[0],
                "hull_gap_ci": hull_gap[1:],
                "beats_static_mixtures": bool(mix and hull_gap[1] > 0),
            }
        )
    table = table.copy()
    table["paired"] = paired
    table["front"] = front
    return table


def front_summary(
    table: pd.DataFrame, front_rows: Sequence[str], listed: Sequence[str], cost: str = "bitops"
) -> list[dict]:
    """The rows the static front held, cheapest first: name, accuracy, mean BitOps, and whether it was listed.

    ``table`` has every row that ran (listed or not); ``listed`` are the rows the user asked for.
    ``cost`` is the column the rows spend; a row's mean ``cost`` joins when it is not ``bitops``.
    """
    rows = table.set_index("agent")
    held = sorted(front_rows, key=lambda n: (float(rows.loc[n, cost]), n))
    return [
        {
            "agent": n,
            "accuracy": float(rows.loc[n, "accuracy"]),
            "bitops": float(rows.loc[n, "bitops"]),
            **({"cost": float(rows.loc[n, cost])} if cost != "bitops" else {}),
            "listed": n in listed,
        }
        for n in held
    ]


def _points(value: float | None, ci: Sequence[float | None]) -> str:
    if value is None or ci[0] is None or ci[1] is None or not np.isfinite(value):
        return "-"
    return f"{100 * value:+.2f} ({100 * ci[0]:+.2f} to {100 * ci[1]:+.2f})"


def mixtures_verdict(front: dict) -> str:
    """The gap to the static mixtures in points with its paired 95% interval, and **beats** when it holds."""
    text = _points(front.get("hull_gap"), front.get("hull_gap_ci", [None, None]))
    return text + (" **beats**" if front.get("beats_static_mixtures") else "")


def format_compact_markdown(table: pd.DataFrame, cost: CostColumns | None = None) -> str:
    """The leaderboard in six columns, one short line per row: the page a browser shows.

    agent, accuracy % (95% CI), GBitOps, decision MMACs, the gap to the static mixtures (the
    verdict, with **beats**) and the gap to the static front with the row it is measured
    against; intervals are paired 95% ones, in points. The full table (``leaderboard.md``,
    :func:`agents.app.bench.format_markdown`) has every other column. Under a cost model other
    than BitOps (``cost``), the GBitOps column holds its cost (e.g. ``cost (Mbricks)``).
    """
    paired = "front" in table.columns and table["front"].notna().all()
    cost = cost or CostColumns({"model": "bitops"}, 0.0)
    head = f"| agent | accuracy % (95% CI) | {cost.header} | decision MMACs |"
    align = "| --- | ---: | ---: | ---: |"
    if paired:
        head += " gap to static mixtures, points | gap to static front, points |"
        align += " ---: | ---: |"
    lines = [head, align]
    for _, r in table.iterrows():
        line = (
            f"| {r['agent']} | {100 * r['accuracy']:.2f} ({100 * r['accuracy_ci'][0]:.2f}-"
            f"{100 * r['accuracy_ci'][1]:.2f}) | {cost.cell(r)} | {r['decision_macs'] / 1e6:.2f} |"
        )
        if paired:
            f = r["front"]
            gap = _points(f["accuracy_gap"], f["accuracy_gap_ci"])
            gap += f" vs {f['against']}" if f["against"] is not None else ""
            line += f" {mixtures_verdict(f)} | {gap} |"
        lines.append(line)
    labelled = [r["agent"] for _, r in table.iterrows() if r.get("uses_label")]
    if labelled:
        lines += ["", f"{', '.join(labelled)}: uses the labels, an upper bound rather than a controller."]
    return "\n".join(lines)
