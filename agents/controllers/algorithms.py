"""The one list of the SB3 / sb3-contrib algorithms abn-gym trains, and the names each goes by.

``abn-gym train --algo``, the SB3 agent, the zoo (whose hyper-parameter sections use rl-zoo3's
names), the agent registry and the command line's choices all read it from here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from supernets.foundation.errors import UnknownNameError


@dataclass(frozen=True)
class Algorithm:
    """One trainable algorithm.

    Args:
        name: abn-gym's ``--algo`` name (and the card's ``algo``).
        rl_zoo3: rl-zoo3's ``--algo`` name: the section name in ``agents/hyperparams/zoo.yml``.
        module: the package that holds the class (imported on first use: sb3-contrib is slow to import).
        cls: the class name in ``module``.
        family: which of ``abn-gym train``'s hyper-parameters it takes: "ppo", "a2c", "trpo" or "dqn".
        recurrent: its policy keeps a hidden state across the steps of an episode.
        in_rl_zoo3: rl-zoo3 has it (MaskablePPO it has not: only ``abn-gym zoo`` trains that section).
        masked: it needs the env's action masks (a Budget id's).
    """

    name: str
    rl_zoo3: str
    module: str
    cls: str
    family: str
    recurrent: bool = False
    in_rl_zoo3: bool = True
    masked: bool = False


ALGORITHMS = (
    Algorithm("ppo", "ppo", "stable_baselines3", "PPO", "ppo"),
    Algorithm("a2c", "a2c", "stable_baselines3", "A2C", "a2c"),
    Algorithm("dqn", "dqn", "stable_baselines3", "DQN", "dqn"),
    Algorithm("maskable-ppo", "ppo_mask", "sb3_contrib", "MaskablePPO", "ppo", in_rl_zoo3=False, masked=True),
    Algorithm("qrdqn", "qrdqn", "sb3_contrib", "QRDQN", "dqn"),
    Algorithm("trpo", "trpo", "sb3_contrib", "TRPO", "trpo"),
    Algorithm("recurrent-ppo", "ppo_lstm", "sb3_contrib", "RecurrentPPO", "ppo", recurrent=True),
)
"""Every algorithm, in the order ``--help`` and error messages list them."""
ALGOS = tuple(a.name for a in ALGORITHMS)
"""abn-gym's ``--algo`` names."""
RECURRENT = tuple(a.name for a in ALGORITHMS if a.recurrent)
"""Algorithms whose policy keeps a hidden state across the steps of an episode."""
RL_ZOO3_ALGOS = {a.rl_zoo3: a.name for a in ALGORITHMS}
"""Section name in zoo.yml (rl-zoo3's ``--algo`` name) -> abn-gym's ``--algo`` name."""


def algorithm(name: str) -> Algorithm:
    """The algorithm of an ``--algo`` name.

    Args:
        name: abn-gym's name, e.g. "maskable-ppo".
    """
    for a in ALGORITHMS:
        if a.name == name:
            return a
    raise UnknownNameError(f"unknown algo {name!r}; choose one of {list(ALGOS)}")


def by_rl_zoo3_name(name: str) -> Algorithm:
    """The algorithm of an rl-zoo3 name (a zoo.yml section), e.g. "ppo_mask".

    Args:
        name: rl-zoo3's name.
    """
    return algorithm(RL_ZOO3_ALGOS[name]) if name in RL_ZOO3_ALGOS else algorithm(name)


def algo_class(name: str) -> type:
    """The SB3 class of an ``--algo`` name (its package is imported now).

    Args:
        name: abn-gym's name, e.g. "ppo".
    """
    a = algorithm(name)
    return getattr(importlib.import_module(a.module), a.cls)
