"""Escalation controller: cheap bits for every input, more bits for the inputs that need them.

The controller runs layers ``0..decide_at-1`` at ``low`` bits. At layer ``decide_at`` a small
MLP reads the env's observation and predicts, for this input, whether running the remaining
layers at ``high`` instead of ``low`` bits makes the prediction right ("helps"), wrong ("hurts"),
or changes nothing. It escalates when the predicted gain in correctness, p(helps) - p(hurts),
exceeds what the extra bits cost under the env's reward: ``cost_coef`` x the remaining layers'
extra BitOps / BitOps(all-8). That is the action with the highest expected return of the
default reward under the model: a contextual bandit at the decision layer, fitted by supervised
learning on rollouts of the train split (labels are used in training only, as rewards are).
``cost_coef`` moves the operating point along the accuracy-BitOps curve (``escalation@<c>``).

The decision costs one MLP evaluation per input, counted as ``decision_macs_per_episode``.
:mod:`agents.app.train_escalation` trains it (``abn-gym train-escalation``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from abn_gym.config import architecture, make_config
from abn_gym.registration import env_kwargs
from agents.controllers.base import BaseAgent
from supernets.foundation.errors import CheckpointError, UsageError
from supernets.foundation.files import safe_load

HURTS, SAME, HELPS = 0, 1, 2


class EscalationModel(nn.Module):
    """Standardised observation -> MLP -> logits of (hurts, same, helps)."""

    def __init__(self, obs_dim: int, hidden: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(obs_dim))
        self.register_buffer("scale", torch.ones(obs_dim))
        self.net = nn.Sequential(nn.Linear(obs_dim, hidden), nn.ReLU(), nn.Linear(hidden, 3))
        self.obs_dim, self.hidden = obs_dim, hidden

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Logits of (hurts, same, helps)."""
        return self.net((obs - self.mean) / self.scale)

    @torch.inference_mode()
    def gain(self, obs: np.ndarray) -> np.ndarray:
        """Predicted p(helps) - p(hurts) for each row of ``obs``."""
        p = self(torch.as_tensor(np.asarray(obs, dtype=np.float32))).softmax(1).numpy()
        return p[:, HELPS] - p[:, HURTS]

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one decision (standardisation counted as one per input)."""
        return self.obs_dim * (1 + self.hidden) + self.hidden * 3


def escalation_env_kwargs(env_id: str, supernet: str | None) -> dict[str, Any]:
    """The env's keyword arguments, with ``supernet`` instead of its own when given."""
    return env_kwargs(env_id) if supernet is None else env_kwargs(env_id, supernet=supernet)


def rest_cost_fraction(env_id: str, decide_at: int, low: int, high: int, supernet: str | None = None) -> float:
    """Extra BitOps of layers ``decide_at..`` at ``high`` instead of ``low``, as a fraction of all-8."""
    net = architecture(make_config(**escalation_env_kwargs(env_id, supernet)).supernet)
    extra = sum(net.layer_bitops(t, high) - net.layer_bitops(t, low) for t in range(decide_at, net.num_switchable))
    return float(extra / net.max_bitops)


class EscalationAgent(BaseAgent):
    """The escalation controller as a benchmark agent (see the module docstring).

    Args:
        policy: the dict saved by :func:`agents.app.train_escalation.train_escalation` (``policy.pt``).
        name: leaderboard name.
        cost_coef: BitOps price of escalating (default: the one it was trained with).
    """

    stochastic = False

    def __init__(self, policy: dict, name: str = "escalation", cost_coef: float | None = None) -> None:
        super().__init__()
        self.name = name
        self.model = EscalationModel(int(policy["obs_dim"]), int(policy["hidden"]))
        self.model.load_state_dict(policy["model"])
        self.model.eval()
        self.decide_at, self.low, self.high = int(policy["decide_at"]), int(policy["low"]), int(policy["high"])
        self.cost_coef = float(policy["cost_coef"] if cost_coef is None else cost_coef)
        self.threshold = self.cost_coef * float(policy["rest_cost_fraction"])
        self.decision_macs_per_episode = self.model.macs
        self.escalate = np.zeros(0, dtype=bool)

    def reset(self, num_envs: int, seed: int) -> None:
        """New batch: nothing escalated yet."""
        super().reset(num_envs, seed)
        self.escalate = np.zeros(num_envs, dtype=bool)

    def act(self, obs: np.ndarray, infos: dict[str, Any]) -> np.ndarray:
        """``low`` before the decision layer; from it on, ``high`` where the model says it pays."""
        choices = list(infos["bit_choices"])
        low = choices.index(self.low)
        t = int(infos["layer"])
        if t < self.decide_at:
            return np.full(len(obs), low, dtype=np.int64)
        if t == self.decide_at:
            self.escalate = self.model.gain(obs) > self.threshold
        return np.where(self.escalate, choices.index(self.high), low).astype(np.int64)


def load_policy(path: str | Path) -> dict:
    """A saved escalation policy, after checking it against its model card's sha256."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"agent {str(path)!r}: no such policy file")
    card_path = next((p for p in (path.with_suffix(".json"), path.parent / "card.json") if p.is_file()), None)
    if card_path is None:
        raise CheckpointError(f"policy {path} has no model card ({path.with_suffix('.json').name} or card.json)")
    card = json.loads(card_path.read_text())
    fix = "Restore it with `git checkout -- <path>`, or train it again with `abn-gym train-escalation`."
    policy = safe_load(path, expected_sha256=card.get("sha256"), fix=fix)
    if not isinstance(policy, dict) or policy.get("kind") != "escalation":
        raise CheckpointError(f"{path} is not an escalation policy saved by `abn-gym train-escalation`")
    return policy
