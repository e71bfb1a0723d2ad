"""One Markdown row per training run, from the files `abn-gym train --keep-best-every` writes.

PYTHONPATH=. python docs/levers/scripts/runs_table.py RUN_DIR [RUN_DIR ...]

Each RUN_DIR holds run.json (settings), best/selection.json (every val evaluation) and, once finished,
card.json. Settings are shown where they differ from `abn-gym train`'s defaults; a run without a card was
stopped, and its figures are those of its evaluations so far.
"""

import json
import sys
from dataclasses import asdict
from pathlib import Path

from agents.app.levers import late_gap
from agents.app.train_args import AgentTrainArgs

SHOWN_ELSEWHERE = {"algo", "env", "seed", "num_envs", "keep_best_every", "timesteps", "out"}
defaults = asdict(AgentTrainArgs())
print(
    "| run | settings (besides 128 sub-envs, a val evaluation on 5,000 images every 60k steps, or 120k at 2 "
    "decisions) | seed | steps trained / planned | kept at | kept: val acc % | kept: val GBitOps "
    "| kept: gap to mixtures | last policy's gap | late evaluations' mean gap |"
)
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for run in map(Path, sys.argv[1:]):
    settings = json.loads((run / "run.json").read_text())["settings"]
    planned = int(json.loads((run / "run.json").read_text())["command"].split("--timesteps ")[1].split()[0])
    shown = " ".join(
        f"`--{k.replace('_', '-')}`" if v is True else f"`--{k.replace('_', '-')} {v}`"
        for k, v in settings.items()
        if k not in SHOWN_ELSEWHERE and v != defaults.get(k)
    )
    sel = json.loads((run / "best" / "selection.json").read_text())
    evals = sel["evaluations"]
    kept = next(e for e in evals if e["timesteps"] == sel["best"])
    card = run / "card.json"
    trained = json.loads(card.read_text())["timesteps"] if card.is_file() else evals[-1]["timesteps"]
    status = f"{trained} / {planned}" + ("" if card.is_file() else " (stopped)")
    print(
        f"| {run.name} | {shown} | {settings['seed']} | {status} | {sel['best']} | {100 * kept['accuracy']:.2f} | "
        f"{kept['bitops'] / 1e9:.4f} | {100 * kept['mixture_gap']:+.2f} | {100 * evals[-1]['mixture_gap']:+.2f} | "
        f"{100 * late_gap(evals, trained):+.2f} |"
    )
