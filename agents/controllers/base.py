"""The agent protocol every controller on the leaderboard follows, and the view it gets of the env.

A user's agent needs two methods::

    class MyAgent:
        name = "my-agent"
        def reset(self, num_envs: int, seed: int) -> None: ...
        def act(self, obs: np.ndarray, infos: dict) -> np.ndarray:  # (N,) action indices
            ...

What an agent gets is only this interface: ``obs``, the vector env's batch of observations
(N, obs_dim); and ``infos`` with ``layer`` (the layer being decided), ``action_mask`` (N, K),
``bit_choices`` and ``view``. The view gives the episode's shape (``layer``, ``num_layers``,
``bit_choices``, ``trained_bits``) and two requests: ``view.lookahead(rest_bits, rows)``, the
env's side-effect-free look-ahead, only for agents that declare ``uses_lookahead = True``
(anything else is refused with :class:`LookaheadAccessError`, and the bench fails the row), and
``view.labels``, only for agents that declare ``uses_label = True`` (the leaderboard marks them
as upper bounds; anything else gets :class:`LabelAccessError`).

Where an agent runs: ``abn-gym bench`` runs a user's agent (``module:Class``) and a model file
(``PATH.zip``) in a worker process of its own (:mod:`agents.controllers.worker`), spawned fresh,
which never holds the env, the engine, the labels, the data or the supernet: nothing the agent
receives, and nothing it can reach through attributes, frames, ``gc`` or ``sys.modules``, leads
to them. Look-ahead and labels are requests the bench process answers and counts. The built-in
baselines run in the bench process, and ``--isolation none`` runs every agent there: only for code
you trust, which could then reach the bench's state.

Decision cost: look-ahead passes are counted by the env itself. A user's agent that runs PyTorch
is *measured*: ``torch.utils.flop_counter.FlopCounterMode`` around ``act()`` (MACs = FLOPs / 2).
Built-in agents and SB3 models are measured from their layers. Otherwise the cost is *declared*:
``decision_macs_per_step`` (the agent's compute per decision) and ``decision_macs_per_episode``
(compute spent once per input), 0 when not declared. Each row says which (``decision_cost``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Protocol, runtime_checkable

import numpy as np

from abn_gym.vector import ABNVectorEnv
from supernets.foundation.errors import ABNGymError


@runtime_checkable
class Agent(Protocol):
    """What the benchmark needs from a controller (see the module docstring)."""

    name: str

    def reset(self, num_envs: int, seed: int) -> None:
        """Prepare for a batch of ``num_envs`` new episodes (seed its randomness)."""

    def act(self, obs: np.ndarray, infos: dict[str, Any]) -> np.ndarray:
        """One action index per episode for the layer ``infos["layer"]``."""


class AgentProtocolError(ABNGymError, TypeError):
    """A user-supplied agent does not follow :class:`Agent`."""


class AgentActionError(ABNGymError, ValueError):
    """An agent returned the wrong number of actions, or an action outside the env's range."""


class LabelAccessError(ABNGymError, PermissionError):
    """An agent read the labels without declaring ``uses_label = True``."""


class LookaheadAccessError(ABNGymError, PermissionError):
    """An agent called the look-ahead without declaring ``uses_lookahead = True``."""


def lookahead_refused(name: str) -> LookaheadAccessError:
    """The error for agent ``name`` calling the look-ahead without declaring it."""
    return LookaheadAccessError(
        f"agent {name!r} called the look-ahead (infos['view'].lookahead) without declaring uses_lookahead = True; "
        "declare it in the agent's class (its look-ahead passes are then counted in its decision cost), or do not "
        "call it"
    )


class AgentFailedError(ABNGymError, RuntimeError):
    """A user-supplied agent raised: the message names the agent, the exception and where it was raised."""


def check_agent(agent: Any) -> Any:
    """Return ``agent`` if it follows the protocol, else raise naming what is missing."""
    missing = [m for m in ("reset", "act") if not callable(getattr(agent, m, None))]
    if not isinstance(getattr(agent, "name", None), str):
        missing.append("name (a str attribute)")
    if missing:
        raise AgentProtocolError(
            f"{type(agent).__name__} is not an abn-gym agent: it lacks {', '.join(missing)}. An agent needs "
            "`name: str`, `reset(num_envs, seed)` and `act(obs, infos) -> actions` (see agents.controllers.base)."
        )
    return agent


class EnvView:
    """What a look-ahead agent may ask of the vector env during an episode.

    This view is handed to agents that run in the bench process (built-in baselines, and every
    agent under ``--isolation none``): trusted code. An agent in a worker gets
    :class:`agents.controllers.worker.AgentView` instead, which holds nothing of the env.

    Args:
        env: the native vector env the benchmark runs.
        allow_labels: whether :attr:`labels` may be read (agents with ``uses_label = True``).
        allow_lookahead: whether :meth:`lookahead` may be called (agents with ``uses_lookahead = True``).
        agent_name: the agent's name, for the refusal's message.
    """

    def __init__(
        self, env: ABNVectorEnv, allow_labels: bool = False, allow_lookahead: bool = True, agent_name: str = "agent"
    ) -> None:
        self._env, self._allow_labels = env, allow_labels
        self._allow_lookahead, self._agent_name = allow_lookahead, agent_name
        self.refused: LookaheadAccessError | None = None
        """The refusal of an undeclared look-ahead, kept: an agent that catches it still fails its row."""

    @property
    def layer(self) -> int:
        """Index of the layer the next action decides."""
        return self._env.engine.t

    @property
    def num_layers(self) -> int:
        """Number of switchable layers (steps per episode)."""
        return self._env.num_layers

    @property
    def bit_choices(self) -> tuple[int, ...]:
        """Bit-width of each action index."""
        return self._env.bit_choices

    @property
    def trained_bits(self) -> tuple[int, ...]:
        """Every bit-width the supernet can run (valid in look-ahead configurations)."""
        return self._env.engine.net.bit_choices

    def lookahead(self, rest_bits: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Logits if layers ``layer..`` ran at ``rest_bits`` (bit values); counted as decision cost."""
        if not self._allow_lookahead:
            self.refused = lookahead_refused(self._agent_name)
            raise self.refused
        return self._env.lookahead(rest_bits, rows)

    @property
    def labels(self) -> np.ndarray:
        """True labels of the current episodes (only for agents that declare ``uses_label``)."""
        if not self._allow_labels:
            raise LabelAccessError(
                "an agent read infos['view'].labels without declaring uses_label = True; declare it (the "
                "leaderboard then marks the agent as an upper bound), or do not read the labels"
            )
        return self._env.engine.labels.copy()


class BaseAgent(ABC):
    """Convenience base class: a name, a seeded generator, and no decision cost."""

    name = "agent"
    uses_label = False
    uses_lookahead = False
    stochastic = False
    decision_macs_per_step = 0
    decision_macs_per_episode = 0

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)

    def reset(self, num_envs: int, seed: int) -> None:
        """Reseed for a new batch of episodes."""
        self.num_envs = num_envs
        self.rng = np.random.default_rng(seed)

    @abstractmethod
    def act(self, obs: np.ndarray, infos: dict[str, Any]) -> np.ndarray:
        """One action index per episode."""


def highest_allowed(actions: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Each action lowered to the highest allowed one at or below it (allowed actions form a prefix)."""
    return np.minimum(actions, mask.sum(axis=1) - 1)
