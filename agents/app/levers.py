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
import json
import shlex
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from abn_gym.registration import DEFAULT_ENV_ID, env_kwargs
from abn_gym.vector import ABNVectorEnv
from agents.app.bench import BenchArgs, bench
from agents.app.selection import read_selection
from agents.app.train import AgentTrainArgs, train_agent
from agents.app.train_escalation import EscalationArgs, train_escalation
from agents.controllers.registry import FIXED_AGENT_BITS
from agents.controllers.static_configs import DEFAULT_TARGETS
from supernets.foundation.cliargs import add_command, arg, dataclass_from_args
from supernets.foundation.errors import UsageError
from supernets.foundation.files import atomic_write_json, atomic_write_text


@dataclass(frozen=True)
class Lever:
    """One lever: a name, what it sets, and how to train it.

    Args:
        name: the table's row name.
        setting: what the lever is, in words.
        kind: "ppo" (``abn-gym train``) or "escalation" (``abn-gym train-escalation``).
        options: arguments of :class:`agents.app.train.AgentTrainArgs` (ppo) or
            :class:`agents.app.train_escalation.EscalationArgs` (escalation) the lever sets.
    """

    name: str
    setting: str
    kind: str
    options: dict = field(default_factory=dict)

    @property
    def decisions(self) -> int | None:
        """Decisions per episode of a PPO lever (None: every switchable layer)."""
        at = self.options.get("decide_at")
        return None if at is None else len(at.split(","))


