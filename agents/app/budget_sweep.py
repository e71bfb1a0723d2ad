"""One budget-conditioned policy, swept across budgets: ``python -m agents.app.budget_sweep MODEL --budgets ...``.

A policy trained on a Budget id with a budget drawn per episode (``abn-gym train --algo maskable-ppo
--env ABN-ResNet20Quarter-Budget-v1 --budget 0.1,0.45``) reads the budget from its observation, so
one model serves every budget. This runs it at each budget of ``--budgets`` on a split and compares
every point with the best random mixture of two static configurations (fixed-b and static-b, run
without a budget on the same images) that spends the same mean BitOps: the paired gap, with a
bootstrap interval over images, as the leaderboard computes its ``gap to static mixtures``; and the
curve as the bench ranks ``PATH.zip@sweep`` (:mod:`agents.app.curves`): its hypervolume over all-2's
to all-4's cost, the static front's, the paired interval of the difference and the share of points
above the mixtures.

Writes ``sweep.json``, ``sweep.md`` and ``sweep.png`` (the policy's curve beside the static rows and
their mixtures' upper hull) into ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.app.curves import format_curves_markdown, score_curve
from agents.app.episodes import run_agent
from agents.app.selection import static_front
from agents.controllers.sb3_agent import SB3Agent
from supernets.data import SPLITS
from supernets.foundation.cliargs import arg, dataclass_from_args, dataclass_parser
from supernets.foundation.errors import UsageError
from supernets.foundation.files import atomic_write_json, atomic_write_text


def sweep(model: str | Path, budgets: list[float], split: str = "test", episodes: int | None = None) -> dict:
    """Run the model at every budget and each point's paired gap to the static mixtures.

    Args:
        model: a model saved by ``abn-gym train`` on a Budget id (its card names the env).
        budgets: BitOps budgets, as fractions of all-8.
        split: the split to run on ("test" for final figures; choose on "val").
        episodes: first images of the split (default: all).
    """
    if not budgets:
        raise UsageError("--budgets names no budget; give comma-separated fractions of all-8, e.g. 0.1,0.2,0.3")
    agent = SB3Agent.load(model)
    env_id = agent.env_id
    trained = dict(agent.env_kwargs or {})
    if trained.get("budget") is None:
        raise UsageError(f"{model} was not trained with a budget (its card's env_kwargs have none); nothing to sweep")
    keep = {k: trained[k] for k in ("decide_at", "cost_coef", "bit_choices") if trained.get(k) is not None}
    front = static_front(env_id, split, episodes, (("budget", None),))
    accuracy = front.correct.mean(axis=1)
    points: list[dict[str, Any]] = []
    correct = []
    for budget in budgets:
        records = run_agent(agent, env_id, split, episodes, env_overrides={**keep, "budget": budget}, progress=False)
        correct.append([r["correct"] for r in records])
        points.append(
            {
                "budget": budget,
                "bitops": float(np.mean([r["bitops"] for r in records])),
                "bitops_fraction": float(np.mean([r["bitops_fraction"] for r in records])),
                "max_bitops_fraction": float(np.max([r["bitops_fraction"] for r in records])),
                "decision_macs": float(np.mean([r["decision_macs"] for r in records])),
            }
        )
    all8 = records[0]["bitops"] / records[0]["bitops_fraction"]  # the all-8 BitOps every fraction is of
    costs = front.bitops / all8
    score = score_curve(
        np.array(correct, float), [p["bitops_fraction"] for p in points], front.correct, costs, front.names
    )
    for point, scored in zip(points, score.pop("points"), strict=True):
        point.update({k: scored[k] for k in ("accuracy", "mixture", "mixture_gap", "mixture_gap_ci")})
    statics = [
        {"agent": n, "accuracy": float(a), "bitops": float(b), "cost": float(c)}
        for n, a, b, c in zip(front.names, accuracy, front.bitops, costs, strict=True)
    ]
    return {
        "model": str(model),
        "env": env_id,
        "split": split,
        "episodes": len(front.correct[0]),
        "points": points,
        "static": statics,
        "curve": score,
    }


def format_sweep(result: dict) -> str:
    """Markdown: one row per budget."""
    lines = [
        f"`{result['model']}` on `{result['env']}`, {result['split']} split ({result['episodes']} images); gap: "
        "paired accuracy difference to the best random mixture of two static configurations (run without a "
        "budget) with the same mean BitOps, 95% bootstrap interval over images.",
        "",
        "| budget | accuracy % | GBitOps | mean / max BitOps fraction "
        "| gap to static mixtures, points (paired 95% CI) |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in result["points"]:
        gap = "-"
        if p["mixture_gap"] is not None:
            lo, hi = p["mixture_gap_ci"]
            gap = f"{100 * p['mixture_gap']:+.2f} ({100 * lo:+.2f} to {100 * hi:+.2f})" + (
                " **above**" if lo > 0 else ""
            )
        lines.append(
            f"| {p['budget']:.3f} | {100 * p['accuracy']:.2f} | {p['bitops'] / 1e9:.4f} | "
            f"{p['bitops_fraction']:.3f} / {p['max_bitops_fraction']:.3f} | {gap} |"
        )
    curve = {"name": f"`{result['model']}`", "knob": "budget", "k": len(result["points"]), "score": result["curve"]}
    return "\n".join(lines) + "\n\n" + format_curves_markdown([curve])


def sweep_plot(result: dict, path: str | Path) -> None:
    """The policy's curve beside the static rows and the upper hull of their mixtures (:func:`curves_plot`)."""
    # lazy: matplotlib costs about a second at import, and only the plot needs it
    from agents.app.plots import curves_plot

    score = {**result["curve"], "points": [{"cost": p["bitops_fraction"], **p} for p in result["points"]]}
    curve = {"name": "one budget-conditioned policy", "knob": "budget", "score": score}
    curves_plot([curve], result["static"], path, f"{result['env']}: budget sweep on {result['split']}")


@dataclass
class BudgetSweepArgs:
    """Arguments of ``python -m agents.app.budget_sweep``."""

    model: str = arg(help="model.zip trained on a Budget id with a budget range", positional=True)
    budgets: list[float] = arg(help="comma-separated budgets (fractions of all-8)")
    split: str = arg("test", "split", choices=SPLITS)
    episodes: int | None = arg(None, "first images of the split (default: all)")
    out: str = arg("results/budget-sweep", "output folder")


def build_parser() -> argparse.ArgumentParser:
    """The command line, generated from :class:`BudgetSweepArgs`."""
    return dataclass_parser(
        BudgetSweepArgs, prog="python -m agents.app.budget_sweep", description=(__doc__ or "").splitlines()[0]
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m agents.app.budget_sweep MODEL --budgets 0.1,0.2 --split test --out DIR``."""
    args = dataclass_from_args(BudgetSweepArgs, build_parser().parse_args(argv))
    try:
        result = sweep(args.model, args.budgets, args.split, args.episodes)
    except UsageError as exc:
        print(f"abn-gym: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "sweep.json", result)
    atomic_write_text(out / "sweep.md", format_sweep(result) + "\n")
    sweep_plot(result, out / "sweep.png")
    print(format_sweep(result))
    print(f"\nwrote {out}/sweep.json, sweep.md and sweep.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
