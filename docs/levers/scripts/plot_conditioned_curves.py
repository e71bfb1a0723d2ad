"""Plot the curves of ``python -m agents.app.conditioned_eval`` beside the static rows and their mixtures.

Usage: ``PYTHONPATH=. python docs/levers/scripts/plot_conditioned_curves.py CURVES.json OUT.png``
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from agents.app.front import static_hull_mixture


def main(source: str, target: str) -> None:
    with open(source) as f:
        result = json.load(f)
    statics = sorted(result["static"], key=lambda s: s["cost"])
    pts = [(i, s["cost"], s["accuracy"]) for i, s in enumerate(statics)]
    low, high = result["curves"][0]["score"]["range"]
    xs = np.linspace(statics[0]["cost"], high * 1.05, 300)
    hull = [sum(w * statics[i]["accuracy"] for i, w in static_hull_mixture(x, pts)) for x in xs]
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    ax.plot(xs, 100 * np.array(hull), color="black", lw=1.2, alpha=0.6, label="static mixtures (upper hull)")
    shown = [s for s in statics if s["cost"] <= high * 1.05]
    ax.plot(
        [s["cost"] for s in shown],
        [100 * s["accuracy"] for s in shown],
        "o",
        color="grey",
        ms=4,
        label="fixed-b and static-b",
    )
    for curve, style in zip(result["curves"], ("D-", "s-", "^-"), strict=False):
        p = sorted(curve["score"]["points"], key=lambda q: q["cost"])
        s = curve["score"]
        lo, hi = s["difference_ci"]
        label = f"{curve['name']}: HV {100 * s['difference']:+.2f} ({100 * lo:+.2f} to {100 * hi:+.2f}) vs front"
        ax.plot([q["cost"] for q in p], [100 * q["accuracy"] for q in p], style, ms=5, label=label)
    ax.axvspan(low, high, color="tab:blue", alpha=0.05)
    ax.set_xlim(low - 0.01, high * 1.05)
    ax.set_xlabel("mean BitOps per input, fraction of all-8")
    ax.set_ylabel(f"{result['split']} accuracy (%)")
    ax.set_title(f"{result['env']}: conditioned policies as curves ({result['split']}, {result['episodes']} images)")
    ax.legend(fontsize=7, loc="lower right")
    fig.savefig(target, dpi=130, bbox_inches="tight")


if __name__ == "__main__":
    main(*sys.argv[1:3])
