"""The zoo's report: per-task leaderboards (baselines and each algorithm, IQM over seeds), curves, summary.

Everything goes into ``--out``::

    curves.csv, curves-<env>.png  val return against env steps, mean and 95% interval over seeds
    leaderboard-<env>.{csv,md}    baselines and each algorithm's final policies (IQM over seeds)
    pareto-<env>.png              the leaderboard's accuracy against BitOps
    zoo.md, zoo-summary.md        everything above in one page; the learned rows in one table
    summary.json                  the arguments, runs and leaderboards
    baselines/<env>/              the baselines' scored episodes, cached by what they depend on
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abn_gym.registration import env_kwargs
from abn_gym.vector import ABNVectorEnv
from agents.app.bench import add_paired, format_markdown, leaderboard, run_agent
from agents.app.zoo.curves import curve_table, curves_plot
from agents.app.zoo.hyperparams import normalize_obs
from agents.app.zoo.plan import RunSpec, ZooArgs
from agents.app.zoo.run import pack_records, records_name, unpack_records
from agents.controllers.registry import BenchContext, make_agent
from agents.controllers.static_configs import load_shipped, shipped_path
from supernets.foundation.files import atomic_write_json, atomic_write_text
from supernets.registry import read_supernet_card


def _baseline_records(name: str, env_id: str, ctx: Any, split: str, episodes: int | None, cache: Path) -> list[dict]:
    """A baseline's scored episodes, cached in ``cache`` so a rerun does not recompute them."""
    path = cache / _fingerprint(env_id, ctx, name) / f"{name}-{records_name(split, episodes)}"
    if path.is_file():
        return unpack_records(json.loads(path.read_text()), name, 0)
    records = run_agent(make_agent(name, ctx, progress=False), env_id, split, episodes, seed=0, progress=False)
    atomic_write_json(path, pack_records(records))
    return records


def _fingerprint(env_id: str, ctx: Any, name: str) -> str:
    """What a cached baseline's episodes depend on: the env's arguments, the supernet and a static config.

    A cache made under another ``cost_coef``, checkpoint or static search is never reused.
    """
    key = {"env_kwargs": env_kwargs(env_id), "supernet_sha256": read_supernet_card(ctx.supernet)["sha256"]}
    static = shipped_path(ctx.supernet)
    if name.startswith("static-") and static.is_file():
        key["static"] = hashlib.sha256(static.read_bytes()).hexdigest()
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _static_shipped(ctx: Any) -> bool:
    return load_shipped(ctx.supernet, read_supernet_card(ctx.supernet)["sha256"], ctx.bit_choices) is not None


def env_report(env_id: str, results: list[dict], args: ZooArgs, out: Path) -> dict[str, Any]:
    """Leaderboard (baselines + each algorithm, IQM over seeds) and learning curves of one task.

    Args:
        env_id: the task.
        results: the runs' result.json documents, each with its ``run_dir``.
        args: the zoo's arguments.
        out: the report's folder.
    """
    # lazy: the plots module loads matplotlib, a few tenths of a second at import
    from agents.app.plots import pareto_plot

    probe = ABNVectorEnv(1, **env_kwargs(env_id, split=args.split))
    ctx = BenchContext(env_id, probe.config.supernet, probe.bit_choices)
    cache = out / "baselines" / env_id
    names = [n for n in args.baselines if not n.startswith("static-") or _static_shipped(ctx)]
    skipped = sorted(set(args.baselines) - set(names))
    records: list[dict] = []
    meta: dict[str, dict] = {}
    for name in names:
        t0 = time.perf_counter()
        records += _baseline_records(name, env_id, ctx, args.split, args.episodes, cache)
        meta[name] = {"uses_label": name == "oracle", "wall_s": time.perf_counter() - t0}
    runs = [r for r in results if r["env"] == env_id]
    normalised: dict[str, bool | None] = dict.fromkeys(names)  # a baseline has no observations to normalise
    for agent in sorted({r["agent"] for r in runs}):
        mine = sorted((r for r in runs if r["agent"] == agent), key=lambda r: r["seed"])
        for r in mine:
            packed = json.loads((Path(r["run_dir"]) / records_name(args.split, args.episodes)).read_text())
            records += unpack_records(packed, agent, r["seed"])
        meta[agent] = {
            "uses_label": False,
            "wall_s": float(np.mean([r["train_wall_s"] for r in mine])),
            "seeds_run": [r["seed"] for r in mine],
        }
        normalised[agent] = mine[0]["normalize_obs"]  # one row, one zoo.yml entry: its seeds agree
    table = leaderboard(records, meta, probe.engine.max_bitops)
    table["normalize_obs"] = [normalised[a] for a in table["agent"]]
    if args.reference in meta:
        table = add_paired(table, records, args.reference)
    stem = f"leaderboard-{env_id}"
    atomic_write_text(out / f"{stem}.csv", table.to_csv(index=False))
    markdown = format_markdown(table)
    atomic_write_text(out / f"{stem}.md", markdown + "\n")
    pareto_plot(table, out / f"pareto-{env_id}.png", title=f"{env_id}: zoo on {args.split}")
    # The best fixed bit-width on val, drawn across the learning curves as the bar to clear.
    refs = {}
    fixed = [f"fixed-{b}" for b in probe.bit_choices]
    vals = {n: _val_score(n, env_id, ctx, args.eval_episodes, cache) for n in fixed}
    best = max(vals, key=vals.get)
    refs[f"{best} (best fixed on val)"] = vals[best]
    curves_plot(runs, env_id, out / f"curves-{env_id}.png", refs)
    return {
        "env": env_id,
        "rows": json.loads(pd.DataFrame(table).to_json(orient="records")),
        "markdown": markdown,
        "skipped_baselines": skipped,
        "val_references": vals,
    }


