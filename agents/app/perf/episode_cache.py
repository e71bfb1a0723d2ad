"""Training throughput with and without the engine's episode cache: ``python -m agents.app.perf.episode_cache``.

Trains the shipped steep recipe (``abn-gym train --env ABN-ResNet20Quarter-v1 --normalize-obs
--decide-at 0 --reward baseline --cost-coef 0.125 --lr-schedule linear --num-envs 128 --n-steps 4
--batch-size 256``) through :mod:`agents.app.train`'s own functions, and the same recipe on
``ABN-ResNet-v0``, each with ``episode_cache=0`` and with the cache on, one after the other in one
process (each run starts as a fresh process would: :func:`~abn_gym.config.forget_supernets`), after
an untimed warm-up run per env that pays the process's one-time costs.

It reports images per second (with ``decide_at=(0,)`` a timestep is one episode, one image) over the
whole run and over its last quarter (warm), the time spent stepping the env and in PPO's update,
how the cache's hit rate grows with time (the warm-up), and whether the two runs trained the same
policy bit for bit (they must: the cache is exact). Run it alone, at one thread
(``OMP_NUM_THREADS=1``); ``--json PATH`` also writes every rollout's record.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecNormalize

from abn_gym.config import forget_supernets
from abn_gym.episode_cache import DEFAULT_EPISODE_CACHE_MB
from abn_gym.registration import DEFAULT_ENV_ID
from abn_gym.sb3 import make_sb3_env
from abn_gym.vector import ABNVectorEnv
from agents.app.perf.measure import hardware
from agents.app.train import NORMALIZE_CLIP, NORMALIZE_EPSILON, make_model
from agents.app.train_args import AgentTrainArgs, train_overrides
from supernets.foundation.cliargs import arg, dataclass_from_args, dataclass_parser

RECIPE = AgentTrainArgs(
    env="ABN-ResNet20Quarter-v1",
    normalize_obs=True,
    decide_at="0",
    reward="baseline",
    cost_coef=0.125,
    lr_schedule="linear",
    num_envs=128,
    n_steps=4,
    batch_size=256,
    eval_episodes=0,
)
"""The steep recipe (docs: training guide), as ``abn-gym train`` parses it."""
ENVS = ("ABN-ResNet20Quarter-v1", DEFAULT_ENV_ID)
WARM_UP_STEPS = 8192
"""Untimed training per env before the timed runs, so that the first timed run pays no one-time costs."""


class _Clock(BaseCallback):
    """Per rollout: timesteps, wall time, the env's and PPO's shares, and the cache's counters."""

    def __init__(self, vector_env: ABNVectorEnv) -> None:
        super().__init__()
        self.vector_env = vector_env
        self.records: list[dict[str, Any]] = []
        self.start = self.rollout_start = time.perf_counter()
        self.rollout_end: float | None = None
        self.env_s = self.update_s = 0.0

    def _on_training_start(self) -> None:
        self.start = time.perf_counter()

    def _on_rollout_start(self) -> None:
        self.rollout_start = time.perf_counter()
        if self.rollout_end is not None:  # between two rollouts: PPO's update
            self.update_s += self.rollout_start - self.rollout_end

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.rollout_end = time.perf_counter()
        self.env_s += self.rollout_end - self.rollout_start
        cache = self.vector_env.engine.episode_cache
        self.records.append(
            {
                "timesteps": int(self.model.num_timesteps),
                "wall_s": self.rollout_end - self.start,
                "env_s": self.env_s,
                "update_s": self.update_s,
                **({} if cache is None else {"hits": cache.hits, "misses": cache.misses, "entries": len(cache)}),
            }
        )


def _vector_env(env: Any) -> ABNVectorEnv:
    while not isinstance(env, ABNVectorEnv):
        env = env.venv
    return env