PPO_IMAGES = 110_000
"""Training episodes (images) per PPO lever: 2 M steps at 18 decisions per image, fewer steps with decide_at."""
SELECTIONS = 10
"""Val evaluations per PPO run; the one with the largest gap to the static mixtures is kept."""
COARSE = "0,7,13"
"""Decision points of the decide_at levers: one decision per stage of ResNet-20 (layers 0-6, 7-12, 13-17)."""
GROUP = 8
ONCE = {"n_steps": 4, "batch_size": 256, "keep_best_every": 60_000, "checkpoint_every": 60_000}
"""Rollout and selection settings of the one-decision levers (session 7's runs): rollouts of 4 one-step
episodes per sub-env (512 steps), 2 minibatches, and a val evaluation every 60k steps whatever the budget."""
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
    Lever("ppo-norm", "PPO, `--normalize-obs` (VecNormalize, observations only)", "ppo", {"normalize_obs": True}),
    Lever(
        "ppo-norm-small",
        "PPO, `--normalize-obs --net-arch 16,16`: every layer, a network small enough for 2% decision MACs",
        "ppo",
        {"normalize_obs": True, "net_arch": "16,16"},
    ),
    Lever(
        "ppo-norm-decide",
        f"PPO, `--normalize-obs --decide-at {COARSE}` (3 decisions per image)",
        "ppo",
        {"normalize_obs": True, "decide_at": COARSE},
    ),
    Lever(
        "ppo-norm-group",
        f"PPO, `--normalize-obs --group-size {GROUP}` (group-relative reward)",
        "ppo",
        {"normalize_obs": True, "group_size": GROUP},
    ),
    Lever(
        "ppo-decide-group",
        f"PPO, `--decide-at {COARSE} --group-size {GROUP}`, raw observations",
        "ppo",
        {"decide_at": COARSE, "group_size": GROUP},
    ),
    Lever(
        "ppo-norm-decide-group",
        f"PPO, `--normalize-obs --decide-at {COARSE} --group-size {GROUP}`",
        "ppo",
        {"normalize_obs": True, "decide_at": COARSE, "group_size": GROUP},
    ),
    Lever(
        "ppo-norm-once-group",
        f"PPO, `--normalize-obs --decide-at 0 --group-size {GROUP}`: one decision per image, for every layer",
        "ppo",
        {"normalize_obs": True, "decide_at": "0", "group_size": GROUP},
    ),
    Lever(
        "ppo-norm-once",
        "PPO, `--normalize-obs --decide-at 0 --n-steps 4 --batch-size 256`: one decision per image, the id's reward",
        "ppo",
        {"normalize_obs": True, "decide_at": "0", **ONCE},
    ),
    Lever(
        "ppo-norm-once-baseline",
        "PPO, `--normalize-obs --decide-at 0 --reward baseline --n-steps 4 --batch-size 256`: one decision per "
        "image, minus the image's all-2 correctness",
        "ppo",
        {"normalize_obs": True, "decide_at": "0", "reward": "baseline", **ONCE},
    ),
    Lever(
        "ppo-norm-once-baseline-lin",
        "PPO, as ppo-norm-once-baseline with `--lr-schedule linear`: the learning rate falls to 0 at the budget's end",
        "ppo",
        {"normalize_obs": True, "decide_at": "0", "reward": "baseline", "lr_schedule": "linear", **ONCE},
    ),
    Lever(
        "ppo-norm-once-baseline-c125",
        "PPO, as ppo-norm-once-baseline-lin with `--cost-coef 0.125`: trained at a higher BitOps price (scored on the "
        "id's), a cheaper operating point",
        "ppo",
        {
            "normalize_obs": True,
            "decide_at": "0",
            "reward": "baseline",
            "lr_schedule": "linear",
            "cost_coef": 0.125,
            **ONCE,
        },
    ),
    Lever(
        "ppo-once-baseline",
        "PPO, `--decide-at 0 --reward baseline --n-steps 4 --batch-size 256`, raw observations",
        "ppo",
        {"decide_at": "0", "reward": "baseline", **ONCE},
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
"""Every lever measured by default. PPO levers share `abn-gym train`'s PPO settings (128 sub-envs, 36-step
rollouts of 18-decision episodes, minibatch 1152), a budget of PPO_IMAGES images, and keep their best policy
on val; a lever with fewer decisions per image keeps rollouts of 2 episodes and the minibatch at a quarter of
the rollout."""


@dataclass
class LeverArgs:
    """Arguments of ``abn-gym levers``."""

    env: str = arg(DEFAULT_ENV_ID, "environment id")
    out: str = arg("results/levers", "output folder; each env's table and runs go into <out>/<env>")
    levers: list[str] = arg([], f"comma-separated subset of {[lv.name for lv in LEVERS]} (default: all)")
    ppo_images: int = arg(PPO_IMAGES, "training images per PPO lever; steps = images x decisions per image")
    escalation_images: int = arg(20_000, "training images per escalation lever")
    episodes: int | None = arg(None, "val images to compare on (default: all 5000)")
    seeds: list[int] = arg([0], "comma-separated training seeds")
    train: bool = arg(
        True,
        "train nothing: bench and tabulate the runs that are finished (levers trained on different seeds, one table)",
        names=("--no-train",),
        action="store_false",
    )
    progress: bool = arg(True, "hide progress bars", names=("--no-progress",), action="store_false")


def ppo_train_args(lever: Lever, args: LeverArgs, seed: int, run: Path) -> AgentTrainArgs:
    """The `abn-gym train` arguments of one PPO lever run (steps from the image budget and the decisions)."""
    decisions = lever.decisions or 18
    n_steps = 2 * decisions  # two whole episodes per sub-env and rollout, as the 36-step default
    timesteps = args.ppo_images * decisions
    settings: dict = {
        "num_envs": 128,
        "n_steps": n_steps,
        "batch_size": 128 * n_steps // 4,
        "keep_best_every": max(timesteps // SELECTIONS, 1),
        "eval_episodes": 5000 if args.episodes is None else args.episodes,
        "checkpoint_every": max(timesteps // SELECTIONS, 1),
    }
    # A lever may set the rollout and selection settings too (its options win over the shared ones).
    settings.update(lever.options)
    return AgentTrainArgs(algo="ppo", env=args.env, timesteps=timesteps, seed=seed, out=str(run), **settings)


def train_command(args: AgentTrainArgs) -> str:
    """The `abn-gym train` command line that trains exactly ``args`` (every setting that differs from the default)."""
    default = AgentTrainArgs()
    parts = ["abn-gym train"]
    for f in fields(AgentTrainArgs):
        value = getattr(args, f.name)
        if f.name == "publish" or value == getattr(default, f.name):
            continue
        flag = "--" + f.name.replace("_", "-")
        parts.append(flag if value is True else f"{flag} {shlex.quote(str(value))}")
    return " ".join(parts)


def _run_dir(out: Path, lever: Lever, seed: int) -> Path:
    return out / "runs" / lever.name / f"seed-{seed}"


def _train(lever: Lever, args: LeverArgs, seed: int, run: Path) -> Path:
    if lever.kind == "escalation":
        done = run / "policy.pt"
        if not (run / "card.json").is_file():
            done = train_escalation(
                EscalationArgs(
                    env=args.env, out=str(run), seed=seed, train_images=args.escalation_images, **lever.options
                ),
                progress=args.progress,
            )
        return done
    train = ppo_train_args(lever, args, seed, run)
    if (run / "card.json").is_file():
        return run / "model.zip"
    return train_agent(train, command=train_command(train))


def late_gap(evaluations: list[dict], trained: int) -> float:
    """Mean mixture gap of the val evaluations in the last third of ``trained`` steps (NaN gaps left out).

    Keeping the best of many evaluations on the same val images favours a run; the late mean is the
    figure to compare seeds and recipes by.
    """
    gaps = [e["mixture_gap"] for e in evaluations if e["timesteps"] >= 2 * trained / 3]
    gaps = [g for g in gaps if np.isfinite(g)]
    return float(np.mean(gaps)) if gaps else float("nan")


def observations(lever: Lever) -> str:
    """How the lever's controller sees the observation: the table's normalisation column."""
    if lever.kind == "escalation":
        return "standardised (train-split statistics, in the model)"
    return "normalised (VecNormalize, frozen at evaluation)" if lever.options.get("normalize_obs") else "raw"


def _gap(value: float | None, ci: list, against: str | None = None, beats: bool = False) -> str:
    if value is None:
        return "-"
    text = f"{100 * value:+.2f} ({100 * ci[0]:+.2f} to {100 * ci[1]:+.2f})"
    return text + (f" vs {against}" if against else "") + (" **beats**" if beats else "")


def format_levers(rows: list[dict], runs: dict[str, tuple[Lever, int, Path]], env: str, network_macs: float) -> str:
    """Markdown: one row per (lever, seed), then a summary over seeds of each lever's gap to the static mixtures."""
    lines = [
        f"Levers on `{env}`, val split ({rows[0]['episodes']} images); gap: paired accuracy difference against the "
        "most accurate fixed-b or static-b row that spends no more BitOps, and against the best random "
        "mixture of two static rows with the same mean BitOps (95% CIs). PPO runs keep their best policy on val "
        "(the largest gap to the mixtures over the run's val evaluations), so their val figures favour them; "
        "`last` is the mixture gap of the run's final policy, which was not chosen on val, and `late` the mean "
        "gap of the evaluations in the last third of the run's steps: the less flattering figures.",
        "",
        "| lever | setting | observations | seed | val accuracy % | val GBitOps | decision MACs (% of network) "
        "| gap to static front, points (paired 95% CI) | gap to static mixtures, points (paired 95% CI) "
        "| kept at / trained steps (val evaluations) | last policy's gap to mixtures | late evaluations' mean gap |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    by_lever: dict[str, list[float]] = {}
    for r in rows:
        if r["agent"] not in runs:
            continue
        lever, seed, run = runs[r["agent"]]
        f = r["front"]
        kept, last, late = "-", "-", "-"
        selection = read_selection(run) if lever.kind == "ppo" else None
        if selection is not None:
            trained = json.loads((run / "card.json").read_text())["timesteps"]
            kept = f"{selection['best']} / {trained} ({len(selection['evaluations'])})"
            last = f"{100 * selection['evaluations'][-1]['mixture_gap']:+.2f}"
            late = f"{100 * late_gap(selection['evaluations'], trained):+.2f}"
        front = _gap(f["accuracy_gap"], f["accuracy_gap_ci"], f["against"])
        hull = _gap(f.get("hull_gap"), f.get("hull_gap_ci", [None, None]), beats=bool(f.get("beats_static_mixtures")))
        macs = f"{r['decision_macs'] / 1e3:.1f} k ({100 * r['decision_macs'] / network_macs:.2f}%)"
        lines.append(
            f"| {lever.name} | {lever.setting} | {observations(lever)} | {seed} | {100 * r['accuracy']:.2f} | "
            f"{r['bitops'] / 1e9:.4f} | "
            f"{macs} | {front} | {hull} | {kept} | {last} | {late} |"
        )
        if f.get("hull_gap") is not None:
            by_lever.setdefault(lever.name, []).append(100 * f["hull_gap"])
    lines += [
        "",
        "| lever | observations | seeds | gap to static mixtures, points: mean (min to max) | seeds above 0 |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    levers = {lv.name: lv for lv in LEVERS}
    for name, gaps in by_lever.items():
        lines.append(
            f"| {name} | {observations(levers[name])} | {len(gaps)} | "
            f"{np.mean(gaps):+.2f} ({min(gaps):+.2f} to {max(gaps):+.2f}) | "
            f"{sum(g > 0 for g in gaps)} |"
        )
    return "\n".join(lines)


def run_levers(args: LeverArgs) -> dict:
    """Train every lever on every seed (resumably), bench them on val beside the static front, write the table."""
    unknown = sorted(set(args.levers) - {lv.name for lv in LEVERS})
    if unknown:
        raise UsageError(f"unknown lever(s) {unknown}; choose from {[lv.name for lv in LEVERS]}")
    if not args.seeds:
        raise UsageError("--seeds: give at least one seed")
    if args.ppo_images < 1:
        raise UsageError(f"--ppo-images must be at least 1, got {args.ppo_images}")
    chosen = [lv for lv in LEVERS if not args.levers or lv.name in args.levers]
    out = Path(args.out) / args.env
    runs: dict[str, tuple[Lever, int, Path]] = {}
    for lever in chosen:
        for seed in args.seeds:
            print(f"lever {lever.name}, seed {seed}: {lever.setting}", file=sys.stderr, flush=True)
            run = _run_dir(out, lever, seed)
            if not args.train and not (run / "card.json").is_file():
                print("  not trained yet: left out (--no-train)", file=sys.stderr, flush=True)
                continue
            runs[str(_train(lever, args, seed, run))] = (lever, seed, run)
    if not runs:
        raise UsageError(f"no finished runs of {[lv.name for lv in chosen]} on seeds {args.seeds} under {out}")
    front = [f"fixed-{b}" for b in FIXED_AGENT_BITS] + [f"static-{b}" for b in DEFAULT_TARGETS]
    result = bench(
        BenchArgs(
            env=args.env,
            agents=front + list(runs),
            split="val",
            episodes=args.episodes,
            out=str(out / "bench"),
            progress=args.progress,
        )
    )
    network_macs = ABNVectorEnv(1, **env_kwargs(args.env)).engine.max_bitops / 64  # every layer at 8x8
    table = format_levers(result["rows"], runs, args.env, network_macs)
    names = {path: f"{lever.name}/seed-{seed}" for path, (lever, seed, _) in runs.items()}
    rows = [{**r, "agent": names.get(r["agent"], r["agent"])} for r in result["rows"]]
    atomic_write_json(
        out / "levers.json",
        {
            "env": args.env,
            "seeds": list(args.seeds),
            "ppo_images": args.ppo_images,
            "rows": rows,
            "levers": {lv.name: {"setting": lv.setting, "kind": lv.kind, "options": lv.options} for lv in chosen},
        },
    )
    atomic_write_text(out / "levers.md", table + "\n")
    return {"rows": rows, "markdown": table}


def add_levers_command(sub: argparse._SubParsersAction) -> None:
    """Register ``abn-gym levers``."""
    add_command(
        sub, "levers", LeverArgs, _cmd_levers, help="train each lever for learned controllers and compare them on val"
    )


def _cmd_levers(ns: argparse.Namespace) -> int:
    args = dataclass_from_args(LeverArgs, ns)
    result = run_levers(args)
    print(result["markdown"])
    print(f"\nwrote {Path(args.out) / args.env}/levers.md and levers.json")
    return 0
