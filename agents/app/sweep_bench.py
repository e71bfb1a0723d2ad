"""The bench's curves: ``--agents NAME@sweep`` runs one agent at K operating points on the leaderboard's images.

``@sweep`` at the end of an ``--agents`` entry always means a curve (a model without a card,
``ALGO:PATH.zip@NAME``, cannot take the row name ``sweep``). What can be swept:

- ``escalation@sweep`` and ``PATH.pt@sweep``: an escalation controller over its BitOps price
  (:class:`agents.controllers.sweepables.EscalationSweep`);
- ``PATH.zip@sweep``: a model with a card, trained on a Budget id, over the env's budget
  (:class:`agents.controllers.sweepables.BudgetSweep`). Each point runs on the model's own env at
  that budget (in a worker, like every model file); a curve is scored on correctness and cost only,
  so it may sit on the leaderboard of any env with the same supernet and actions;
- ``module:Class@sweep``: your own :class:`agents.controllers.sweeps.SweepableAgent`, in the bench
  process: only with ``--isolation none``.

Each point's episodes are replayed on a fresh engine like every other row, the finished curves are
kept for a rerun of an interrupted bench (:mod:`agents.app.bench_resume`), and each curve is scored
against every static row by :func:`agents.app.curves.score_curve`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from abn_gym.config import make_config
from abn_gym.registration import env_kwargs
from agents.app.bench_resume import reusable, save_finished
from agents.app.clean import CleanPool, RowChecker
from agents.app.curves import default_range, format_curves_markdown, score_curve
from agents.app.episodes import run_agent
from agents.app.front import per_image
from agents.app.isolation import IsolatedAgent
from agents.controllers.base import AgentFailedError
from agents.controllers.conditioned import EnvelopeSweep
from agents.controllers.model_agents import (
    BenchContext,
    _env_args,
    check_model_card,
    check_model_env,
    env_spaces,
    load_model_agent,
    model_env,
)
from agents.controllers.registry import (
    _import_agent_module,
    describe_exception,
    load_escalation,
    shipped_policy,
    shipped_policy_path,
)
from agents.controllers.safe_load import parse_plain_model
from agents.controllers.sweepables import BudgetSweep, EscalationSweep
from agents.controllers.sweeps import SweepableAgent
from supernets.foundation.errors import UnknownNameError, UsageError
from supernets.foundation.files import sha256

SWEEP = "@sweep"
"""The end of an ``--agents`` entry benchmarked as a curve."""
KNOBS = ("budget", "price", "weight")


def split_sweeps(specs: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the entries that are rows, the ``NAME@sweep`` entries that are curves) of an ``--agents`` list."""
    return [s for s in specs if not s.endswith(SWEEP)], [s for s in specs if s.endswith(SWEEP)]


def parse_sweep_range(text: str) -> list[float]:
    """``--sweep-range LOW,HIGH``: two cost fractions of all-8, 0 <= LOW < HIGH."""
    try:
        low, high = (float(t) for t in text.split(","))
    except ValueError:
        low = high = float("nan")
    if not 0 <= low < high:
        raise UsageError(
            f"--sweep-range {text!r}: expected LOW,HIGH, two cost fractions of all-8 with 0 <= LOW < HIGH "
            "(e.g. 0.06,0.25)"
        )
    return [low, high]


def sweep_env(sweeps: Sequence[str], trust_card_env: bool) -> tuple[str, dict[str, Any]] | None:
    """The env of the first swept model's card, without its budget: the bench's env when nothing else names one."""
    for spec in sweeps:
        base = spec[: -len(SWEEP)]
        if base.endswith(".zip") and parse_plain_model(base) is None and Path(base).is_file():
            env_id, overrides = model_env(base, trust_card_env)
            return env_id, {**overrides, "budget": None} if env_kwargs(env_id).get("budget") is not None else overrides
    return None


