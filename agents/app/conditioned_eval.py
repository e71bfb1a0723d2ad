"""Score conditioned policies as curves against the static front: ``python -m agents.app.conditioned_eval``.

Each curve (``ppo-budget``, ``envelope``, ``escalation``, or a trained model's path) runs at K
knob values on the same images as every fixed-b and static-b row; :func:`agents.app.curves.score_curve`
gives its hypervolume over the cost range, the static front's, the paired bootstrap interval of the
difference, and each point's paired gap to the static mixtures. Writes ``curves.json`` and
``curves.md`` into ``--out``. Choose on val; run the test split once, for the final table.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from abn_gym.registration import env_kwargs
from abn_gym.vector import ABNVectorEnv
from agents.app.bench import front_names
from agents.app.curves import default_range, format_curves_markdown, score_curve
from agents.app.episodes import run_agent
from agents.app.static_search import check_source_checkout
from agents.app.train import publish_policy
from agents.app.train_morl import publish as publish_envelope
from agents.controllers.model_agents import BenchContext
from agents.controllers.registry import make_agent, make_sweepable
from agents.controllers.static_configs import POLICY_DIR
from supernets.data import SPLITS
from supernets.foundation.cliargs import arg, dataclass_from_args, dataclass_parser
from supernets.foundation.errors import ABNGymError, UsageError
from supernets.foundation.files import atomic_write_json, atomic_write_text


@dataclass
class ConditionedEvalArgs:
    """Arguments of ``python -m agents.app.conditioned_eval``."""

    curves: list[str] = arg(
        help="comma-separated curves: ppo-budget, envelope, escalation (shipped), or a budget model.zip / Envelope .pt",
        positional=True,
    )
    env: str = arg("ABN-ResNet20Quarter-v1", "environment id the curves and the static rows run on")
    split: str = arg("val", "split", choices=SPLITS)
    episodes: int | None = arg(None, "first images of the split (default: all)")
    sweep_points: int = arg(8, "K, the operating points of each curve")
    sweep_range: list[float] | None = arg(None, "LOW,HIGH cost fractions of all-8 (default: all-2's to all-4's)")
    values: list[float] | None = arg(None, "explicit knob values for every curve instead of the calibrated ones")
    out: str = arg("results/conditioned", "output folder: curves.json and curves.md")
    publish: bool = arg(
        False,
        "developer step: copy the one curve given (a run's model.zip or policy.pt) to agents/policies/ as "
        "ppo-budget-<env> or envelope-<env>; a budget policy's card gets this val run's points as its calibration",
    )


def run_curve(sweep: Any, values: list[float], env_id: str, split: str, episodes: int | None) -> dict[str, Any]:
    """Each knob value's per-image correctness and mean cost fraction (and BitOps, decision MACs)."""
    correct, costs, rows = [], [], []
    for value in values:
        agent, overrides = sweep.at(value)
        records = run_agent(agent, env_id, split, episodes, env_overrides=overrides, progress=False)
        correct.append([r["correct"] for r in records])
        costs.append(float(np.mean([r["bitops_fraction"] for r in records])))
        rows.append(
            {
                "value": float(value),
                "cost": costs[-1],
                "max_cost": float(np.max([r["bitops_fraction"] for r in records])),
                "accuracy": float(np.mean(correct[-1])),
                "decision_macs": float(np.mean([r["decision_macs"] for r in records])),
            }
        )
    return {"correct": np.asarray(correct, dtype=np.float64), "costs": costs, "rows": rows}