def _val_score(name: str, env_id: str, ctx: Any, episodes: int, cache: Path) -> float:
    recs = _baseline_records(name, env_id, ctx, "val", episodes, cache)
    return float(np.mean([r["reward"] for r in recs]))


def compact_markdown(reports: list[dict], results: list[dict], args: ZooArgs) -> str:
    """One row per (task, algorithm): the learned rows of every leaderboard, beside the best baseline's reward.

    Args:
        reports: each task's :func:`env_report`.
        results: the runs' result.json documents.
        args: the zoo's arguments.
    """
    lines = [
        f"| task | algorithm | obs normalised | steps | {args.split} accuracy % (IQM, 95% CI) | GBitOps | gap to "
        "static front, points (paired 95% CI) | return (IQM, 95% CI) | best baseline's return | train s / run |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for rep in reports:
        rows = {row["agent"]: row for row in rep["rows"]}
        base = [rows[n] for n in args.baselines if n in rows and not rows[n]["uses_label"]]
        best = max(base, key=lambda r: r["reward"])
        for agent in sorted({r["agent"] for r in results if r["env"] == rep["env"]}):
            row = rows[agent]
            steps = int(np.mean([r["timesteps"] for r in results if r["env"] == rep["env"] and r["agent"] == agent]))
            front = row.get("front") or {}
            gap = "-"
            if front.get("accuracy_gap") is not None:
                lo, hi = front["accuracy_gap_ci"]
                gap = f"{100 * front['accuracy_gap']:+.2f} ({100 * lo:+.2f} to {100 * hi:+.2f}) vs {front['against']}"
            lines.append(
                f"| {rep['env']} | {agent} | {'yes' if row['normalize_obs'] else 'no'} | {steps} | "
                f"{100 * row['accuracy']:.2f} ({100 * row['accuracy_ci'][0]:.2f}-"
                f"{100 * row['accuracy_ci'][1]:.2f}) | {row['bitops'] / 1e9:.3f} | {gap} | {row['reward']:.4f} "
                f"({row['reward_ci'][0]:.4f}-{row['reward_ci'][1]:.4f}) | {best['reward']:.4f} ({best['agent']}) | "
                f"{row['wall_s']:.0f} |"
            )
    return "\n".join(lines)


def write_report(args: ZooArgs, specs: list[RunSpec], out: Path, wall_s: float) -> dict[str, Any]:
    """curves.csv, per-task leaderboards and curves, zoo.md and summary.json.

    Args:
        args: the zoo's arguments.
        specs: every run of the table (each finished).
        out: the report's folder.
        wall_s: the zoo's wall time, recorded in summary.json.
    """
    results = []
    for spec in specs:
        result = json.loads((Path(spec.run_dir) / "result.json").read_text())
        results.append(
            {
                **result,
                "agent": spec.row,
                "normalize_obs": normalize_obs(result["hyperparams"]),
                "run_dir": spec.run_dir,
                "eval_episodes": spec.eval_episodes,
            }
        )
    atomic_write_text(out / "curves.csv", pd.DataFrame(curve_table(results)).to_csv(index=False))
    envs = list(dict.fromkeys(r["env"] for r in results))
    reports = [env_report(env_id, results, args, out) for env_id in envs]
    compact = compact_markdown(reports, results, args)
    atomic_write_text(out / "zoo-summary.md", compact + "\n")
    lines = [
        "# abn-gym zoo",
        "",
        compact,
        "",
        f"`{args.command or 'abn-gym zoo'}`: {len(results)} runs; leaderboards on the {args.split} split "
        f"({'all' if args.episodes is None else args.episodes} images), learned rows are rliable's IQM over seeds "
        f"with a 95% bootstrap interval over seeds; learning curves on the first {args.eval_episodes} val images. "
        "`wall s` is the mean training time per run for learned rows, the scoring time for baselines. "
        "`obs normalised`: the run's observations went through VecNormalize (the section's `normalize` key), "
        "its statistics frozen at evaluation.",
        "",
    ]
    for rep in reports:
        env_id = rep["env"]
        lines += [f"## {env_id}", "", rep["markdown"], "", f"![learning curves](curves-{env_id}.png)", ""]
        if rep["skipped_baselines"]:
            lines += [
                f"Not run: {', '.join(rep['skipped_baselines'])} (no shipped static search for this supernet).",
                "",
            ]
    atomic_write_text(out / "zoo.md", "\n".join(lines))
    summary = {
        "command": args.command,
        "args": {k: v for k, v in asdict(args).items() if k != "command"},
        "wall_s": wall_s,
        "runs": [{k: v for k, v in r.items() if k not in ("run_dir",)} for r in results],
        "leaderboards": [{k: v for k, v in rep.items() if k != "markdown"} for rep in reports],
    }
    atomic_write_json(out / "summary.json", summary)
    return summary
