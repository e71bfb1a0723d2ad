"""`abn-gym bench`: every agent on the same inputs, one leaderboard, results that can be replayed."""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from abn_gym.registration import env_kwargs
from abn_gym.vector import ABNVectorEnv
from agents.base import EnvView, check_agent
from agents.registry import BenchContext, default_agent_names, make_agent, static_search_seconds
from agents.stats import interval, paired_bootstrap
from supernets.checkpoint import atomic_write_json, atomic_write_text
from supernets.errors import OutputNotWritableError, UsageError
from supernets.registry import read_card, supernet_name

BATCH = 256
COLUMNS = [
    "agent",
    "accuracy",
    "accuracy_ci",
    "bitops",
    "decision_macs",
    "bitops_fraction",
    "reward",
    "reward_ci",
    "episodes",
    "seeds",
    "wall_s",
    "paired",
    "front",
]
STATIC_PREFIXES = ("fixed-", "static-")
"""Rows that run one configuration for every input: the static front agents are judged against."""


@dataclass
class BenchArgs:
    """Arguments of ``abn-gym bench``."""

    env: str = "ABN-ResNet-v0"
    agents: list[str] = field(default_factory=list)
    split: str = "test"
    episodes: int | None = None
    seeds: list[int] = field(default_factory=lambda: [0])
    out: str = "results"
    batch_size: int = BATCH
    progress: bool = True
    reference: str | None = None
    """Row the paired differences are taken against: fixed-8 when it runs, else the first agent."""
    supernet: str | None = None
    """Supernet instead of the env's: a shipped name or a published card ``DIR/NAME.json``."""
    static_from: str | None = None
    """Folder holding a ``static-search --out`` result for the supernet (default: beside its card)."""


def _check_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise OutputNotWritableError(f"--out {out} is not writable ({exc.strerror}); choose another folder") from None


def run_agent(
    agent: Any,
    env_id: str,
    split: str,
    episodes: int | None,
    seed: int = 0,
    env_overrides: dict | None = None,
    batch_size: int = BATCH,
    progress: bool = True,
    indices: Sequence[int] | None = None,
) -> list[dict]:
    """Run ``agent`` on the first ``episodes`` images of ``split`` (all when None), in order.

    ``indices`` picks the images explicitly instead. Returns one record per episode: index,
    bits, BitOps, correctness, reward and decision MACs.
    """
    check_agent(agent)
    kwargs = env_kwargs(env_id, **(env_overrides or {}))
    kwargs.update(split=split, sampling="sequential")
    size = len(ABNVectorEnv(1, **kwargs).engine.split)
    if indices is None:
        total = size if episodes is None else min(int(episodes), size)
        order = np.arange(total)
    else:
        order = np.asarray(indices, dtype=np.int64).reshape(-1)
        total = len(order)
    records: list[dict] = []
    bar = tqdm(total=total, desc=agent.name, unit="ep", file=sys.stderr, disable=not progress, leave=False)
    uses_label = bool(getattr(agent, "uses_label", False))
    per_step = int(getattr(agent, "decision_macs_per_step", 0) or 0)
    per_episode = int(getattr(agent, "decision_macs_per_episode", 0) or 0)
    envs: dict[int, ABNVectorEnv] = {}
    for batch_no, start in enumerate(range(0, total, batch_size)):
        n = min(batch_size, total - start)
        env = envs.setdefault(n, ABNVectorEnv(n, **kwargs))
        obs, _ = env.reset(seed=seed, options={"index": order[start : start + n]})
        agent.reset(n, seed * 1_000_003 + batch_no)
        view = EnvView(env, allow_labels=uses_label)
        infos: dict[str, Any] = {"bit_choices": env.bit_choices}
        returns = np.zeros(n)
        while not env.engine.done:  # env.horizon steps: fewer than num_layers with decide_at
            infos.update(layer=env.engine.t, action_mask=env.action_masks(), view=view)
            actions = np.asarray(agent.act(obs, infos), dtype=np.int64).reshape(-1)
            if actions.shape != (n,):
                raise ValueError(f"agent {agent.name!r} returned {actions.shape[0]} actions for {n} episodes")
            obs, reward, _, _, info = env.step(actions)
            returns += reward
        lookahead = env.engine.lookahead_macs.copy()
        for r in range(n):
            records.append(
                {
                    "agent": agent.name,
                    "seed": int(seed),
                    "index": int(info["index"][r]),
                    "bits": [int(b) for b in info["episode_bits"][r]],
                    "bitops": float(info["bitops"][r]),
                    "bitops_fraction": float(info["bitops_fraction"][r]),
                    "correct": bool(info["correct"][r]),
                    "reward": float(returns[r]),
                    "decision_macs": int(lookahead[r] + per_step * env.horizon + per_episode),
                }
            )
        bar.update(n)
    bar.close()
    return records