def train_once(env_id: str, cache: float | str, timesteps: int, seed: int = 0) -> dict[str, Any]:
    """Train the recipe on ``env_id`` for ``timesteps`` with ``episode_cache=cache``; the timings and a digest."""
    forget_supernets()  # as `abn-gym train` starts: no supernet, reference prediction or cache from before
    args = replace(RECIPE, env=env_id, timesteps=timesteps, seed=seed)
    env = make_sb3_env(env_id, num_envs=args.num_envs, seed=seed, **train_overrides(args), episode_cache=cache)
    env = VecNormalize(
        env, norm_obs=True, norm_reward=False, clip_obs=NORMALIZE_CLIP, gamma=args.gamma, epsilon=NORMALIZE_EPSILON
    )
    model = make_model(args, env)
    clock = _Clock(_vector_env(env))
    start = time.perf_counter()
    model.learn(timesteps, callback=clock)
    wall = time.perf_counter() - start
    digest = hashlib.sha256()
    for p in model.policy.state_dict().values():
        digest.update(p.detach().cpu().numpy().tobytes())
    engine_cache = clock.vector_env.engine.episode_cache
    return {
        "env": env_id,
        "episode_cache": cache,
        "timesteps": int(model.num_timesteps),
        "wall_s": wall,
        "env_s": clock.env_s,
        "update_s": clock.update_s,
        "policy_sha256": digest.hexdigest(),
        "cache": None if engine_cache is None else engine_cache.stats(),
        "rollouts": clock.records,
    }


def _rate(records: list[dict[str, Any]], since: float) -> tuple[float, float | None]:
    """Images per second, and the cache's hit rate, over the rollouts after the fraction ``since`` of the run."""
    last = records[-1]
    first = next(r for r in records if r["timesteps"] >= since * last["timesteps"])
    rate = (last["timesteps"] - first["timesteps"]) / (last["wall_s"] - first["wall_s"])
    if "hits" not in last:
        return rate, None
    looked = (last["hits"] + last["misses"]) - (first["hits"] + first["misses"])
    return rate, (last["hits"] - first["hits"]) / looked


def warm_up(records: list[dict[str, Any]], levels: tuple[float, ...] = (0.5, 0.75, 0.9)) -> dict[float, float | None]:
    """The wall seconds until a rollout's own hit rate first reaches each level (None: never in the run)."""
    out: dict[float, float | None] = dict.fromkeys(levels)
    previous = {"hits": 0, "misses": 0}
    for r in records:
        looked = r["hits"] + r["misses"] - previous["hits"] - previous["misses"]
        rate = (r["hits"] - previous["hits"]) / max(looked, 1)
        for level in levels:
            if out[level] is None and rate >= level:
                out[level] = r["wall_s"]
        previous = r
    return out