def dense_front(ctx: BenchContext, split: str, episodes: int | None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Every static row the leaderboard's verdicts use (:func:`agents.app.bench.front_names`): names, correctness
    per image (S, n) and mean cost fractions (S,)."""
    names = front_names(ctx, ["static-3"])
    correct, costs = [], []
    for name in names:
        records = run_agent(make_agent(name, ctx, progress=False), ctx.env_id, split, episodes, progress=False)
        correct.append([r["correct"] for r in records])
        costs.append(float(np.mean([r["bitops_fraction"] for r in records])))
    return names, np.asarray(correct, dtype=np.float64), np.asarray(costs)


def evaluate(args: ConditionedEvalArgs) -> dict[str, Any]:
    """Every curve of ``args`` scored against the static rows on the same images."""
    probe = ABNVectorEnv(1, **env_kwargs(args.env, split=args.split))
    ctx = BenchContext(args.env, probe.config.supernet, probe.bit_choices)
    sweeps = [(spec, make_sweepable(spec, ctx)) for spec in args.curves]  # refuse a bad name before any run
    names, static_correct, static_costs = dense_front(ctx, args.split, args.episodes)
    low, high = args.sweep_range or default_range(names, static_costs)
    curves = []
    for spec, sweep in sweeps:
        values = args.values or sweep.sweep_values(args.sweep_points, low, high)
        run = run_curve(sweep, values, args.env, args.split, args.episodes)
        score = score_curve(run["correct"], run["costs"], static_correct, static_costs, names, (low, high))
        for row, point in zip(run["rows"], score["points"], strict=True):
            point.update(value=row["value"], max_cost=row["max_cost"], decision_macs=row["decision_macs"])
        curves.append({"name": f"{sweep.name}@sweep", "spec": spec, "knob": sweep.sweep_parameter, "k": len(values)})
        curves[-1]["score"] = score
    statics = [
        {"agent": n, "cost": float(c), "accuracy": float(a)}
        for n, c, a in zip(names, static_costs, static_correct.mean(axis=1), strict=True)
    ]
    episodes = int(static_correct.shape[1])
    return {"env": args.env, "split": args.split, "episodes": episodes, "curves": curves, "static": statics}


def format_points(result: dict[str, Any]) -> str:
    """Markdown: every curve's points (knob value, cost, accuracy, gap to the static mixtures)."""
    lines = [
        "| curve | knob value | cost / all-8 (max) | accuracy % | gap to static mixtures, points (paired 95% CI) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for c in result["curves"]:
        for p in c["score"]["points"]:
            gap = "-"
            if p["mixture_gap"] is not None:
                lo, hi = p["mixture_gap_ci"]
                gap = f"{100 * p['mixture_gap']:+.2f} ({100 * lo:+.2f} to {100 * hi:+.2f})" + (
                    " **above**" if lo > 0 else ""
                )
            lines.append(
                f"| {c['name']} | {p['value']:.4g} | {p['cost']:.4f} ({p['max_cost']:.4f}) | "
                f"{100 * p['accuracy']:.2f} | {gap} |"
            )
    return "\n".join(lines)


def publish(result: dict[str, Any], env_id: str) -> Path:
    """Developer step: ship the one evaluated curve's policy with its card (see ``--publish``)."""
    if len(result["curves"]) != 1 or result["split"] != "val":
        raise UsageError("--publish takes exactly one curve, evaluated on the val split (the calibration's split)")
    curve = result["curves"][0]
    path = Path(curve["spec"])
    if path.suffix == ".zip":
        stem = f"ppo-budget-{env_id}"
        check_source_checkout(POLICY_DIR / f"{stem}.zip")
        target = publish_policy(path.parent, stem)
        card = json.loads(target.with_suffix(".json").read_text())
        card["calibration"] = [[p["value"], p["cost"], p["accuracy"]] for p in curve["score"]["points"]]
        card["calibration_split"] = {"split": "val", "episodes": result["episodes"]}
        atomic_write_json(target.with_suffix(".json"), card)
        return target
    if path.suffix == ".pt":
        return publish_envelope(path.parent, env_id)
    raise UsageError(f"--publish: {curve['spec']} is neither a budget model.zip nor an Envelope policy.pt")


def build_parser() -> argparse.ArgumentParser:
    """The command line, generated from :class:`ConditionedEvalArgs`."""
    return dataclass_parser(
        ConditionedEvalArgs, prog="python -m agents.app.conditioned_eval", description=(__doc__ or "").splitlines()[0]
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m agents.app.conditioned_eval ppo-budget,envelope,escalation --split val``."""
    args = dataclass_from_args(ConditionedEvalArgs, build_parser().parse_args(argv))
    try:
        if args.sweep_range is not None and len(args.sweep_range) != 2:
            raise UsageError(f"--sweep-range takes LOW,HIGH, e.g. 0.08,0.26; got {args.sweep_range}")
        result = evaluate(args)
    except ABNGymError as exc:
        print(f"abn-gym: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    header = f"`{result['env']}`, {result['split']} split, {result['episodes']} images.\n\n"
    text = header + format_curves_markdown(result["curves"]) + "\n\n" + format_points(result) + "\n"
    atomic_write_json(out / "curves.json", result)
    atomic_write_text(out / "curves.md", text)
    print(text + f"\nwrote {out}/curves.json and curves.md")
    if args.publish:
        try:
            print(f"published {publish(result, args.env)}")
        except ABNGymError as exc:
            print(f"abn-gym: error: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
