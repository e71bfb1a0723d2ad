"""Plots of a benchmark: the accuracy-BitOps Pareto view and where an agent spends its bits."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import ast

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from agents.app.front import upper_hull
from supernets.data import CLASSES


def _save(fig, path: Path) -> None:
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=130, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)


# One colour per family of rows, so a reader can tell them apart at a glance; the learned rows
# share a colour and each has its own marker and a label beside its point.
FAMILY_STYLE = {
    "fixed": {"color": "dimgrey", "marker": "o"},
    "static": {"color": "tab:blue", "marker": "s"},
    "random": {"color": "tab:purple", "marker": "X"},
    "look-ahead": {"color": "tab:orange", "marker": "^"},
    "learned": {"color": "tab:green", "marker": "D"},
    "oracle": {"color": "tab:red", "marker": "*"},
}
_LEARNED_MARKERS = "DPvph<>d"


def family(agent: str, uses_label: bool = False) -> str:
    """The family of a leaderboard row: fixed, static, random, look-ahead, learned or oracle."""
    base = agent.split(" [")[0]
    if uses_label or base.startswith("oracle"):
        return "oracle"
    for prefix, name in (("fixed-", "fixed"), ("static-", "static"), ("greedy", "look-ahead")):
        if base.startswith(prefix):
            return name
    return "random" if base == "random" else "learned"


def pareto_plot(table: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Accuracy against mean BitOps (:func:`pareto_figure`), saved as a PNG at ``path``."""
    path = Path(path)
    _save(pareto_figure(table, title), path)
    return path


