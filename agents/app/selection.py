"""Keep the best policy of a training run, judged on val against the static mixtures.

PPO on these tasks does not improve monotonically: a run that is ahead of the static front at
1 M steps can drift above its BitOps and under it by 2 M. ``abn-gym train --keep-best-every N``
therefore scores the deterministic policy on the first ``--eval-episodes`` val images every N
steps and keeps the one with the largest *gap to the static mixtures*: its accuracy minus that of
the best random mixture of two static configurations (fixed-b and static-b, on the same images)
with the same mean BitOps. That is the bar the leaderboard's verdict uses (``agents.app.bench``'s
``hull_gap``), so the kept policy is the one that beats it by most on val; the test split is
never seen. The kept model and its normalisation statistics live in ``<out>/best/`` until the
run ends, when they become ``model.zip``; ``best/selection.json`` lists every evaluation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from abn_gym.registration import env_kwargs
from abn_gym.vector import ABNVectorEnv
from agents.app.bench import run_agent, static_hull_mixture
from agents.controllers.normalization import ObsNormalizer, stats_path
from agents.controllers.registry import BenchContext, default_static_rows, make_agent
from agents.controllers.sb3_agent import SB3Agent
from supernets.foundation.files import atomic_write_json, writing

BEST_DIR = "best"


@dataclass(frozen=True)
class StaticFront:
    """Every static configuration's per-image correctness and mean BitOps on the same images.

    Args:
        names: the rows, ``fixed-<b>`` for each action and ``static-<b>`` for each shipped target.
        correct: (rows, images) correctness, images in split order.
        bitops: (rows,) mean BitOps.
    """

    names: tuple[str, ...]
    correct: np.ndarray
    bitops: np.ndarray

    def mixture_gap(self, correct: np.ndarray, bitops: float) -> float:
        """Mean accuracy gap of an agent (per-image ``correct``, mean ``bitops``) to the best static mixture.

        NaN when the agent spends less than every static row (no mixture is that cheap).
        """
        accuracy = self.correct.mean(axis=1)
        mix = static_hull_mixture(bitops, [(j, self.bitops[j], accuracy[j]) for j in range(len(self.names))])
        if mix is None:
            return float("nan")
        reference = sum(w * self.correct[j] for j, w in mix)
        return float(np.mean(np.asarray(correct, dtype=np.float64) - reference))


@lru_cache(maxsize=4)
def static_front(
    env_id: str, split: str, episodes: int | None, env_overrides: tuple[tuple[str, Any], ...] = ()
) -> StaticFront:
    """Run every fixed-b and static-b row of ``env_id`` on the first ``episodes`` images of ``split``.

    ``env_overrides``: env arguments as (name, value) pairs, e.g. ``(("budget", None),)`` for a Budget
    id's configurations without the budget's clipping. Cached per process: the levers' runs share one
    front (it costs as much as training on 60k images).
    """
    overrides = dict(env_overrides)
    probe = ABNVectorEnv(1, **env_kwargs(env_id, **overrides, split=split))
    ctx = BenchContext(env_id, probe.config.supernet, probe.bit_choices)
    names = [f"fixed-{b}" for b in probe.bit_choices] + default_static_rows(ctx, progress=False)
    correct, bitops = [], []
    for name in names:
        agent = make_agent(name, ctx, progress=False)
        records = run_agent(agent, env_id, split, episodes, env_overrides=overrides, progress=False)
        correct.append([r["correct"] for r in records])
        bitops.append(np.mean([r["bitops"] for r in records]))
    return StaticFront(tuple(names), np.asarray(correct, dtype=np.float64), np.asarray(bitops, dtype=np.float64))


def score_on_val(agent: Any, env_id: str, episodes: int, front: StaticFront, seed: int = 0) -> dict[str, float]:
    """Accuracy, BitOps, return and gap to the static mixtures of ``agent`` on the first val images."""
    records = run_agent(agent, env_id, "val", episodes, seed=seed, progress=False)
    correct = np.array([r["correct"] for r in records], dtype=np.float64)
    bitops = float(np.mean([r["bitops"] for r in records]))
    return {
        "accuracy": float(correct.mean()),
        "bitops": bitops,
        "reward": float(np.mean([r["reward"] for r in records])),
        "mixture_gap": front.mixture_gap(correct, bitops),
    }


def read_selection(out: str | Path) -> dict[str, Any] | None:
    """The run's ``best/selection.json`` (every evaluation and the kept one), None before the first."""
    path = Path(out) / BEST_DIR / "selection.json"
    return json.loads(path.read_text()) if path.is_file() else None


