"""`abn-gym bench`: every agent on the same inputs, one leaderboard, results that can be replayed.

The verdicts (the gap to the static front and to the static mixtures) are computed in
:mod:`agents.app.front` against *every* fixed-b of the env's actions and every shipped static-b,
whatever ``--agents`` lists: rows not asked for run too (they cost seconds) and are left out of
the table, and ``results.json``'s ``front`` says which rows the front held.

The bench trusts no agent: a user's agent and a model file run in a worker process of their own
(:mod:`agents.app.isolation`, ``--isolation``), the static rows are computed in spawned processes
no agent has touched, and every agent row is replayed on a fresh engine before anything is
written (:mod:`agents.app.clean`).

The output files are written as one set: the run works in ``<out>/.bench-partial`` and moves the
finished set into ``<out>`` at the end, so an interrupted run leaves the previous set untouched;
rerunning the same command reuses the agents the interrupted run finished
(:mod:`agents.app.bench_resume`).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from abn_gym.config import EnvConfig
from abn_gym.registration import DEFAULT_ENV_ID, env_kwargs
from abn_gym.vector import ABNVectorEnv
from agents.app.bench_resume import (
    PARTIAL,
    agent_fingerprint,
    commit_set,
    fingerprint_sources,
    forget_finished,
    load_finished,
    reusable,
    save_finished,
)
from agents.app.bench_specs import check_specs, parse_agents, resolve_env
from agents.app.clean import CleanPool, RowChecker, RowNotReproducedError, clean_agent, outcome, static_row
from agents.app.costs import CostColumns
from agents.app.episodes import BATCH, is_builtin, run_agent
from agents.app.front import (
    STATIC_PREFIXES,
    add_paired,
    check_row_names,
    format_compact_markdown,
    front_summary,
    leaderboard,
    per_image,
    static_hull_mixture,
)
from agents.app.isolation import ISOLATION, IsolatedAgent, isolated_kind
from agents.app.leaderboard_md import format_markdown
from agents.app.sweep_bench import curves_markdown, make_sweep, parse_sweep_range, run_curves, split_sweeps, sweep_env
from agents.controllers.model_agents import is_model_path
from agents.controllers.registry import (
    SHIPPED_POLICIES,
    BenchContext,
    default_agent_names,
    default_static_rows,
    make_agent,
    static_configs,
    static_search_seconds,
)
from agents.controllers.static_configs import find_result, front_static_rows
from agents.controllers.sweeps import DEFAULT_SWEEP_POINTS
from supernets.data import SPLITS, check_count
from supernets.foundation.cliargs import arg, positive_int
from supernets.foundation.devices import check_device
from supernets.foundation.errors import UsageError
from supernets.foundation.files import atomic_write_json, atomic_write_text, output_lock, writing
from supernets.registry import read_supernet_card, supernet_name

__all__ = [
    "STATIC_PREFIXES",
    "BenchArgs",
    "add_paired",
    "bench",
    "format_markdown",
    "leaderboard",
    "per_image",
    "resolve_env",
    "run_agent",
    "static_hull_mixture",
]


@dataclass
class BenchArgs:
    """Arguments of ``abn-gym bench``."""

    env: str | None = arg(
        None,
        f"environment id (default: the env in the listed models' cards, else {DEFAULT_ENV_ID}); a model whose card "
        "names another env is refused",
    )
    agents: list[str] = arg(
        [],
        "comma-separated agents: built-in names (random, fixed-<b>, static-<b>, greedy, greedy@<tau>, oracle, ppo), "
        "a trained model's path (runs/ppo/model.zip, algorithm read from its card.json), or module:Class (found in "
        "the current folder too); NAME@sweep: a curve beside the table (escalation@sweep, PATH.zip@sweep). Default "
        "table (also when only curves are listed): all baselines + ppo",
        parse=parse_agents,
    )
    split: str = arg("test", "data split", choices=SPLITS)
    episodes: int | None = arg(None, "first N images of the split (default: all)", type=positive_int)
    seeds: list[int] = arg([0], "comma-separated seeds")
    out: str = arg("results", "output directory (default: results/)")
    batch_size: int = arg(BATCH, "episodes computed together", type=positive_int)
    progress: bool = arg(
        True,
        "hide progress (bars on a terminal; otherwise one line per agent run)",
        names=("--no-progress",),
        action="store_false",
    )
    reference: str | None = arg(
        None, "row the paired accuracy/reward differences are taken against (default: fixed-8, or the first agent)"
    )
    supernet: str | None = arg(None, "supernet instead of the env's: a shipped name or a card DIR/NAME.json")
    cost_model: str | None = arg(
        None, "cost model instead of the env's: bitops, bitfusion, or a cost table's path (.csv or .json)"
    )
    static_from: str | None = arg(
        None, "folder with a `static-search --out` result for the supernet (default: beside its card, else searched)"
    )
    isolation: str = arg(
        "worker",
        "where user agents (module:Class) and model files run: worker (a spawned process of their own, which never "
        "holds the env, labels or supernet) or none (in this process: only for code you trust)",
        choices=ISOLATION,
    )
    jobs: int = arg(
        2, "processes (one torch thread each) computing the static rows and the replay check", type=positive_int
    )
    trust_pickle: bool = arg(False, "load model zips through SB3, running code pickled in them (trusted files only)")
    trust_card_env: bool = arg(False, "let a model card's module:ID env import its module (trusted cards only)")
    sweep_points: int = arg(DEFAULT_SWEEP_POINTS, "operating points K of each NAME@sweep curve", type=positive_int)
    sweep_range: list[float] | None = arg(
        None,
        "LOW,HIGH: the curves' cost range in fractions of all-8 (default: all-2's to all-4's)",
        parse=parse_sweep_range,
    )
    device: str = arg(
        "cpu",
        "torch device of the env's supernet: cpu or cuda (cuda:<n>), here and in the --jobs processes; the agents' "
        "own networks (ppo, model files, escalation, module:Class in its isolation worker) and a static search the "
        "bench runs itself stay on cpu",
    )


def _results_doc(
    env_id: str,
    args: BenchArgs,
    kwargs: dict,
    supernet: str,
    records: list[dict],
    meta: dict,
    table: pd.DataFrame,
    front: list[dict],
    episodes: int,
) -> dict:
    return {
        "env": env_id,
        "env_kwargs": kwargs,
        "split": args.split,
        "episodes": episodes,
        "seeds": list(args.seeds),
        "supernet": supernet_name(supernet),
        "supernet_sha256": read_supernet_card(supernet)["sha256"],
        "isolation": args.isolation,
        "agents": meta,
        "rows": json.loads(table.to_json(orient="records")),
        "front": front,
        "records": records,
    }


def _default_agents(
    env_id: str, supernet: str | None, probe: ABNVectorEnv, ctx: BenchContext, progress: bool
) -> list[str]:
    """The env's default leaderboard, less what cannot run on the supernet benchmarked.

    Only the env's actions get a fixed-b row, and a policy shipped for the env is left out when
    --supernet or --cost-model replaces the env's own (it was trained on that one, and sees its costs).
    A static-b row the static search found none for (its ``unmet``) is left out too.
    """
    own = env_kwargs(env_id).get("supernet", EnvConfig().supernet)
    own_cost = env_kwargs(env_id).get("cost_model", EnvConfig().cost_model)
    names = [n for n in default_agent_names(env_id) if not n.startswith("fixed-") or int(n[6:]) in probe.bit_choices]
    if (supernet is not None and supernet != own) or probe.config.cost_model != own_cost:
        names = [n for n in names if n not in SHIPPED_POLICIES]
    found = set(default_static_rows(ctx, progress))
    return [n for n in names if not n.startswith("static-") or n in found]


def front_names(ctx: BenchContext, specs: Sequence[str]) -> list[str]:
    """Every static row the front is built from: fixed-b of each action, and static-b when available.

    The static-b rows are a saved search result for this supernet and action set (shipped, beside
    its card, or in --static-from), each ``FRONT_TARGETS`` one it holds (run, listed only if asked
    for); without one they join only when a static-b is listed (its search then runs anyway).
    """
    names = [f"fixed-{b}" for b in ctx.bit_choices]
    sha = read_supernet_card(ctx.supernet)["sha256"]
    shipped = find_result(ctx.supernet, sha, ctx.bit_choices, ctx.static_from, ctx.cost_model)
    if shipped is None and any(s.startswith("static-") for s in specs):
        shipped = static_configs(ctx)  # the search a listed static-b ran (cached): the rows it found
    if shipped is not None:
        names += front_static_rows(shipped)
    return names


def _make(spec: str, ctx: BenchContext, args: BenchArgs, probe: ABNVectorEnv, stack: contextlib.ExitStack) -> Any:
    """The agent ``spec`` names: in a worker of its own when ``--isolation worker`` says so, else here."""
    kind = isolated_kind(spec) if args.isolation == "worker" else None
    if kind is None:
        return make_agent(spec, ctx, args.progress)
    spaces = (probe.single_observation_space, probe.single_action_space)
    agent = IsolatedAgent(spec, ctx, kind, spaces, probe.num_layers, tuple(probe.engine.net.bit_choices))
    return stack.enter_context(agent)


def _decision_cost(agent: Any, measured_macs: int) -> str:
    """``measured`` when the bench established the cost (built-ins, model layers, counted FLOPs), else ``declared``."""
    if (is_builtin(agent) or getattr(agent, "builtin_cost", False)) or measured_macs > 0:
        return "measured"
    return "declared"


def bench(args: BenchArgs) -> dict:
    """Run the benchmark; writes results.json, leaderboard.{csv,md} and plots into ``args.out`` as one set.

    One bench per ``--out`` at a time: a second is refused while this one runs (:func:`output_lock`)."""
    check_device(args.device)  # before the lock creates --out
    with output_lock(args.out), contextlib.ExitStack() as stack:  # workers and the pool shut down on any exit
        return _bench(args, stack)


def _bench(args: BenchArgs, stack: contextlib.ExitStack) -> dict:
    out = Path(args.out)
    check_specs(args.agents)
    trust = {"trust_pickle": args.trust_pickle, "trust_card_env": args.trust_card_env}  # recorded in results.json
    plain, sweeps = split_sweeps(args.agents)  # NAME@sweep: curves (agents.app.sweep_bench)
    args, alone = replace(args, agents=plain), args.env is None and not any(map(is_model_path, plain))
    found = sweep_env(sweeps, args.trust_card_env) if alone else None
    env_id, overrides = found or resolve_env(args.env, plain, args.trust_card_env)
    if args.supernet is not None:
        overrides = {**overrides, "supernet": args.supernet}
    if args.cost_model is not None:
        overrides = {**overrides, "cost_model": args.cost_model}
    overrides = {**overrides, "device": args.device}
    probe = ABNVectorEnv(1, **env_kwargs(env_id, **overrides, split=args.split))
    cost = CostColumns(probe.engine.costs.describe(), probe.engine.cost_all8)
    size = len(probe.engine.split)
    check_count(args.episodes, args.split, size, "--episodes")
    kwargs = probe.config.kwargs()  # every argument, defaults included: what validate replays
    supernet = probe.config.supernet
    # Bars only on a terminal: sent to a file or a pipe, they become dozens of lines per agent.
    say = args.progress and not sys.stderr.isatty()
    args = replace(args, progress=args.progress and not say)
    ctx = BenchContext(
        env_id,
        supernet,
        probe.bit_choices,
        tuple(sorted(overrides.items())),
        args.static_from,
        **trust,
        cost_model=probe.config.cost_model,
    )
    # The default table also when only curves are listed.
    specs = list(args.agents) or _default_agents(env_id, args.supernet, probe, ctx, args.progress)
    agents = [_make(n, ctx, args, probe, stack) for n in specs]
    curved = [(s, make_sweep(s, ctx, args.isolation, probe, stack)) for s in sweeps]
    check_row_names([(s, a.name, ":" in s and not is_model_path(s)) for s, a in zip(specs, agents)])
    listed = [a.name for a in agents]
    reference = args.reference or ("fixed-8" if "fixed-8" in listed else listed[0])
    if reference not in listed:
        raise UsageError(f"--reference {reference!r} is not among the agents run; choose one of: {', '.join(listed)}")
    front = front_names(ctx, specs)
    extra = [n for n in front if n not in listed]
    specs += extra
    agents += [make_agent(n, ctx, args.progress) for n in extra]
    total = size if args.episodes is None else min(args.episodes, size)
    settings = {
        "env": env_id,
        "env_kwargs": kwargs,
        "split": args.split,
        "episodes": total,
        "seeds": list(args.seeds),
        "batch_size": args.batch_size,
        "supernet_sha256": read_supernet_card(supernet)["sha256"],
        **trust,
        "cost_model": cost.model,  # a table's checksum too: an edited table is another bench
    }
    partial = out / PARTIAL
    finished = load_finished(partial, settings)
    with writing(partial):
        partial.mkdir(exist_ok=True)
    pool = stack.enter_context(CleanPool(args.jobs))
    checker = RowChecker(pool, kwargs, args.split)
    entries: dict[int, dict] = {}
    resumed: list[str] = []
    clean: dict[int, tuple[Future, float]] = {}
    # The static rows go to the pool first, before any agent runs: computed where no agent has been.
    for i, (spec, agent) in enumerate(zip(specs, agents)):
        fingerprint = agent_fingerprint(spec, agent, env_id)
        reused = reusable(finished, fingerprint, agent.name)
        if reused is not None:
            entries[i] = reused
            resumed.append(agent.name)
            continue
        row = clean_agent(agent)
        if row is not None:
            # A static front bench searched itself is charged to its first static row.
            searched = static_search_seconds(ctx, agent.name, {n: None for n in [a.name for a in agents[:i]]})
            job = pool.submit(
                static_row, row, env_id, dict(overrides), args.split, total, args.seeds[0], args.batch_size
            )
            clean[i] = (job, searched)
        entries[i] = {"fingerprint": fingerprint, "name": agent.name, "meta": None, "records": None, "spec": spec}

    def harvest(wait: bool) -> None:
        """Keep the static rows the pool has finished (for a rerun after an interruption too)."""
        for i, (job, searched) in list(clean.items()):
            if wait or job.done():
                mine, seconds = outcome(job)
                meta = {"uses_label": False, "decision_macs_per_step": 0, "wall_s": seconds + searched}
                meta.update(seeds_run=list(args.seeds[:1]), decision_cost="measured", ran_in="clean")
                if hasattr(agents[i], "config"):
                    meta["config"] = list(agents[i].config)
                entries[i].update(meta=meta, records=mine)
                save_finished(partial, settings, entries[i], entries[i].pop("spec", ""))
                checker.add_clean(mine)
                del clean[i]
                if say and agents[i].name in listed:
                    print(f"bench: {agents[i].name}: {len(mine)} episodes, {seconds:.1f} s", file=sys.stderr)

    todo = [i for i in entries if entries[i]["records"] is None and i not in clean]
    try:
        for i in tqdm(todo, desc="bench", unit="agent", file=sys.stderr, disable=not args.progress):
            agent = agents[i]
            # Agents without randomness give the same episodes for every seed: run them once.
            seeds = list(args.seeds) if getattr(agent, "stochastic", True) else list(args.seeds[:1])
            t0 = time.perf_counter()
            mine: list[dict] = []
            costs: dict[str, Any] = {}
            for seed in seeds:
                mine += run_agent(
                    agent, env_id, args.split, total, seed, overrides, args.batch_size, args.progress, costs=costs
                )
            agent_meta = {
                "uses_label": bool(getattr(agent, "uses_label", False)),
                "decision_macs_per_step": int(getattr(agent, "decision_macs_per_step", 0) or 0),
                "wall_s": time.perf_counter() - t0,
                "seeds_run": seeds,
                "decision_cost": _decision_cost(agent, costs.get("measured_macs", 0)),
                "ran_in": "worker" if isinstance(agent, IsolatedAgent) else "bench",
            }
            if hasattr(agent, "config"):
                agent_meta["config"] = list(agent.config)
            entries[i].update(meta=agent_meta, records=mine)
            if isinstance(agent, IsolatedAgent) and agent.kind == "class":  # the user's files its worker loaded
                entries[i]["sources"] = fingerprint_sources(agent.loaded_files())
            # Kept for a rerun after an interruption, in a file of its own; <out>'s own files stay as they are.
            save_finished(partial, settings, entries[i], entries[i].pop("spec", ""))
            if say:
                print(f"bench: {agent.name}: {len(mine)} episodes, {agent_meta['wall_s']:.1f} s", file=sys.stderr)
            harvest(wait=False)
            checker.submit(mine)  # its replay starts now, beside the next agents
    except Exception:
        # An agent failed: the static rows are kept for a rerun all the same (they cost seconds each).
        with contextlib.suppress(Exception):
            harvest(wait=True)
        raise
    harvest(wait=True)
    if say:
        front_only = sum(1 for n in extra if n not in resumed)
        print(f"bench: {front_only} static rows of the front that were not listed, in the clean pool", file=sys.stderr)
    if resumed:
        print(f"resumed: {', '.join(resumed)} from the interrupted run in {partial}", file=sys.stderr)
    records: list[dict] = []
    meta: dict[str, dict] = {}
    for i in sorted(entries):
        records += entries[i]["records"]
        meta[entries[i]["name"]] = {**entries[i]["meta"], "listed": entries[i]["name"] in listed}
    # Every agent row is replayed on a fresh engine before anything is written.
    statics = {i for i, a in enumerate(agents) if clean_agent(a) is not None}
    for i in sorted(statics & set(entries)):
        checker.add_clean(entries[i]["records"])  # resumed static rows too
    try:
        checker.check({entries[i]["name"]: entries[i]["records"] for i in sorted(entries) if i not in statics})
    except RowNotReproducedError as exc:
        for i in entries:  # a refused row is never reused by a rerun
            if entries[i]["fingerprint"] is not None and entries[i]["name"] in exc.rows:
                forget_finished(partial, entries[i]["fingerprint"])
        raise
    everything = add_paired(leaderboard(records, meta, probe.engine.max_bitops), records, reference, front, cost.column)
    everything["decision_cost"] = [meta.get(n, {}).get("decision_cost", "declared") for n in everything["agent"]]
    table = everything[everything["agent"].isin(listed)].reset_index(drop=True)
    held = front_summary(everything, front, listed, cost.column)
    costs = everything.set_index("agent")[cost.fraction_column]
    statics = (front, [r for r in records if r["agent"] in front], [float(costs[n]) for n in front])
    curves = run_curves(curved, args, (env_id, overrides), total, statics, pool, (partial, settings, finished))
    for c in curves if say else []:
        print(f"bench: {c['name']}: {c['k']} points x {total} episodes, {c['wall_s']:.1f} s", file=sys.stderr)
    doc = {**_results_doc(env_id, args, kwargs, supernet, records, meta, table, held, total), **trust, "curves": curves}
    doc["cost_model"] = cost.model
    files = ["leaderboard.csv", "leaderboard.md", "leaderboard-compact.md", "pareto.png"]
    atomic_write_text(partial / "leaderboard.csv", table.to_csv(index=False))
    for name, text in (
        ("leaderboard.md", cost.line() + "\n\n" + format_markdown(table, cost)),
        ("leaderboard-compact.md", format_compact_markdown(table, cost)),
    ):
        atomic_write_text(partial / name, text + "\n" + curves_markdown(curves))
    from agents.app.cost_plot import pareto_cost_plot  # lazy: matplotlib, a few tenths of a second to import
    from agents.app.plots import curves_plot, heatmap_plot  # lazy: matplotlib, as above

    if curves:
        dots = [{"agent": h["agent"], "accuracy": h["accuracy"], "cost": float(costs[h["agent"]])} for h in held]
        with writing(partial / "curves.png"):
            curves_plot(curves, dots, partial / "curves.png", f"{env_id} on {args.split} ({total} images)")
        files.append("curves.png")

    # The plot draws the complete front, listed or not: it is what the verdicts were judged against.
    with writing(partial / "pareto.png"):
        pareto_cost_plot(everything, partial / "pareto.png", f"{env_id} on {args.split} ({total} images)", cost)
    # The heatmap shows an adaptive agent: the learned one when present, else the first other.
    adaptive = [n for n in listed if n != "random" and not n.startswith(STATIC_PREFIXES)]
    if adaptive:
        pick = next((n for n in ("escalation", "ppo") if n in adaptive), adaptive[0])
        safe = "".join(c if c.isalnum() or c in "-_.@" else "-" for c in pick)  # a model path names a row too
        with writing(partial / f"heatmap-{safe}.png"):
            heatmap_plot(records, pick, probe.engine.split.labels.numpy(), partial / f"heatmap-{safe}.png")
        files.append(f"heatmap-{safe}.png")
    atomic_write_json(partial / "results.json", doc)
    commit_set(partial, out, [*files, "results.json"])
    return {
        "env": env_id,
        "env_kwargs": kwargs,
        "supernet": supernet_name(supernet),
        "split": args.split,
        "episodes": total,
        "rows": json.loads(table.to_json(orient="records")),
        "front": held,
        "curves": [{k: v for k, v in c.items() if k != "records"} for c in curves],
        "cost_model": cost.model,
        "cost_all8": cost.all8,
    }
