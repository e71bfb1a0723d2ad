"""One run of the zoo: train it (or resume it, or skip it when finished), then score its final policy.

Each run trains with :func:`agents.app.train.train_agent` (checkpoints, resuming, model card) and
records the deterministic policy's val return every ``eval_every`` env steps in ``curve.json``.
Every file is written atomically; ``result.json`` is written last, as the mark of a finished run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

from agents.app.bench import run_agent
from agents.app.train import read_run_card, train_agent
from agents.app.zoo.plan import RunSpec, finished, train_args
from agents.controllers.sb3_agent import SB3Agent
from supernets.foundation.files import atomic_write_bytes, atomic_write_json

RECORD_KEYS = ("index", "bits", "bitops", "bitops_fraction", "correct", "reward", "decision_macs")
"""What a run keeps of each scored episode (the agent and seed are the run's)."""

COST_KEYS = ("cost", "cost_fraction")
"""Kept too where the episodes carry them (the env's cost model), so cached and fresh rows agree."""


def records_name(split: str, episodes: int | None) -> str:
    """File name of a run's scored episodes on ``split``.

    Args:
        split: the split scored.
        episodes: the first images scored (None: all).
    """
    return f"records-{split}-{'all' if episodes is None else episodes}.json"


def pack_records(records: list[dict]) -> dict[str, list]:
    """Episode records as one list per key (a compact file)."""
    keys = [*RECORD_KEYS, *(k for k in COST_KEYS if records and k in records[0])]
    return {k: [r[k] for r in records] for k in keys}


def unpack_records(packed: dict[str, list], agent: str, seed: int) -> list[dict]:
    """The episode records of :func:`pack_records`, each with its agent name and seed."""
    keys = list(packed)
    return [{"agent": agent, "seed": seed, **dict(zip(keys, row))} for row in zip(*packed.values())]


def score_policy(agent: Any, env_id: str, split: str, episodes: int | None, seed: int = 0) -> dict[str, float]:
    """Mean return, accuracy and BitOps fraction of a policy on the first images of ``split``.

    Args:
        agent: the policy, as an agent (e.g. an :class:`~agents.controllers.sb3_agent.SB3Agent`).
        env_id: the env it runs on.
        split: the split.
        episodes: the first images (None: all).
        seed: the episodes' seed.
    """
    records = run_agent(agent, env_id, split, episodes, seed=seed, progress=False)
    return {
        "reward": float(np.mean([r["reward"] for r in records])),
        "accuracy": float(np.mean([r["correct"] for r in records])),
        "bitops_fraction": float(np.mean([r["bitops_fraction"] for r in records])),
    }


def _write_curve(spec: RunSpec, points: list[dict[str, float]]) -> None:
    atomic_write_json(
        Path(spec.run_dir) / "curve.json", {"split": "val", "eval_episodes": spec.eval_episodes, "points": points}
    )


class ValCurve(BaseCallback):
    """An SB3 callback that scores the deterministic policy on val every ``spec.eval_every`` steps.

    The points go to ``curve.json`` (atomically) as they come; a resumed run keeps the points up
    to its checkpoint and continues from there.

    Args:
        spec: the run.
    """

    def __init__(self, spec: RunSpec) -> None:
        super().__init__()
        self.spec = spec
        self.path = Path(spec.run_dir) / "curve.json"
        self.points: list[dict[str, float]] = []
        self.next_eval = 0

    def _score(self) -> None:
        agent = SB3Agent(self.model, self.spec.algo)
        point = {"timesteps": int(self.num_timesteps)}
        point.update(score_policy(agent, self.spec.env, "val", self.spec.eval_episodes))
        self.points.append(point)
        self.next_eval = self.num_timesteps + self.spec.eval_every
        _write_curve(self.spec, self.points)

    def _on_training_start(self) -> None:
        if self.path.is_file():
            old = json.loads(self.path.read_text())["points"]
            self.points = [p for p in old if p["timesteps"] <= self.num_timesteps]
        if self.points:
            self.next_eval = self.points[-1]["timesteps"] + self.spec.eval_every
        else:
            self._score()  # the untrained policy: where every curve starts

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_eval:
            self._score()
        return True


def train_run(spec: RunSpec) -> dict[str, Any]:
    """Train one run (or resume it, or skip it when finished), then score its final policy on ``spec.split``.

    Returns ``{"result": ..., "files": {name: bytes}}``: the files let a driver on another machine
    keep the model, its card, curve and scored episodes (a Ray cluster without a shared disk).

    Args:
        spec: the run.
    """
    torch.set_num_threads(1)
    run_dir = Path(spec.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    log = open(run_dir / "train.log", "a") if spec.log_to_file else None  # noqa: SIM115
    with contextlib.redirect_stderr(log) if log else contextlib.nullcontext():
        result = finished(spec)
        if result is None:
            curve = ValCurve(spec)
            train_agent(train_args(spec), command=spec.command, callbacks=[curve])
            card = read_run_card(run_dir)
            points = list(curve.points)
            if card["val"] is not None and (not points or points[-1]["timesteps"] < card["timesteps"]):
                points.append(
                    {"timesteps": card["timesteps"], **{k: card["val"][k] for k in points[0] if k in card["val"]}}
                )
                _write_curve(spec, points)
            result = {
                "algo": spec.algo,
                "rl_zoo3_algo": spec.zoo_algo,
                "env": spec.env,
                "seed": spec.seed,
                "timesteps": card["timesteps"],
                "hyperparams": spec.hyperparams,
                "val": card["val"],
                "curve": points,
                "train_wall_s": time.perf_counter() - t0,
            }
        name = records_name(spec.split, spec.episodes)
        if not (run_dir / name).is_file():
            agent = SB3Agent.load(run_dir / "model.zip", spec.algo, spec.algo)
            records = run_agent(agent, spec.env, spec.split, spec.episodes, seed=spec.seed, progress=False)
            atomic_write_json(run_dir / name, pack_records(records))
    if log:
        log.close()
    atomic_write_json(run_dir / "result.json", result)  # last: it marks the run finished
    names = ["model.zip", "card.json", "curve.json", name, "result.json"]
    if (run_dir / "model.obs_norm.json").is_file():  # --normalize-obs: the statistics travel with the model
        names.insert(1, "model.obs_norm.json")
    files = {n: (run_dir / n).read_bytes() for n in names}
    return {"result": result, "files": files}


def keep_files(spec: RunSpec, files: dict[str, bytes]) -> None:
    """Write a run's returned files into its folder (a no-op change when the worker shared the disk).

    Args:
        spec: the run.
        files: file name -> content, as :func:`train_run` returns them.
    """
    run_dir = Path(spec.run_dir)
    for name in sorted(files, key=lambda n: n == "result.json"):  # result.json last: it marks the run done
        path = run_dir / name
        if not path.is_file() or path.read_bytes() != files[name]:
            atomic_write_bytes(path, files[name])


def run_local(todo: list[RunSpec], progress: bool) -> None:
    """Train the runs one after the other in this process.

    Args:
        todo: the runs.
        progress: show training progress bars (else each run's progress goes to its train.log).
    """
    for i, spec in enumerate(todo, 1):
        print(f"[{i}/{len(todo)}] {spec.row} on {spec.env}, seed {spec.seed}", file=sys.stderr, flush=True)
        out = train_run(dataclasses.replace(spec, log_to_file=not progress))
        val = out["result"]["val"] or {}
        print(
            f"  done: {out['result']['timesteps']} steps, val return {val.get('reward', float('nan')):.4f}",
            file=sys.stderr,
            flush=True,
        )
