"""Rows no agent has touched: the static rows, and the replay that checks every agent row.

``abn-gym bench`` computes the static rows (fixed-b and static-b, which build the front) in a small
pool of processes started with the *spawn* context, each loading the supernet afresh: a state that
no agent has seen, whatever runs in the bench process. The pool runs beside the agents (one torch
thread each), which pays for the rows on a machine with a core to spare.

Before the table is written, every agent row is replayed there too: each recorded (image,
configuration) is run on a fresh engine and must give the recorded correctness, BitOps, cost (in
the env's cost model) and reward. The engine is exact and batch-independent, so an (image,
configuration) a static row already computed is taken from that row instead of being run again.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np

from agents.app.episodes import run_agent
from agents.app.validate import episode_errors, replay
from agents.controllers.baselines import FixedAgent, StaticAgent
from agents.controllers.worker import spawn_without_main
from supernets.foundation.errors import ABNGymError

CHUNK = 2048
"""Episodes per replay job."""


class RowNotReproducedError(ABNGymError, RuntimeError):
    """An agent row whose episodes do not reproduce on a fresh engine: it is refused, nothing is published.

    Args:
        message: what did not reproduce.
        rows: the names of the refused rows.
    """

    def __init__(self, message: str, rows: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.rows = list(rows)


class PoolDiedError(ABNGymError, RuntimeError):
    """A process of the pool that computes the static rows and the replays died."""


def outcome(job: Future) -> Any:
    """A pool job's result; a process that died (killed, out of memory) gets one clear error."""
    try:
        return job.result()
    except BrokenProcessPool as exc:
        raise PoolDiedError(
            f"a process computing the static rows or the replay check died ({exc}); the machine may be out of "
            "memory: rerun the same command (finished rows are kept), with --jobs 1 to use less memory"
        ) from None


def _one_thread() -> None:
    # Each process of the pool takes one core: more threads would fight over the machine's cores.
    import torch  # lazy: the pool's initializer runs in the spawned process, before its first job

    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the bench's to handle: it stops the pool


def clean_agent(agent: Any) -> tuple[str, tuple[int, ...] | None, int | None] | None:
    """(name, config, bits) of a row the pool can compute (a built-in fixed-b or static-b), else None."""
    if type(agent) is FixedAgent:
        return agent.name, None, agent.bits
    if type(agent) is StaticAgent:
        return agent.name, tuple(agent.config), None
    return None


def static_row(
    row: tuple[str, tuple[int, ...] | None, int | None],
    env_id: str,
    overrides: dict[str, Any],
    split: str,
    episodes: int,
    seed: int,
    batch_size: int,
) -> tuple[list[dict], float]:
    """One static row's episodes, computed in this (fresh) process, and the seconds they took."""
    name, config, bits = row
    agent = FixedAgent(bits) if config is None else StaticAgent(config, name)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    records = run_agent(agent, env_id, split, episodes, seed, overrides, batch_size, progress=False)
    return records, time.perf_counter() - t0


def replay_chunk(
    env_kwargs: dict, split: str, indices: list[int], bits: list[list[int]]
) -> tuple[list, list, list, list]:
    """(correct, BitOps, reward, cost) of each (image, configuration), on a supernet this process loaded."""
    correct, ops, reward, cost = replay(env_kwargs, split, np.array(indices), np.array(bits))
    return correct.tolist(), ops.tolist(), reward.tolist(), cost.tolist()


class CleanPool:
    """A pool of ``jobs`` spawned processes for static rows and replays (a context manager).

    Args:
        jobs: the number of processes.
    """

    def __init__(self, jobs: int) -> None:
        self.jobs = int(jobs)
        self._pool: ProcessPoolExecutor | None = None

    def submit(self, fn: Any, *args: Any) -> Future:
        """Run ``fn(*args)`` in the pool (started on first use)."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_one_thread
            )
        with spawn_without_main():  # the pool may start a process in submit
            return self._pool.submit(fn, *args)

    def __enter__(self) -> CleanPool:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if self._pool is not None:
            # After an error or Ctrl-C nothing more is wanted: queued jobs are dropped, and each process
            # ends after the row it is on (seconds; terminating it would leak the queues' semaphores).
            self._pool.shutdown(wait=True, cancel_futures=kind is not None)


class RowChecker:
    """Replays agent rows in the pool as they finish, then refuses the rows that do not reproduce.

    Args:
        pool: where the replays run.
        env_kwargs: every env argument of the bench.
        split: the data split.
    """

    def __init__(self, pool: CleanPool, env_kwargs: dict, split: str) -> None:
        self.pool, self.env_kwargs, self.split = pool, env_kwargs, split
        self.known: dict[tuple, tuple[bool, float, float, float | None]] = {}
        self._jobs: list[tuple[list[tuple], Future]] = []
        self._asked: set[tuple] = set()

    def add_clean(self, records: Sequence[dict]) -> None:
        """Episodes computed where no agent was (a static row): their (image, configuration)s are not rerun."""
        for r in records:
            self.known[(r["index"], tuple(r["bits"]))] = (r["correct"], r["bitops"], r["reward"], r.get("cost"))

    def submit(self, records: Sequence[dict]) -> None:
        """Start replaying the (image, configuration)s of ``records`` that are not known or asked for yet."""
        todo = sorted({(r["index"], tuple(r["bits"])) for r in records} - set(self.known) - self._asked)
        self._asked.update(todo)
        for part in (todo[i : i + CHUNK] for i in range(0, len(todo), CHUNK)):
            job = self.pool.submit(
                replay_chunk, self.env_kwargs, self.split, [k[0] for k in part], [list(k[1]) for k in part]
            )
            self._jobs.append((part, job))

    def check(self, rows: dict[str, Sequence[dict]]) -> None:
        """Refuse every row of ``rows`` (agent name -> records) whose episodes do not reproduce."""
        for recs in rows.values():
            self.submit(recs)
        for part, job in self._jobs:
            for key, correct, ops, reward, cost in zip(part, *outcome(job)):
                self.known[key] = (correct, ops, reward, cost)
        self._jobs = []
        check_reward = self.env_kwargs.get("budget") is None
        refused, names = [], []
        for name, recs in rows.items():
            errors: list[str] = []
            for r in recs:
                correct, ops, reward, cost = self.known[(r["index"], tuple(r["bits"]))]
                errors += episode_errors(f"image {r['index']}", r, correct, ops, reward, check_reward, cost)
            if errors:
                names.append(name)
                refused.append(f"{name!r} ({len(errors)} mismatches in {len(recs)} episodes; first: {errors[0]})")
        if refused:
            raise RowNotReproducedError(
                f"refused: {len(refused)} row(s) do not reproduce on a fresh engine: {'; '.join(refused)}. Their "
                "agent changed the bench's state (the supernet, the labels or the records); nothing was published, "
                "and the previous results in --out stay. Run agents you do not trust with --isolation worker "
                "(the default)",
                names,
            )