def pareto_figure(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """Accuracy against mean BitOps: the static front as a step line, its mixtures dashed, every other row a point.

    Each family has its own colour and marker, the learned rows are labelled beside their points,
    and the legend stands outside the axes, so that it never covers a point.

    Args:
        table: a leaderboard (``agents.app.bench.leaderboard``): agent, accuracy, accuracy_ci, bitops.
        title: the axes' title.
    """
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    fams = [family(a, bool(u)) for a, u in zip(table["agent"], table.get("uses_label", [False] * len(table)))]
    table = table.assign(family=fams)
    fixed = table[table["family"] == "fixed"].sort_values("bitops")
    static = table[table["family"] == "static"].sort_values("bitops")
    if len(fixed):
        style = FAMILY_STYLE["fixed"]
        ax.plot(fixed["bitops"] / 1e9, 100 * fixed["accuracy"], ls=":", label="fixed-b (b bits everywhere)", **style)
        for _, r in fixed.iterrows():
            ax.annotate(
                r["agent"].split("-")[1],
                (r["bitops"] / 1e9, 100 * r["accuracy"]),
                fontsize=7,
                xytext=(3, -9),
                textcoords="offset points",
            )
    if len(static):
        ax.plot(
            static["bitops"] / 1e9,
            100 * static["accuracy"],
            ls="",
            label="static-b (one config, val search)",
            **FAMILY_STYLE["static"],
        )
    front = static_front(table[table["family"].isin(["fixed", "static"])])
    if len(front):
        # The best static accuracy available at each BitOps spend: a step, since spending more never lowers it.
        x = np.append(front[:, 0], table["bitops"].max() * 1.05) / 1e9
        y = 100 * np.append(front[:, 1], front[-1, 1])
        ax.step(x, y, where="post", color="black", alpha=0.6, lw=1.2, label="static front")
        # The verdict's baseline: coin flips between two static rows, the upper concave hull of their points.
        hull = np.array([(b, a) for _, b, a in upper_hull(list(zip(range(len(front)), front[:, 0], front[:, 1])))])
        ax.plot(hull[:, 0] / 1e9, 100 * hull[:, 1], ls="--", color="tab:blue", alpha=0.7, lw=1, label="static mixtures")
    learned = iter(_LEARNED_MARKERS)
    labels, owners, bars = [], [], []
    for _, r in table[~table["family"].isin(["fixed", "static"])].iterrows():
        style = dict(FAMILY_STYLE[r["family"]])
        if r["family"] == "learned":
            style["marker"] = next(learned, "o")
        label = r["agent"] + {"look-ahead": " (look-ahead)", "oracle": " (uses labels)"}.get(r["family"], "")
        xy = (r["bitops"] / 1e9, 100 * r["accuracy"])
        ax.errorbar(
            *xy,
            yerr=[[100 * (r["accuracy"] - r["accuracy_ci"][0])], [100 * (r["accuracy_ci"][1] - r["accuracy"])]],
            fmt=style["marker"],
            color=style["color"],
            markersize=8 if style["marker"] == "*" else 6,
            label=label,
            capsize=3,
        )
        low, high = 100 * r["accuracy_ci"][0], 100 * r["accuracy_ci"][1]
        bars += [(xy[0], y) for y in np.linspace(low, high, 9)]
        if r["family"] == "learned":
            owners.append(xy)
            labels.append(
                ax.annotate(
                    r["agent"],
                    xy,
                    fontsize=7,
                    color=style["color"],
                    fontweight="bold",
                    xytext=_LABEL_SPOTS[0][:2],
                    ha=_LABEL_SPOTS[0][2],
                    textcoords="offset points",
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
                )
            )
    ax.set_xlabel("mean BitOps per input (G)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title or "accuracy vs BitOps")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)
    points = np.r_[np.c_[table["bitops"] / 1e9, 100 * table["accuracy"]], np.array(bars).reshape(-1, 2)]
    _place_labels(fig, ax, labels, np.array(owners).reshape(-1, 2), points)
    return fig


# Where a learned row's name may go, tried in order: (x, y) offset in points and alignment.
_LABEL_SPOTS = [
    (7, 5, "left"),
    (7, -11, "left"),
    (-7, 5, "right"),
    (-7, -11, "right"),
    (7, 14, "left"),
    (-7, 14, "right"),
    (10, -20, "left"),
    (-10, -20, "right"),
]


def _place_labels(fig: plt.Figure, ax: plt.Axes, labels: list, owners: np.ndarray, points: np.ndarray) -> None:
    """Move each name to the first spot where it covers no point or error bar and no name placed before
    it, and where no other labelled point is nearer to it than its own (close points would swap names)."""
    fig.canvas.draw()  # fixes the axes' limits, so that data map to pixels as they will be drawn
    renderer = fig.canvas.get_renderer()
    pixels = ax.transData.transform(points)
    own = ax.transData.transform(owners) if len(owners) else np.zeros((0, 2))
    taken: list = []
    for i, label in enumerate(labels):
        spots = _LABEL_SPOTS
        if len(own) > 1:
            # Start on the side away from the nearest other learned point, so that two close points'
            # names sit apart rather than between them.
            others = np.delete(own, i, axis=0)
            side = np.sign(own[i, 0] - others[np.argmin(np.hypot(*(others - own[i]).T)), 0]) or 1.0
            spots = sorted(_LABEL_SPOTS, key=lambda spot: np.sign(spot[0]) != side)
        for dx, dy, ha in spots:
            label.set_position((dx, dy))
            label.set_ha(ha)
            box = label.get_window_extent(renderer).expanded(1.05, 1.1)
            centre = np.array([(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2])
            nearest = int(np.argmin(np.hypot(*(own - centre).T)))
            if (
                not any(box.contains(x, y) for x, y in pixels)
                and not any(box.overlaps(t) for t in taken)
                and nearest == i
            ):
                break
        taken.append(label.get_window_extent(renderer))


def pareto_from_csv(csv: str | Path, path: str | Path, title: str = "") -> Path:
    """:func:`pareto_plot` of a ``leaderboard.csv`` written by ``abn-gym bench`` or ``abn-gym zoo``."""
    table = pd.read_csv(csv)
    table["accuracy_ci"] = table["accuracy_ci"].map(ast.literal_eval)
    return pareto_plot(table, path, title)


def static_front(static: pd.DataFrame) -> np.ndarray:
    """(k, 2) points (BitOps, accuracy) where the best accuracy of a static row spending no more rises."""
    points = static.sort_values(["bitops", "accuracy"])[["bitops", "accuracy"]].to_numpy(float)
    front: list[list[float]] = []
    for x, y in points:
        if not front or y > front[-1][1]:
            front.append([x, y])
    return np.array(front).reshape(-1, 2)


def bit_matrix(records: Sequence[dict], agent: str, labels: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """(classes, layers): mean bit-width chosen per layer for the inputs of each true class."""
    rows = [r for r in records if r["agent"] == agent]
    bits = np.array([r["bits"] for r in rows], dtype=float)
    cls = labels[np.array([r["index"] for r in rows])]
    return np.stack(
        [
            bits[cls == c].mean(axis=0) if (cls == c).any() else np.full(bits.shape[1], np.nan)
            for c in range(num_classes)
        ]
    )


def _describe(config: Sequence[int]) -> str:
    """A configuration in runs: ``(2, 2, 2, 4, ..., 4)`` -> ``"2 bits x3, then 4"``; uniform -> ``"all 4 bits"``."""
    runs: list[list[int]] = []
    for b in config:
        if runs and runs[-1][0] == b:
            runs[-1][1] += 1
        else:
            runs.append([int(b), 1])
    if len(runs) == 1:
        return f"all {runs[0][0]} bits"
    return ", then ".join(f"{b} bits x{n}" for b, n in runs)


def configuration_shares(
    records: Sequence[dict], agent: str, labels: np.ndarray, num_classes: int = 10
) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """The agent's distinct configurations (fewest BitOps first) and, per class, the share of images at each."""
    rows = [r for r in records if r["agent"] == agent]
    configs = sorted({tuple(r["bits"]) for r in rows}, key=lambda c: (sum(c), c))
    cls = labels[np.array([r["index"] for r in rows])]
    which = np.array([configs.index(tuple(r["bits"])) for r in rows])
    shares = np.zeros((num_classes, len(configs)))
    for c in range(num_classes):
        if (cls == c).any():
            shares[c] = np.bincount(which[cls == c], minlength=len(configs)) / (cls == c).sum()
    return configs, shares


def heatmap_plot(
    records: Sequence[dict], agent: str, labels: np.ndarray, path: str | Path, max_configurations: int = 4
) -> Path:
    """Where an adaptive agent spends its precision (:func:`bits_figure`), saved as a PNG at ``path``."""
    path = Path(path)
    _save(bits_figure(records, agent, labels, max_configurations), path)
    return path


def bits_figure(records: Sequence[dict], agent: str, labels: np.ndarray, max_configurations: int = 4) -> plt.Figure:
    """Where an adaptive agent spends its precision, per true class, drawn to suit the agent.

    An agent that picks one of a few whole configurations per image (at most ``max_configurations``,
    like the escalation controller) gets stacked bars: the share of each class's images at each
    configuration. Its per-layer heatmap would be as many identical columns as layers. Any other
    agent gets the heatmap of :func:`bit_matrix`: mean bit-width per layer and class.

    Args:
        records: scored episodes (``agents.app.bench.run_agent``), each with agent, index and bits.
        agent: the row to draw.
        labels: the split's labels, indexed by a record's ``index``.
        max_configurations: the most distinct configurations drawn as bars rather than a heatmap.
    """
    configs, shares = configuration_shares(records, agent, labels)
    if len(configs) <= max_configurations:
        fig, ax = plt.subplots(figsize=(9, 4))
        colours = plt.get_cmap("coolwarm")(np.linspace(0.1, 0.9, len(configs)))
        left = np.zeros(len(CLASSES))
        for k, config in enumerate(configs):
            ax.barh(CLASSES, 100 * shares[:, k], left=left, color=colours[k], label=_describe(config))
            for y, (x0, w) in enumerate(zip(left, 100 * shares[:, k])):
                if w >= 8:  # a share too thin for its number is still visible as a bar
                    ax.text(x0 + w / 2, y, f"{w:.0f}%", ha="center", va="center", fontsize=7)
            left += 100 * shares[:, k]
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel("share of the class's images (%)")
        ax.set_title(f"{agent}: one configuration per image; share of each class's images at each")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False)
        return fig
    m = bit_matrix(records, agent, labels)
    fig, ax = plt.subplots(figsize=(9, 4))
    im = ax.imshow(m, aspect="auto", cmap="viridis")
    ax.set_yticks(range(len(CLASSES)), CLASSES, fontsize=8)
    ax.set_xticks(range(m.shape[1]), [str(i) for i in range(m.shape[1])], fontsize=7)
    ax.set_xlabel("switchable layer")
    ax.set_title(f"{agent}: mean bit-width per layer and class")
    fig.colorbar(im, ax=ax, label="bits")
    return fig


_CURVE_COLOURS = ("tab:red", "tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:pink")


def curves_plot(curves: Sequence[dict], statics: Sequence[dict], path: str | Path, title: str = "") -> Path:
    """Each curve's points beside the static rows and their mixtures' upper hull, saved as a PNG at ``path``.

    Accuracy against mean cost (a fraction of all-8); the curves' cost range is shaded and the
    reference accuracy of their hypervolume dotted (:mod:`agents.app.curves`). A curve is drawn as
    the staircase its hypervolume integrates: each point holds until a more accurate one.

    Args:
        curves: ``name``, ``knob`` and ``score`` (:func:`agents.app.curves.score_curve`) of each curve.
        statics: the static rows: ``agent``, ``accuracy`` and ``cost``.
        path: the PNG to write.
        title: the axes' title.
    """
    path = Path(path)
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    rows = sorted(statics, key=lambda s: (s["cost"], -s["accuracy"]))
    hull = upper_hull([(i, s["cost"], s["accuracy"]) for i, s in enumerate(rows)])
    ax.plot([h[1] for h in hull], [100 * h[2] for h in hull], ls="--", color="tab:blue", lw=1, label="static mixtures")
    for fam, label in (("fixed", "fixed-b"), ("static", "static-b")):
        mine = [s for s in rows if family(s["agent"]) == fam]
        ax.plot([s["cost"] for s in mine], [100 * s["accuracy"] for s in mine], ls="", label=label, **FAMILY_STYLE[fam])
    shown = [(s["cost"], s["accuracy"]) for s in rows]
    if curves:
        low, high = curves[0]["score"]["range"]
        ref = curves[0]["score"]["reference"]
        ax.axvspan(low, high, color="grey", alpha=0.08, label="hypervolume's cost range")
        ax.axhline(100 * ref["accuracy"], color="grey", ls=":", lw=1, label=f"reference: {ref['row']}'s accuracy")
        staircase = np.maximum.accumulate([100 * s["accuracy"] for s in rows])
        ax.step(
            [s["cost"] for s in rows], staircase, where="post", color="black", lw=0.8, alpha=0.5, label="static front"
        )
        for colour, curve in zip(_CURVE_COLOURS * len(curves), curves):
            pts = sorted(curve["score"]["points"], key=lambda p: p["cost"])
            x, y = [p["cost"] for p in pts], [100 * p["accuracy"] for p in pts]
            best = np.maximum.accumulate(y)  # the staircase the hypervolume integrates
            ax.step([*x, high], [*best, best[-1]], where="post", color=colour, lw=1, alpha=0.7)
            ax.plot(
                x, y, "D", color=colour, mfc="none", mew=1.5, label=f"{curve['name']} ({curve['knob']}, K={len(pts)})"
            )
            shown += [(p["cost"], p["accuracy"]) for p in pts]
        pad = 0.25 * (high - low)
        ax.set_xlim(max(0.0, low - pad), high + pad)
        visible = [a for c, a in shown if low - pad <= c <= high + pad]
        ax.set_ylim(100 * min(visible) - 1, 100 * max(visible) + 1)
    ax.set_xlabel("mean cost per input (fraction of all-8)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title or "curves and the static front")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)
    _save(fig, path)
    return path
