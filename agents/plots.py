"""Plots of a benchmark: the accuracy-BitOps Pareto view and where an agent spends its bits."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from supernets.data import CLASSES


def _save(fig, path: Path) -> None:
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=130, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)


def pareto_plot(table: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Accuracy against mean BitOps: static front (fixed and static) as lines, adaptive agents as points."""
    path = Path(path)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    base = table["agent"].str.replace(r" \[.*\]$", "", regex=True)
    fixed = table[base.str.startswith("fixed-")].sort_values("bitops")
    static = table[base.str.startswith("static-")].sort_values("bitops")
    if len(fixed):
        ax.plot(fixed["bitops"] / 1e9, 100 * fixed["accuracy"], "o:", color="grey", label="fixed-b")
        for _, r in fixed.iterrows():
            ax.annotate(
                r["agent"].split("-")[1],
                (r["bitops"] / 1e9, 100 * r["accuracy"]),
                fontsize=7,
                xytext=(3, -9),
                textcoords="offset points",
            )
    if len(static):
        ax.plot(static["bitops"] / 1e9, 100 * static["accuracy"], "s", color="tab:blue", label="static (val search)")
    front = static_front(table[base.str.startswith(("fixed-", "static-"))])
    if len(front):
        # The best static accuracy available at each BitOps spend: a step, since spending more never lowers it.
        x = np.append(front[:, 0], table["bitops"].max() * 1.05) / 1e9
        y = 100 * np.append(front[:, 1], front[-1, 1])
        ax.step(x, y, where="post", color="black", alpha=0.6, lw=1.2, label="static front")
    others = table[~base.str.startswith(("fixed-", "static-"))]
    markers = iter("D^v<>PX*ph")
    for _, r in others.iterrows():
        label = r["agent"]
        ax.errorbar(
            r["bitops"] / 1e9,
            100 * r["accuracy"],
            yerr=[[100 * (r["accuracy"] - r["accuracy_ci"][0])], [100 * (r["accuracy_ci"][1] - r["accuracy"])]],
            fmt=next(markers, "o"),
            label=label,
            capsize=3,
            color="tab:red" if r.get("uses_label") else None,
        )
    ax.set_xlabel("mean BitOps per input (G)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title or "accuracy vs BitOps")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    _save(fig, path)
    return path


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


def heatmap_plot(records: Sequence[dict], agent: str, labels: np.ndarray, path: str | Path) -> Path:
    """Heatmap of :func:`bit_matrix`: where an adaptive agent spends its precision."""
    path = Path(path)
    m = bit_matrix(records, agent, labels)
    fig, ax = plt.subplots(figsize=(9, 4))
    im = ax.imshow(m, aspect="auto", cmap="viridis")
    ax.set_yticks(range(len(CLASSES)), CLASSES, fontsize=8)
    ax.set_xticks(range(m.shape[1]), [str(i) for i in range(m.shape[1])], fontsize=7)
    ax.set_xlabel("switchable layer")
    ax.set_title(f"{agent}: mean bit-width per layer and class")
    fig.colorbar(im, ax=ax, label="bits")
    _save(fig, path)
    return path
