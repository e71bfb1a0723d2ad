"""One agent's episodes on the vector env: what an agent is handed, what it returns, what it costs.

:func:`run_agent` is the loop ``abn-gym bench`` and the training reports run. An agent gets only
its documented interface (see :mod:`agents.controllers.base`); an agent in a worker process is an
:class:`agents.app.isolation.IsolatedAgent` here, which forwards the same interface over a pipe.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from abn_gym.registration import env_kwargs
from abn_gym.vector import ABNVectorEnv
from agents.controllers.base import AgentActionError, AgentFailedError, AgentProtocolError, EnvView, check_agent
from agents.controllers.registry import describe_exception
from agents.controllers.worker import measured_act
from supernets.foundation.errors import ABNGymError

BATCH = 256
OUR_PACKAGES = ("agents", "abn_gym", "supernets", "stable_baselines3", "sb3_contrib")
"""Where built-in agents come from: an exception inside one of them is a bug and keeps its traceback."""


def check_actions(name: str, actions: Any, n: int, bit_choices: Sequence[int]) -> np.ndarray:
    """An agent's actions as an int64 array of shape (n,), or an error naming the agent and what is wrong.

    Floats are refused, as ``env.step(2.7)`` refuses them: truncating 2.7 to 2 would run an action
    the agent did not choose.
    """
    a = np.asarray(actions)
    expected = f"{n} action indices (integers in [0, {len(bit_choices) - 1}] into bit_choices={tuple(bit_choices)})"
    if a.dtype.kind not in "iu":
        raise AgentProtocolError(
            f"agent {name!r} returned actions of dtype {a.dtype} ({np.ravel(a)[:4].tolist()}...); act() must return "
            f"{expected}, e.g. np.array(..., dtype=np.int64)"
        )
    a = a.astype(np.int64).reshape(-1)
    if a.shape != (n,):
        raise AgentActionError(
            f"agent {name!r} returned {a.shape[0]} actions for {n} episodes; act() must return {expected}"
        )
    bad = (a < 0) | (a >= len(bit_choices))
    if bad.any():
        raise AgentActionError(f"agent {name!r} returned action {int(a[bad][0])}; act() must return {expected}")
    return a


def is_builtin(agent: Any) -> bool:
    """Whether ``agent`` is one of abn-gym's own (its code is ours, and so are its cost figures)."""
    return type(agent).__module__.split(".")[0] in OUR_PACKAGES and not hasattr(agent, "act_measured")


@contextlib.contextmanager
def _agent_errors(agent: Any, method: str) -> Iterator[None]:
    """A user's agent that raises gets one line naming it; a built-in agent that raises is a bug (traceback)."""
    try:
        yield
    except Exception as exc:
        if is_builtin(agent) or isinstance(exc, ABNGymError):
            raise  # a bug of ours (traceback), or a mistake the error already explains
        raise AgentFailedError(f"agent {agent.name!r} raised in {method}(): {describe_exception(exc)}") from exc


def _act(agent: Any, obs: Any, infos: dict[str, Any], measure: bool) -> tuple[Any, int]:
    """The agent's raw actions, and the MACs measured around ``act()`` (0 when not measured)."""
    if hasattr(agent, "act_measured"):  # an agent in a worker: the worker measured it
        return agent.act_measured(obs, infos)
    if measure:
        return measured_act(agent, obs, infos)
    return agent.act(obs, infos), 0


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
    costs: dict[str, Any] | None = None,
) -> list[dict]:
    """Run ``agent`` on the first ``episodes`` images of ``split`` (all when None), in order.

    ``indices`` picks the images explicitly instead. Returns one record per episode: index,
    bits, BitOps, cost (``info["cost"]`` and ``info["cost_fraction"]``, in the env's cost model),
    correctness, reward and decision MACs.

    A user's agent (not one of abn-gym's) has ``act()`` measured with PyTorch's FLOP counter;
    when it ran PyTorch ops, the measured MACs are its decision cost, else its declared
    ``decision_macs_per_*``. ``costs``, when given, receives ``measured_macs`` (the total measured).
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
    uses_lookahead = bool(getattr(agent, "uses_lookahead", False))
    per_step = int(getattr(agent, "decision_macs_per_step", 0) or 0)
    per_episode = int(getattr(agent, "decision_macs_per_episode", 0) or 0)
    measure = not is_builtin(agent) and not getattr(agent, "builtin_cost", False)
    measured_total = 0
    envs: dict[int, ABNVectorEnv] = {}
    for batch_no, start in enumerate(range(0, total, batch_size)):
        n = min(batch_size, total - start)
        env = envs.setdefault(n, ABNVectorEnv(n, **kwargs))
        obs, _ = env.reset(seed=seed, options={"index": order[start : start + n]})
        with _agent_errors(agent, "reset"):
            agent.reset(n, seed * 1_000_003 + batch_no)
        view = EnvView(env, allow_labels=uses_label, allow_lookahead=uses_lookahead, agent_name=agent.name)
        infos: dict[str, Any] = {"bit_choices": env.bit_choices}
        returns = np.zeros(n)
        measured = 0
        while not env.engine.done:  # env.horizon steps: fewer than num_layers with decide_at
            infos.update(layer=env.engine.t, action_mask=env.action_masks(), view=view)
            with _agent_errors(agent, "act"):
                raw, macs = _act(agent, obs, infos, measure)
            if view.refused is not None:  # refused, though the agent caught the error: the row fails all the same
                raise view.refused
            measured += macs
            obs, reward, _, _, info = env.step(check_actions(agent.name, raw, n, env.bit_choices))
            returns += reward
        lookahead = env.engine.lookahead_macs.copy()
        measured_total += measured
        # Measured MACs of a batch are shared evenly by its episodes (a batched network's cost is per image).
        own = round(measured / n) if measured else per_step * env.horizon + per_episode
        for r in range(n):
            records.append(
                {
                    "agent": agent.name,
                    "seed": int(seed),
                    "index": int(info["index"][r]),
                    "bits": [int(b) for b in info["episode_bits"][r]],
                    "bitops": float(info["bitops"][r]),
                    "bitops_fraction": float(info["bitops_fraction"][r]),
                    "cost": float(info["cost"][r]),
                    "cost_fraction": float(info["cost_fraction"][r]),
                    "correct": bool(info["correct"][r]),
                    "reward": float(returns[r]),
                    "decision_macs": int(lookahead[r] + own),
                }
            )
        bar.update(n)
    bar.close()
    if costs is not None:
        costs["measured_macs"] = costs.get("measured_macs", 0) + measured_total
    return records