def table(runs: list[dict[str, Any]]) -> str:
    """The Markdown table of the runs (pairs of off and on per env)."""
    lines = [
        "| env | cache | images/s, whole run | images/s, last quarter | hit rate, last quarter | env s | PPO update s "
        "| speed-up whole / last quarter | same policy |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    off: dict[str, dict[str, Any]] = {}
    for run in runs:
        whole = run["timesteps"] / run["wall_s"]
        warm, hits = _rate(run["rollouts"], 0.75)
        name = "off" if not run["episode_cache"] else f"{run['episode_cache']} MB"
        if not run["episode_cache"]:
            off[run["env"]] = {**run, "whole": whole, "warm": warm}
            speed, same = "1.00 / 1.00", "-"
        else:
            base = off[run["env"]]
            speed = f"{whole / base['whole']:.2f} / {warm / base['warm']:.2f}"
            same = "yes" if run["policy_sha256"] == base["policy_sha256"] else "**no**"
        lines.append(
            f"| {run['env']} | {name} | {whole:.0f} | {warm:.0f} | {'-' if hits is None else f'{hits:.0%}'} "
            f"| {run['env_s']:.0f} | {run['update_s']:.0f} | {speed} | {same} |"
        )
    return "\n".join(lines)


def warm_up_lines(runs: list[dict[str, Any]]) -> list[str]:
    """One line per cached run: when its hit rate reached 50, 75 and 90%, and the cache's size at the end."""
    lines = []
    for run in runs:
        if not run["episode_cache"]:
            continue
        reached = warm_up(run["rollouts"])
        said = ", ".join(f"{level:.0%} after {'never' if s is None else f'{s:.0f} s'}" for level, s in reached.items())
        c = run["cache"]
        lines.append(
            f"- {run['env']}: a rollout's hit rate reached {said} (of {run['wall_s']:.0f} s); at the end "
            f"{c['entries']} entries, {c['nbytes'] / 2**20:.0f} MB, {c['evictions']} evicted"
        )
    return lines


def _window(records: list[dict[str, Any]], lo: float, hi: float) -> tuple[float, float | None, float]:
    """Images per second and hit rate over the rollouts from fraction ``lo`` to ``hi`` of the run, and its end time."""
    total = records[-1]["timesteps"]
    first = next(r for r in records if r["timesteps"] >= lo * total)
    last = next(r for r in records if r["timesteps"] >= hi * total)
    rate = (last["timesteps"] - first["timesteps"]) / max(last["wall_s"] - first["wall_s"], 1e-9)
    if "hits" not in last:
        return rate, None, last["wall_s"]
    looked = last["hits"] + last["misses"] - first["hits"] - first["misses"]
    return rate, (last["hits"] - first["hits"]) / max(looked, 1), last["wall_s"]


def warm_up_table(runs: list[dict[str, Any]], parts: int = 6) -> str:
    """Per env, the run in ``parts`` equal stretches of timesteps: images/s without and with the cache, hit rate."""
    lines = []
    for env_id in dict.fromkeys(r["env"] for r in runs):
        off = next(r for r in runs if r["env"] == env_id and not r["episode_cache"])
        on = next(r for r in runs if r["env"] == env_id and r["episode_cache"])
        lines += [
            f"{env_id}:",
            "",
            "| timesteps | off: images/s | on: images/s | on: hit rate | on: seconds at the end | speed-up |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        total = on["timesteps"]
        for k in range(parts):
            lo, hi = k / parts, (k + 1) / parts
            base, _, _ = _window(off["rollouts"], lo, hi)
            rate, hits, end = _window(on["rollouts"], lo, hi)
            if not base or hits is None:  # a stretch shorter than one rollout
                continue
            lines.append(
                f"| {lo * total / 1000:.0f}k-{hi * total / 1000:.0f}k | {base:.0f} | {rate:.0f} | {hits:.0%} "
                f"| {end:.0f} | {rate / base:.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


def report(runs: list[dict[str, Any]], hw: dict[str, Any]) -> str:
    """The whole Markdown report of the runs."""
    timesteps = runs[0]["timesteps"]
    head = f"{timesteps} timesteps per run, {hw['cpu']}, {hw['cores']} cores, torch {hw['torch']} with "
    head += f"{hw['torch_threads']} thread(s)"
    return "\n".join([head, "", table(runs), "", *warm_up_lines(runs), "", warm_up_table(runs)])


def measure(envs: list[str], timesteps: int, cache_mb: float, seed: int = 0) -> list[dict[str, Any]]:
    """Per env, an untimed warm-up, then the recipe for ``timesteps`` without and with a ``cache_mb`` cache."""
    for env_id in envs:  # untimed: the process's one-time costs (oneDNN's primitives) go here
        print(f"warming up on {env_id}", file=sys.stderr)
        train_once(env_id, 0, WARM_UP_STEPS, seed)
    runs = []
    for env_id in envs:
        for cache in (0, cache_mb):
            print(f"training {env_id} with episode_cache={cache} for {timesteps} steps", file=sys.stderr)
            runs.append(train_once(env_id, cache, timesteps, seed))
    return runs


def speed_ups(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Per env, images/s in the last quarter with the cache over the same without it."""
    warm = {(r["env"], bool(r["episode_cache"])): _rate(r["rollouts"], 0.75)[0] for r in runs}
    return {env: warm[(env, True)] / warm[(env, False)] for env, cached in warm if cached}


@dataclass
class CacheBenchArgs:
    """Arguments of ``python -m agents.app.perf.episode_cache``."""

    timesteps: int = arg(120_000, "timesteps per run")
    envs: str = arg(",".join(ENVS), "comma-separated env ids")
    cache_mb: float = arg(DEFAULT_EPISODE_CACHE_MB, "the cache's size in the cached runs")
    seed: int = arg(0, "training seed")
    json: str | None = arg(None, "also write every run's records to this path")
    report: str | None = arg(None, "only print the report of a --json file written before")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table (Markdown)."""
    parser = dataclass_parser(CacheBenchArgs, description=(__doc__ or "").splitlines()[0])
    ns = dataclass_from_args(CacheBenchArgs, parser.parse_args(argv))
    if ns.report:
        with open(ns.report) as f:
            saved = json.load(f)
        print(report(saved["runs"], saved["hardware"]))
        return 0
    runs = measure(ns.envs.split(","), ns.timesteps, ns.cache_mb, ns.seed)
    hw = hardware()
    print(report(runs, hw))
    if ns.json:
        with open(ns.json, "w") as f:
            json.dump({"hardware": hw, "runs": runs}, f, indent=1)
    return 0 if all(np.isfinite(r["wall_s"]) for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