def kept_model(out: str | Path) -> tuple[Path, ObsNormalizer | None] | None:
    """The kept model of a run and its statistics (None when nothing was kept yet)."""
    selection = read_selection(out)
    if selection is None or selection.get("best") is None:
        return None
    path = Path(out) / BEST_DIR / selection["file"]
    norm = stats_path(path)
    return path, (ObsNormalizer.load(norm) if norm.is_file() else None)


class KeepBestOnVal(BaseCallback):
    """Every ``every`` steps, score the policy on val and keep it in ``out/best`` when its mixture gap is the best.

    A resumed run continues from ``best/selection.json``: the earlier evaluations and the kept policy stay.

    Args:
        algo: the ``--algo`` name (the agent's leaderboard name while scoring).
        env_id: the id the policy is scored on: its own reward, with ``env_overrides`` (e.g. cost_coef).
        every: environment steps between evaluations.
        episodes: first val images scored each time.
        out: the run's folder.
        seed: seed of the scoring episodes.
    """

    def __init__(self, algo: str, env_id: str, every: int, episodes: int, out: str | Path, seed: int = 0) -> None:
        super().__init__()
        self.algo, self.env_id, self.every, self.episodes, self.seed = algo, env_id, every, episodes, seed
        self.dir = Path(out) / BEST_DIR
        self.front: StaticFront | None = None
        self.evaluations: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.next_eval = every
        self.restored: dict[str, Any] | None = None  # a checkpoint's state(), set before an exact resume

    def _on_training_start(self) -> None:
        if self.restored is not None:  # an exact resume: the checkpoint's evaluations, not later ones
            self.evaluations = list(self.restored["evaluations"])
            self.best = self.restored["best"]
            self._write_selection()
        else:
            previous = read_selection(self.dir.parent)
            if previous is not None:
                self.evaluations = [e for e in previous["evaluations"] if e["timesteps"] <= self.num_timesteps]
                kept = [e for e in self.evaluations if previous.get("best") and e["timesteps"] == previous["best"]]
                self.best = kept[0] if kept else None
        self.next_eval = (self.num_timesteps // self.every + 1) * self.every

    def state(self) -> dict[str, Any]:
        """The evaluations and the kept one, for a checkpoint (restored through ``restored``)."""
        return {"evaluations": list(self.evaluations), "best": self.best}

    def prune(self) -> None:
        """Remove the kept files of earlier bests; called once a checkpoint that names the current best is saved.

        Not at once when a better policy is kept: a run resumed from the checkpoint before needs that one's file.
        """
        keep = set() if self.best is None else {f"model_{self.best['timesteps']}_steps.zip"}
        keep |= {stats_path(self.dir / k).name for k in keep}
        for path in self.dir.glob("model_*"):
            if path.is_file() and path.name not in keep:
                path.unlink()

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_eval:
            self.next_eval = (self.num_timesteps // self.every + 1) * self.every
            self.evaluate_on_val()
        return True

    def _on_training_end(self) -> None:
        if not self.evaluations or self.evaluations[-1]["timesteps"] < self.num_timesteps:
            self.evaluate_on_val()  # the last policy competes too

    def evaluate_on_val(self) -> dict[str, Any]:
        """Score the current policy; keep it if it beats the kept one (NaN gaps never win)."""
        if self.front is None:
            self.front = static_front(self.env_id, "val", self.episodes)
        agent = SB3Agent(self.model, self.algo)  # a frozen copy of the statistics it trains with
        point = {"timesteps": int(self.num_timesteps), **score_on_val(agent, self.env_id, self.episodes, self.front)}
        self.evaluations.append(point)
        gap = point["mixture_gap"]
        if np.isfinite(gap) and (self.best is None or gap > self.best["mixture_gap"]):
            # A file per kept step, named in selection.json only once written: a crash keeps the old pair.
            # The earlier bests' files go at the next checkpoint (prune), which a resume starts from.
            model_path = self.dir / f"model_{point['timesteps']}_steps.zip"
            with writing(model_path):
                self.dir.mkdir(parents=True, exist_ok=True)
                if agent.obs_norm is not None:
                    agent.obs_norm.save(stats_path(model_path))
                tmp = self.dir / "model.tmp.zip"
                self.model.save(str(tmp))
                tmp.replace(model_path)
            self.best = point
        self._write_selection()
        return point

    def _write_selection(self) -> None:
        atomic_write_json(
            self.dir / "selection.json",
            {
                "criterion": "gap to the static mixtures on val",
                "episodes": self.episodes,
                "best": None if self.best is None else self.best["timesteps"],
                "file": None if self.best is None else f"model_{self.best['timesteps']}_steps.zip",
                "evaluations": self.evaluations,
            },
        )