def leaderboard(records: Sequence[dict], agents_meta: dict[str, dict], max_bitops: float) -> pd.DataFrame:
    """One row per agent: accuracy and reward with 95% CIs, mean BitOps, decision cost, wall time."""
    df = pd.DataFrame.from_records(records)
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
    for (a, xa, _), (b, xb, _) in itertools.pairwise(hull):
        if xa <= x <= xb:
            w = (xb - x) / (xb - xa)
            return [(a, w), (b, 1 - w)] if 0 < w < 1 else [(a if w >= 1 else b, 1.0)]
    last = hull[-1] if x >= hull[-1][1] else hull[0]
    return [(last[0], 1.0)]


def add_paired(table: pd.DataFrame, records: Sequence[dict], reference: str) -> pd.DataFrame:
    """Add the ``paired`` and ``front`` columns: per-image differences with a paired bootstrap over images.

    ``paired`` compares each row with the ``reference`` row. ``front`` compares it with the most
    accurate static row (fixed-b or static-b) whose mean BitOps are no higher than its own;
    ``beats_static_front`` is true when the whole 95% interval of that gap lies above zero. A row
    cheaper than every static row has no such comparison (its gap is null and the flag false).
    ``front`` also holds ``hull_gap``: the gap to the best *random mixture* of two static rows
    with the same mean BitOps (the static front's upper concave hull), a baseline any controller
    gets for free by flipping a coin per input; per image, the mixture scores the weighted mean of
    its two rows' correctness, so the gap is paired too.
    """
    names = list(table["agent"])
    if reference not in names:
        raise UsageError(
            f"--reference {reference!r} is not a row of this leaderboard; the rows are: {', '.join(names)}"
        )
    correct, reward = per_image(records, names)
    ref = names.index(reference)
    static = [i for i, n in enumerate(names) if n.startswith(STATIC_PREFIXES)]
    bitops = table["bitops"].to_numpy(float)
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
            }
        )
    table = table.copy()
    table["paired"] = paired
    table["front"] = front
    return table


def _points(value: float | None, ci: Sequence[float | None]) -> str:
    if value is None or ci[0] is None or not np.isfinite(value):
        return "-"
    return f"{100 * value:+.2f} ({100 * ci[0]:+.2f} to {100 * ci[1]:+.2f})"


def format_markdown(table: pd.DataFrame) -> str:
    """The leaderboard as a Markdown table (accuracy in %, BitOps in G, decision cost in M MACs).

    With paired statistics, two more columns: the accuracy difference against the reference
    row, and the gap to the static front, both in points with paired 95% intervals.
    """
    paired = "paired" in table.columns and table["paired"].notna().all()
    ref = table["paired"].iloc[0]["reference"] if paired and len(table) else ""
    head = "| agent | accuracy % (95% CI) | GBitOps | decision MMACs | BitOps / fixed-8 | "
    align = "| --- | ---: | ---: | ---: | ---: | "
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
        line = (
            f"| {r['agent']} | {100 * r['accuracy']:.2f} ({100 * r['accuracy_ci'][0]:.2f}-"
            f"{100 * r['accuracy_ci'][1]:.2f}) | {r['bitops'] / 1e9:.4f} | {r['decision_macs'] / 1e6:.2f} | "
            f"{r['bitops_fraction']:.3f} | "
        )
        if paired:
            p, f = r["paired"], r["front"]
            gap = _points(f["accuracy_gap"], f["accuracy_gap_ci"])
            if f["against"] is not None:
                gap += f" vs {f['against']}" + (" **beats**" if f["beats_static_front"] else "")
            hull = _points(f.get("hull_gap"), f.get("hull_gap_ci", [None, None]))
            line += f"{_points(p['accuracy_delta'], p['accuracy_delta_ci'])} | {gap} | {hull} | "
        line += (
            f"{r['reward']:.4f} ({r['reward_ci'][0]:.4f}-{r['reward_ci'][1]:.4f}) | "
            f"{r['episodes']} | {r['seeds']} | {r['wall_s']:.1f} |"
        )
        lines.append(line)
    labelled = [r["agent"] for _, r in table.iterrows() if r.get("uses_label")]
    if labelled:
        lines.append("")
        lines.append(f"{', '.join(labelled)}: uses the labels, an upper bound rather than a controller.")
    return "\n".join(lines)


