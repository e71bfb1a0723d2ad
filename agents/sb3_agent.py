"""Plug stable-baselines3 models into the agent protocol, with their decision cost counted."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from agents.base import BaseAgent, highest_allowed

ALGOS = ("ppo", "a2c", "dqn", "maskable-ppo", "qrdqn", "trpo", "recurrent-ppo")
RECURRENT = ("recurrent-ppo",)
"""Algorithms whose policy keeps a hidden state across the steps of an episode."""


_ALGO_CLASSES = {
    "ppo": ("stable_baselines3", "PPO"),
    "a2c": ("stable_baselines3", "A2C"),
    "dqn": ("stable_baselines3", "DQN"),
    "maskable-ppo": ("sb3_contrib", "MaskablePPO"),
    "qrdqn": ("sb3_contrib", "QRDQN"),
    "trpo": ("sb3_contrib", "TRPO"),
    "recurrent-ppo": ("sb3_contrib", "RecurrentPPO"),
}
"""``--algo`` name -> (module, class); imported on first use, since sb3-contrib is slow to import."""


def algo_class(algo: str) -> type:
    """The SB3 class of an ``--algo`` name."""
    if algo not in _ALGO_CLASSES:
        raise ValueError(f"unknown algo {algo!r}; choose one of {list(ALGOS)}")
    module, name = _ALGO_CLASSES[algo]
    return getattr(importlib.import_module(module), name)


def _linear_macs(module: nn.Module | None) -> int:
    if module is None:
        return 0
    return sum(m.in_features * m.out_features for m in module.modules() if isinstance(m, nn.Linear))


def _lstm_macs(module: nn.Module | None) -> int:
    """MACs of one LSTM step: four gates, each over the input and the hidden state."""
    if not isinstance(module, nn.LSTM):
        return 0
    macs, size = 0, module.input_size
    for _ in range(module.num_layers):
        macs += 4 * module.hidden_size * (size + module.hidden_size)
        size = module.hidden_size
    return macs


def policy_macs(model: Any) -> int:
    """MACs of one action decision: the layers between observation and action (no value head)."""
    policy = model.policy
    if hasattr(policy, "q_net"):  # DQN
        return _linear_macs(policy.q_net)
    if hasattr(policy, "quantile_net"):  # QR-DQN
        return _linear_macs(policy.quantile_net)
    extractor = getattr(policy, "mlp_extractor", None)
    return (
        _lstm_macs(getattr(policy, "lstm_actor", None))  # RecurrentPPO
        + _linear_macs(getattr(extractor, "policy_net", None))
        + _linear_macs(getattr(policy, "action_net", None))
    )


class SB3Agent(BaseAgent):
    """A trained SB3 model as a leaderboard agent (deterministic actions by default).

    Args:
        model: an SB3 or sb3-contrib model (PPO, A2C, DQN, MaskablePPO, QR-DQN, TRPO, RecurrentPPO).
        name: leaderboard name.
        deterministic: take the most likely action instead of sampling.
    """

    def __init__(self, model: Any, name: str = "ppo", deterministic: bool = True) -> None:
        super().__init__()
        self.model, self.name, self.deterministic = model, name, deterministic
        self.stochastic = not deterministic
        self.decision_macs_per_step = policy_macs(model)
        self._maskable = type(model).__name__ == "MaskablePPO"
        self._recurrent = type(model).__name__ == "RecurrentPPO"
        self._state: Any = None
        self._starts = np.ones(0, dtype=bool)

    def reset(self, num_envs: int, seed: int) -> None:
        """New episodes: a recurrent policy starts from a fresh hidden state."""
        super().reset(num_envs, seed)
        self._state, self._starts = None, np.ones(num_envs, dtype=bool)

    @classmethod
    def load(cls, path: str | Path, algo: str = "ppo", name: str | None = None) -> SB3Agent:
        """Load a saved model zip."""
        model = algo_class(algo).load(str(path), device="cpu")
        return cls(model, name or algo)

    def act(self, obs: np.ndarray, infos: dict[str, Any]) -> np.ndarray:
        """The policy's action per episode, lowered to the allowed range."""
        if self._maskable:
            actions, _ = self.model.predict(obs, deterministic=self.deterministic, action_masks=infos["action_mask"])
        elif self._recurrent:
            if len(self._starts) != len(obs):
                self._state, self._starts = None, np.ones(len(obs), dtype=bool)
            actions, self._state = self.model.predict(
                obs, state=self._state, episode_start=self._starts, deterministic=self.deterministic
            )
            self._starts = np.zeros(len(obs), dtype=bool)
        else:
            actions, _ = self.model.predict(obs, deterministic=self.deterministic)
        return highest_allowed(np.asarray(actions, dtype=np.int64).reshape(len(obs)), infos["action_mask"])