def make_sweep(spec: str, ctx: BenchContext, isolation: str, probe: Any, stack: contextlib.ExitStack) -> Any:
    """The :class:`~agents.controllers.sweeps.SweepableAgent` an ``NAME@sweep`` entry names, checked.

    Args:
        spec: the ``--agents`` entry.
        ctx: the benchmarked env.
        isolation: ``--isolation``.
        probe: a vector env of the bench (the supernet's layers and bit-widths, for a worker).
        stack: where a worker is shut down.
    """
    base = spec[: -len(SWEEP)]
    if base == "escalation" or base.endswith(".pt"):
        path = shipped_policy("escalation", ctx.env_id) if base == "escalation" else Path(base)
        if base == "escalation" and not path.is_file():
            raise UnknownNameError(
                f"no escalation controller is shipped for {ctx.env_id}; train one with `abn-gym train-escalation` "
                "and give its policy.pt path (PATH.pt@sweep)"
            )
        if base != "escalation":
            check_model_env(base, ctx)
        return EscalationSweep(load_escalation(path, ctx), ctx.env_id, dict(ctx.env_overrides), base, source=str(path))
    if parse_plain_model(base) is not None:
        raise UsageError(
            f"agent {spec!r}: a model without a card cannot be swept (its env, and whether it reads a budget, are "
            "unknown); save it with `abn-gym train`, or give it a row name other than 'sweep'"
        )
    if base.endswith(".zip") or os.sep in base:
        return _budget_sweep(base, ctx, isolation, probe, stack)
    if ":" in base:
        if isolation != "none":
            raise UsageError(
                f"agent {spec!r}: a sweepable class runs in the bench process; pass --isolation none (only for code "
                "you trust), or sweep a model file (PATH.zip@sweep), which runs in a worker"
            )
        module, _, attr = base.partition(":")
        obj = getattr(_import_agent_module(module, spec), attr, None)
        try:
            obj = obj() if isinstance(obj, type) else obj
        except Exception as exc:
            raise AgentFailedError(f"agent {spec!r}: {attr}() raised {describe_exception(exc)}") from None
        if not isinstance(obj, SweepableAgent) or obj.sweep_parameter not in KNOBS:
            raise UsageError(
                f"agent {spec!r} is not a SweepableAgent (agents.controllers.sweeps): it needs `name`, "
                f"`sweep_parameter` (one of {', '.join(KNOBS)}), `sweep_values(k, low, high)` and `at(value)`"
            )
        return obj
    if base == "ppo-budget":  # the shipped budget-conditioned policy, checked against its card, in a worker
        shipped = shipped_policy_path("ppo-budget", ctx)
        return _budget_sweep(str(shipped), ctx, isolation, probe, stack, name="ppo-budget")
    if base == "envelope":  # the shipped Envelope policy: plain torch, built here (no code is loaded)
        return EnvelopeSweep(shipped_policy_path("envelope", ctx), "envelope")
    raise UsageError(
        f"agent {spec!r}: only escalation, ppo-budget, envelope, an escalation PATH.pt, a model PATH.zip trained on "
        "a Budget id and module:Class (a SweepableAgent) can be swept as NAME@sweep"
    )


def _budget_sweep(
    path: str, ctx: BenchContext, isolation: str, probe: Any, stack: contextlib.ExitStack, name: str | None = None
) -> BudgetSweep:
    """A model trained on a Budget id, on its own env (its card's), in a worker unless ``--isolation none``.

    Its card's val calibration and trained budget range choose the K budgets (:class:`BudgetSweep`).
    """
    env_id, overrides = model_env(path, ctx.trust_card_env, ctx.env_id)
    mine, bench = _env_args(env_id, overrides), _env_args(ctx.env_id, dict(ctx.env_overrides))
    if mine["budget"] is None:
        raise UsageError(
            f"{path} was not trained with a budget (its card's env {env_id} has none), so it has no knob to sweep; "
            "train it on a Budget id (e.g. ABN-ResNet20Quarter-Budget-v1 --budget 0.1,0.45)"
        )
    differ = [k for k in ("supernet", "bit_choices") if mine[k] != bench[k]]
    if differ:
        raise UsageError(
            f"{path} runs {', '.join(f'{k}={mine[k]!r}' for k in differ)}, the bench's env {ctx.env_id} "
            f"{', '.join(f'{k}={bench[k]!r}' for k in differ)}; a curve is ranked against the static rows of its "
            "own supernet and actions: give --env with the same supernet"
        )
    mctx = dataclasses.replace(ctx, env_id=env_id, env_overrides=tuple(sorted(overrides.items())))
    if isolation == "worker":
        trained = tuple(probe.engine.net.bit_choices)
        worker = IsolatedAgent(path, mctx, "model", env_spaces(mctx), probe.num_layers, trained)
        agent: Any = stack.enter_context(worker)
    else:
        agent = load_model_agent(path, mctx)
    points = {k: v for k, v in overrides.items() if k != "budget"}
    # Its decision layers too: with a budget's mask, repeating a decision is not the env's own decide_at.
    card = check_model_card(Path(path), mctx)[1]
    trained = card.get("env_kwargs") or {}
    if trained.get("decide_at") is not None:
        points["decide_at"] = trained["decide_at"]
    budget = trained.get("budget")
    span = (float(budget[0]), float(budget[1])) if isinstance(budget, (list, tuple)) else None
    # The points run on the model's env, not the bench's.
    sweep = BudgetSweep(agent, name or path, points, env_id, card.get("calibration"), span)
    sweep.source = path
    return sweep


