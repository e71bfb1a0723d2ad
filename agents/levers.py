"""The levers for learned controllers, tried and measured: ``abn-gym levers --env <id>``.

Each lever is an option a user can turn on (an env reward, a training flag, a controller) and
is trained here with one fixed budget. Every trained controller then runs on the val split next
to the static front (fixed-b and static-b), and the table reports val accuracy, val BitOps and
the paired gap to the most accurate static configuration that spends no more. The test split
is never used: it is for the final leaderboards only.

Resumable: a finished training (its card) is skipped, an interrupted PPO run resumes from its
checkpoint, and the table is rewritten atomically at the end.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from agents.bench import BenchArgs, bench
from agents.escalation import EscalationArgs, train_escalation
from agents.registry import FIXED_BITS
from agents.static_search import DEFAULT_TARGETS
from agents.train import AgentTrainArgs, train_agent
from supernets.checkpoint import atomic_write_json, atomic_write_text


@dataclass(frozen=True)
class Lever:
    """One lever: a name, what it sets, and how to train it."""

    name: str
    setting: str
    kind: str  # "ppo" or "escalation"
    options: dict = field(default_factory=dict)


PPO_STEPS = 300_000
LEVERS: tuple[Lever, ...] = (
    Lever("ppo", "PPO, the id's reward (cost per step, +1 if correct)", "ppo"),
    Lever("ppo-logprob", "PPO, `reward='logprob'`: log-probability of the true class", "ppo", {"reward": "logprob"}),
    Lever(
        "ppo-baseline",
        "PPO, `reward='baseline'`: minus the image's correctness at all-2 (per-image baseline)",
        "ppo",
        {"reward": "baseline"},
    ),
    Lever(
        "ppo-agreement",
        "PPO, `reward='agreement'`: agree with the all-8 prediction (label-free)",
        "ppo",
        {"reward": "agreement"},
    ),
    Lever(
        "escalation-k0-h4",
        "escalation controller: decide at layer 0, 2 -> 4 bits",
        "escalation",
        {"decide_at": 0, "high": 4},
    ),
    Lever(
        "escalation-k0-h8",
        "escalation controller: decide at layer 0, 2 -> 8 bits",
        "escalation",
        {"decide_at": 0, "high": 8},
    ),
    Lever(
        "escalation-k3-h4",
        "escalation controller: decide at layer 3 (after three 2-bit layers), 2 -> 4 bits",
        "escalation",
        {"decide_at": 3, "high": 4},
    ),
)
"""Every lever measured by default (PPO levers share PPO_STEPS and `abn-gym train`'s PPO settings)."""


@dataclass
class LeverArgs:
    """Arguments of ``abn-gym levers``."""

    env: str = "ABN-ResNet-v0"
    out: str = "results/levers"
    levers: list[str] = field(default_factory=list)
    ppo_steps: int = PPO_STEPS
    escalation_images: int = 20_000
    episodes: int | None = None
    seed: int = 0
    progress: bool = True


def _train(lever: Lever, args: LeverArgs, run: Path) -> Path:
    if lever.kind == "escalation":
        done = run / "policy.pt"
        if not (run / "card.json").is_file():
            done = train_escalation(
                EscalationArgs(env=args.env, out=str(run), seed=args.seed, **lever.options), progress=args.progress
            )
        return done
    if (run / "card.json").is_file():
        return run / "model.zip"
    train = AgentTrainArgs(
        algo="ppo",
        env=args.env,
        timesteps=args.ppo_steps,
        seed=args.seed,
        out=str(run),
        num_envs=128,
        n_steps=36,
        batch_size=1152,
        eval_episodes=0,
        **lever.options,
    )
    return train_agent(train)


def format_levers(rows: list[dict], levers: dict[str, Lever], env: str) -> str:
    """Markdown: one row per lever (and the static front's best rows for orientation)."""
    lines = [
        f"Levers on `{env}`, val split ({rows[0]['episodes']} images); gap: paired accuracy difference against the "
        "most accurate fixed-b or static-b row that spends no more BitOps, and against the best random "
        "mixture of two static rows with the same mean BitOps (95% CIs).",
        "",
        "| lever | setting | val accuracy % | val GBitOps | gap to static front, points (paired 95% CI) "
        "| gap to static mixtures, points (paired 95% CI) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        name = r["agent"]
        lever = levers.get(name)
        if lever is None:
            continue
        f = r["front"]
        gap = (
            "-"
            if f["accuracy_gap"] is None
            else (
                f"{100 * f['accuracy_gap']:+.2f} ({100 * f['accuracy_gap_ci'][0]:+.2f} to "
                f"{100 * f['accuracy_gap_ci'][1]:+.2f}) vs {f['against']}"
                + (" **beats**" if f["beats_static_front"] else "")
            )
        )
        hull = (
            "-"
            if f.get("hull_gap") is None
            else (f"{100 * f['hull_gap']:+.2f} ({100 * f['hull_gap_ci'][0]:+.2f} to {100 * f['hull_gap_ci'][1]:+.2f})")
        )
        lines.append(
            f"| {name} | {lever.setting} | {100 * r['accuracy']:.2f} | {r['bitops'] / 1e9:.4f} | {gap} | {hull} |"
        )
    return "\n".join(lines)


def run_levers(args: LeverArgs) -> dict:
    """Train every lever (resumably), bench them on val beside the static front, write the table."""
    chosen = [lv for lv in LEVERS if not args.levers or lv.name in args.levers]
    unknown = sorted(set(args.levers) - {lv.name for lv in LEVERS})
    if unknown:
        raise ValueError(f"unknown lever(s) {unknown}; choose from {[lv.name for lv in LEVERS]}")
    out = Path(args.out) / args.env
    paths = {}
    for lever in chosen:
        print(f"lever {lever.name}: {lever.setting}", file=sys.stderr, flush=True)
        paths[lever.name] = _train(lever, args, out / "runs" / lever.name)
    front = [f"fixed-{b}" for b in FIXED_BITS] + [f"static-{b}" for b in DEFAULT_TARGETS]
    result = bench(
        BenchArgs(
            env=args.env,
            agents=front + [str(p) for p in paths.values()],
            split="val",
            episodes=args.episodes,
            out=str(out / "bench"),
            progress=args.progress,
        )
    )
    by_path = {str(p): name for name, p in paths.items()}
    rows = [{**r, "agent": by_path.get(r["agent"], r["agent"])} for r in result["rows"]]
    table = format_levers(rows, {lv.name: lv for lv in chosen}, args.env)
    atomic_write_json(
        out / "levers.json", {"env": args.env, "rows": rows, "levers": {lv.name: lv.setting for lv in chosen}}
    )
    atomic_write_text(out / "levers.md", table + "\n")
    return {"rows": rows, "markdown": table}


def add_levers_command(sub: argparse._SubParsersAction) -> None:
    """Register ``abn-gym levers``."""
    d = LeverArgs()
    p = sub.add_parser("levers", help="train each lever for learned controllers and compare them on val")
    p.add_argument("--env", default=d.env, help=f"environment id (default: {d.env})")
    p.add_argument("--out", default=d.out, help=f"output folder (default: {d.out}/<env>)")
    p.add_argument("--levers", default="", help=f"comma-separated subset of {[lv.name for lv in LEVERS]}")
    p.add_argument("--ppo-steps", type=int, default=d.ppo_steps, help=f"steps per PPO lever (default: {d.ppo_steps})")
    p.add_argument("--seed", type=int, default=d.seed, help="training seed (default: 0)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=_cmd_levers)


def _cmd_levers(ns: argparse.Namespace) -> int:
    args = LeverArgs(
        env=ns.env,
        out=ns.out,
        levers=[s for s in ns.levers.split(",") if s],
        ppo_steps=ns.ppo_steps,
        seed=ns.seed,
        progress=not ns.no_progress,
    )
    result = run_levers(args)
    print(result["markdown"])
    print(f"\nwrote {Path(args.out) / args.env}/levers.md and levers.json")
    return 0