def _results_doc(
    args: BenchArgs, kwargs: dict, supernet: str, records: list[dict], meta: dict, table: pd.DataFrame, episodes: int
) -> dict:
    return {
        "env": args.env,
        "env_kwargs": kwargs,
        "split": args.split,
        "episodes": episodes,
        "seeds": list(args.seeds),
        "supernet": supernet_name(supernet),
        "supernet_sha256": read_card(supernet)["sha256"],
        "agents": meta,
        "rows": json.loads(table.to_json(orient="records")),
        "records": records,
    }


def _default_agents(args: BenchArgs, probe: ABNVectorEnv) -> list[str]:
    """The env's default leaderboard, less what cannot run on the supernet benchmarked.

    Only the env's actions get a fixed-b row, and a policy shipped for the env is left out when
    --supernet replaces the env's own supernet (it was trained on that one).
    """
    from abn_gym.config import EnvConfig
    from agents.registry import SHIPPED_POLICIES

    own = env_kwargs(args.env).get("supernet", EnvConfig().supernet)
    names = [n for n in default_agent_names(args.env) if not n.startswith("fixed-") or int(n[6:]) in probe.bit_choices]
    if args.supernet is not None and args.supernet != own:
        names = [n for n in names if n not in SHIPPED_POLICIES]
    return names


def bench(args: BenchArgs) -> dict:
    """Run the benchmark; writes results.json, leaderboard.{csv,md} and plots into ``args.out``."""
    out = Path(args.out)
    _check_out(out)
    overrides = {} if args.supernet is None else {"supernet": args.supernet}
    probe = ABNVectorEnv(1, **env_kwargs(args.env, split=args.split, **overrides))
    size = len(probe.engine.split)
    if args.episodes is not None and not 1 <= args.episodes <= size:
        raise UsageError(f"--episodes {args.episodes}: the {args.split} split has {size} images; choose 1 to {size}")
    kwargs = probe.config.kwargs()  # every argument, defaults included: what validate replays
    supernet = probe.config.supernet
    ctx = BenchContext(args.env, supernet, probe.bit_choices, args.static_from)
    names = list(args.agents) or _default_agents(args, probe)
    agents = [make_agent(n, ctx, args.progress) for n in names]
    run_names = [a.name for a in agents]
    reference = args.reference or ("fixed-8" if "fixed-8" in run_names else run_names[0])
    if reference not in run_names:
        raise UsageError(
            f"--reference {reference!r} is not among the agents run; choose one of: {', '.join(run_names)}"
        )
    total = len(probe.engine.split) if args.episodes is None else min(args.episodes, len(probe.engine.split))
    records: list[dict] = []
    meta: dict[str, dict] = {}
    table = pd.DataFrame(columns=COLUMNS)
    for agent in tqdm(agents, desc="bench", unit="agent", file=sys.stderr, disable=not args.progress):
        # Agents without randomness give the same episodes for every seed: run them once.
        seeds = list(args.seeds) if getattr(agent, "stochastic", True) else list(args.seeds[:1])
        t0 = time.perf_counter()
        for seed in seeds:
            records += run_agent(agent, args.env, args.split, total, seed, overrides, args.batch_size, args.progress)
        meta[agent.name] = {
            "uses_label": bool(getattr(agent, "uses_label", False)),
            "decision_macs_per_step": int(getattr(agent, "decision_macs_per_step", 0) or 0),
            "wall_s": time.perf_counter() - t0 + static_search_seconds(ctx, agent.name, meta),
            "seeds_run": seeds,
        }
        if hasattr(agent, "config"):
            meta[agent.name]["config"] = list(agent.config)
        table = leaderboard(records, meta, probe.engine.max_bitops)
        if reference in meta:
            table = add_paired(table, records, reference)
        # Rewrite everything finished so far, atomically: an interruption keeps whole agents.
        atomic_write_json(out / "results.json", _results_doc(args, kwargs, supernet, records, meta, table, total))
    atomic_write_text(out / "leaderboard.csv", table.to_csv(index=False))
    atomic_write_text(out / "leaderboard.md", format_markdown(table) + "\n")
    from agents.plots import heatmap_plot, pareto_plot

    pareto_plot(table, out / "pareto.png", title=f"{args.env} on {args.split} ({total} images)")
    # The heatmap shows an adaptive agent: the learned one when present, else the first other.
    adaptive = [n for n in meta if n != "random" and not n.startswith(("fixed-", "static-"))]
    if adaptive:
        pick = next((n for n in ("escalation", "ppo") if n in adaptive), adaptive[0])
        safe = "".join(c if c.isalnum() or c in "-_.@" else "-" for c in pick)  # a model path names a row too
        heatmap_plot(records, pick, probe.engine.split.labels.numpy(), out / f"heatmap-{safe}.png")
    return {
        "env": args.env,
        "supernet": supernet_name(supernet),
        "split": args.split,
        "episodes": total,
        "rows": json.loads(table.to_json(orient="records")),
    }
