"""Val learning curves of the one-decision lever: each run's gap to the static mixtures at every evaluation.

PYTHONPATH=. python docs/levers/scripts/plot_selection_curves.py OUT.png RUN_DIR [RUN_DIR ...]
(each RUN_DIR holds best/selection.json, written by `abn-gym train --keep-best-every`).
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

out, runs = sys.argv[1], sys.argv[2:]
fig, (ax_gap, ax_ops) = plt.subplots(1, 2, figsize=(10, 3.6))
for run in runs:
    sel = json.loads((Path(run) / "best" / "selection.json").read_text())
    steps = [e["timesteps"] / 1e3 for e in sel["evaluations"]]
    label = "/".join(Path(run).parts[-2:])
    ax_gap.plot(steps, [100 * e["mixture_gap"] for e in sel["evaluations"]], marker="o", ms=3, label=label)
    ax_ops.plot(steps, [e["bitops"] / 1e9 for e in sel["evaluations"]], marker="o", ms=3, label=label)
ax_gap.axhline(0, color="grey", lw=0.8)
ax_gap.set(xlabel="training steps (k) = images", ylabel="gap to static mixtures, points (val)")
ax_ops.set(xlabel="training steps (k) = images", ylabel="GBitOps per image (val)")
# One legend under both panels, so that it covers no curve.
handles, labels = ax_gap.get_legend_handles_labels()
fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=3, frameon=False)
fig.tight_layout(rect=(0, 0.12, 1, 1))
fig.savefig(out, dpi=110)