def _fingerprint(spec: str, sweep: Any, k: int, low: float, high: float) -> str | None:
    """What a curve's episodes depend on besides the bench's settings (None for a user's class: never reused)."""
    if isinstance(sweep, EscalationSweep) and sweep.source is not None:
        key = sha256(sweep.source)
    elif isinstance(sweep, BudgetSweep):
        key = sha256(sweep.source or spec[: -len(SWEEP)])
    elif isinstance(sweep, EnvelopeSweep):
        key = sha256(sweep.path)
    else:
        return None
    return f"{spec}#{key}#k={k}#range={low!r},{high!r}"


def run_curves(
    sweeps: Sequence[tuple[str, Any]],
    args: Any,
    env: tuple[str, dict[str, Any]],
    episodes: int,
    static: tuple[Sequence[str], Sequence[dict], Sequence[float]],
    pool: CleanPool,
    resume: tuple[Path, dict, dict],
) -> list[dict]:
    """Run each curve at its K points, replay its episodes, and score it against the static rows.

    Args:
        sweeps: (``--agents`` entry, sweepable) per curve.
        args: the bench's arguments (split, seeds, batch size, ``sweep_points``, ``sweep_range``, progress).
        env: the bench's env id and argument overrides.
        episodes: the first images of the split every row ran on.
        static: the static rows' names, their episodes and their mean costs (fractions of all-8).
        pool: the bench's clean pool, where the replays run.
        resume: the run's partial folder, its settings and the interrupted run's finished entries.
    """
    names, records, costs = static
    static_correct = per_image(records, names)[0]
    low, high = args.sweep_range or default_range(names, costs)
    curves = []
    for spec, sweep in sweeps:
        k = int(args.sweep_points)
        fingerprint = _fingerprint(spec, sweep, k, low, high)
        entry = reusable(resume[2], fingerprint, spec)
        if entry is None:
            t0 = time.perf_counter()
            values = sweep.sweep_values(k, low, high)
            point_env = getattr(sweep, "env_id", env[0])
            base = env[1] if point_env == env[0] else {}
            mine: list[dict] = []
            for i, value in enumerate(values):
                agent, overrides = sweep.at(value)
                ran = run_agent(
                    agent,
                    point_env,
                    args.split,
                    episodes,
                    args.seeds[0],
                    {**base, **overrides},
                    args.batch_size,
                    args.progress,
                )
                _check(pool, point_env, {**base, **overrides}, args.split, records, f"{spec} at {value:.6g}", ran)
                mine += [{**r, "point": i, "value": float(value)} for r in ran]
            meta = {"knob": sweep.sweep_parameter, "values": [float(v) for v in values], "env": point_env}
            meta["wall_s"] = time.perf_counter() - t0
            entry = {"fingerprint": fingerprint, "name": spec, "meta": meta, "records": mine}
            save_finished(resume[0], resume[1], entry)
        meta, mine = entry["meta"], entry["records"]
        per_point = [[r for r in mine if r["point"] == i] for i in range(len(meta["values"]))]
        correct = np.array([[r["correct"] for r in sorted(p, key=lambda r: r["index"])] for p in per_point], float)
        point_costs = [float(np.mean([r.get("cost_fraction", r["bitops_fraction"]) for r in p])) for p in per_point]
        score = score_curve(correct, point_costs, static_correct, costs, names, (low, high))
        for p, value in zip(score["points"], meta["values"]):
            p["value"] = value
        curves.append({"name": spec, "k": len(meta["values"]), **meta, "score": score, "records": mine})
    return curves


def _check(
    pool: CleanPool, env_id: str, overrides: dict, split: str, clean: Sequence[dict], name: str, rows: list[dict]
) -> None:
    """Replay one point's episodes on a fresh engine (the static rows' known episodes are not rerun)."""
    checker = RowChecker(pool, make_config(**env_kwargs(env_id, **overrides)).kwargs(), split)
    checker.add_clean(clean)
    checker.check({name: rows})


def curves_markdown(curves: Sequence[dict]) -> str:
    """The "Curves" section of ``leaderboard.md`` (empty without curves)."""
    # A bold line rather than a heading: the docs include the file inside a container, where no section may start.
    return f"\n**Curves**: one agent at K operating points.\n\n{format_curves_markdown(curves)}\n" if curves else ""
