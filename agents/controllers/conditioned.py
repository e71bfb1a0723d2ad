"""Conditioned policies: one trained policy for every budget or every trade-off, benchmarked as one curve.

Two kinds follow :class:`agents.controllers.sweeps.SweepableAgent`:

- ``ppo-budget``: a MaskablePPO policy trained on a Budget id with a budget drawn per episode
  (``abn-gym train --algo maskable-ppo --budget LOW,HIGH``), swept by
  :class:`agents.controllers.sweepables.BudgetSweep`: the budget is in its observation and the
  env's action mask enforces it, so the knob is the env's ``budget``.
- :class:`EnvelopeSweep` (``envelope``): a multi-objective Q-network trained by morl-baselines'
  Envelope on an ``mo-`` id (:mod:`agents.app.train_morl`). It takes the objectives' weight vector
  ``w`` as an input beside the observation and acts ``argmax_a w . Q(s, a, w)``; the knob is the
  cost objective's weight. The network is rebuilt here in plain torch from a state dict loaded with
  ``weights_only=True``: morl-baselines is needed to train it, never to run it.

Each card carries a ``calibration``: the mean cost (fraction of all-8) the policy spent on val at a
grid of knob values. ``sweep_values`` reads the knob values for a cost range from it, so a curve's
points span the range whatever the knob's units.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from agents.controllers.base import AgentActionError, BaseAgent, highest_allowed
from agents.controllers.sweepables import calibrated_values
from supernets.foundation.errors import CheckpointError, UsageError
from supernets.foundation.files import safe_load

ENVELOPE_KIND = "envelope"
"""The ``kind`` of a policy file saved by :mod:`agents.app.train_morl`."""


class MOQNet(nn.Module):
    """Standardised observation and weight vector -> Q(s, a, w), one value per action and objective.

    The layers are those of morl-baselines' Envelope ``QNet`` for vector observations (an MLP on the
    concatenation of observation and weight, ReLU between layers), with the same state-dict keys
    (``net.<i>.weight``), so its trained weights load unchanged.

    Args:
        obs_dim: length of the observation.
        action_dim: number of actions.
        reward_dim: number of objectives.
        net_arch: hidden layer sizes.
    """

    def __init__(self, obs_dim: int, action_dim: int, reward_dim: int, net_arch: list[int]) -> None:
        super().__init__()
        self.obs_dim, self.action_dim, self.reward_dim = obs_dim, action_dim, reward_dim
        self.net_arch = list(net_arch)
        self.register_buffer("obs_mean", torch.zeros(obs_dim))
        self.register_buffer("obs_scale", torch.ones(obs_dim))
        sizes = [obs_dim + reward_dim, *net_arch]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(sizes):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], action_dim * reward_dim))
        self.net = nn.Sequential(*layers)

    def standardise(self, obs: torch.Tensor) -> torch.Tensor:
        """The observation as the network saw it in training."""
        return (obs - self.obs_mean) / self.obs_scale

    def forward(self, obs: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Q values, (batch, actions, objectives), of standardised observations ``obs`` under weights ``w``."""
        if w.dim() == 1:
            w = w.expand(obs.shape[0], -1)
        return self.net(torch.cat((obs, w), dim=-1)).view(-1, self.action_dim, self.reward_dim)

    @torch.inference_mode()
    def actions(self, obs: np.ndarray, w: np.ndarray) -> np.ndarray:
        """``argmax_a w . Q(s, a, w)`` for each raw observation row (first action on ties, as torch.argmax)."""
        x = self.standardise(torch.as_tensor(np.asarray(obs, dtype=np.float32)))
        wt = torch.as_tensor(np.asarray(w, dtype=np.float32))
        q = self(x, wt)
        return torch.einsum("r,bar->ba", wt, q).argmax(dim=1).numpy().astype(np.int64)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one decision (standardisation and the weighting counted once per input)."""
        linear = sum(m.in_features * m.out_features for m in self.net if isinstance(m, nn.Linear))
        return self.obs_dim + linear + self.action_dim * self.reward_dim


def envelope_network(policy: dict[str, Any]) -> MOQNet:
    """The network of a saved Envelope policy (:func:`load_envelope_policy`), weights loaded, in eval mode."""
    net = MOQNet(int(policy["obs_dim"]), int(policy["action_dim"]), int(policy["reward_dim"]), policy["net_arch"])
    state = dict(policy["q_net"])  # QNet's own keys: net.<i>.weight, net.<i>.bias
    state.update(obs_mean=policy["obs_mean"], obs_scale=policy["obs_scale"])
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"the Envelope policy's weights do not fit its recorded shapes: {exc}") from None
    return net.eval()


def read_card(path: Path) -> dict[str, Any]:
    """The JSON model card beside a policy file (``NAME.json``, else ``card.json``)."""
    card_path = next((p for p in (path.with_suffix(".json"), path.parent / "card.json") if p.is_file()), None)
    if card_path is None:
        raise CheckpointError(f"policy {path} has no model card ({path.with_suffix('.json').name} or card.json)")
    return json.loads(card_path.read_text())


def load_envelope_policy(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A saved Envelope policy and its card, after checking the file against the card's sha256."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"agent {str(path)!r}: no such policy file; train one with `python -m agents.app.train_morl`")
    card = read_card(path)
    fix = "Restore it with `git checkout -- <path>`, or train it again with the command in its card."
    policy = safe_load(path, expected_sha256=card.get("sha256"), fix=fix)
    if not isinstance(policy, dict) or policy.get("kind") != ENVELOPE_KIND:
        raise CheckpointError(f"{path} is not an Envelope policy saved by `python -m agents.app.train_morl`")
    return policy, card


def weight_vector(weight: float, reward_dim: int = 2) -> np.ndarray:
    """``[1 - weight, weight]``: the objectives' weights for a cost weight in [0, 1] (two objectives)."""
    if reward_dim != 2:
        raise UsageError(f"a cost weight sets the weights of two objectives; this policy has {reward_dim}")
    if not 0.0 <= weight <= 1.0:
        raise UsageError(f"the cost objective's weight must be in [0, 1], got {weight}")
    return np.array([1.0 - weight, weight])


class EnvelopeAgent(BaseAgent):
    """An Envelope policy at one weight vector, as a benchmark agent.

    It decides at its training env's ``decide_at`` layers and repeats its last decision in between
    (as :class:`~agents.controllers.sb3_agent.SB3Agent` does), so it runs on the plain env.

    Args:
        policy: the dict saved by :mod:`agents.app.train_morl` (:func:`load_envelope_policy`).
        weight: the cost objective's weight (:func:`weight_vector`).
        name: leaderboard name.
    """

    def __init__(self, policy: dict[str, Any], weight: float, name: str = "envelope") -> None:
        super().__init__()
        self.name = name
        self.net = envelope_network(policy)
        self.w = weight_vector(weight, int(policy["reward_dim"]))
        self.bits = [int(b) for b in policy["bit_choices"]]
        self.decide_at = None if policy.get("decide_at") is None else [int(t) for t in policy["decide_at"]]
        per_decision = self.net.macs
        self.decision_macs_per_step = per_decision if self.decide_at is None else 0
        self.decision_macs_per_episode = 0 if self.decide_at is None else per_decision * len(self.decide_at)
        self._last = np.zeros(0, dtype=np.int64)

    def reset(self, num_envs: int, seed: int) -> None:
        """New batch: no decision made yet."""
        super().reset(num_envs, seed)
        self._last = np.zeros(0, dtype=np.int64)

    def act(self, obs: np.ndarray, infos: dict[str, Any]) -> np.ndarray:
        """``argmax_a w . Q(s, a, w)`` at a decision layer, mapped to the env's actions; else the last one."""
        mask = infos["action_mask"]
        n = len(mask)
        if self.decide_at is not None and infos.get("layer") not in self.decide_at and len(self._last) == n:
            return highest_allowed(self._last, mask)
        choices = [int(b) for b in infos["bit_choices"]]
        missing = sorted(set(self.bits) - set(choices))
        if missing:
            raise AgentActionError(
                f"agent {self.name!r} chooses among {self.bits} bits, but this env's actions are {choices}: "
                "benchmark it on an env whose bit_choices include them"
            )
        mine = self.net.actions(obs, self.w)
        index = np.array([choices.index(b) for b in self.bits], dtype=np.int64)
        self._last = highest_allowed(index[mine], mask)
        return self._last


class EnvelopeSweep:
    """The ``envelope`` curve: one Envelope policy at K cost weights (:class:`SweepableAgent`).

    Args:
        path: the policy file (``.pt``) with its card (``.json``) beside it.
        name: the curve's name.
    """

    sweep_parameter = "weight"

    def __init__(self, path: str | Path, name: str = "envelope") -> None:
        self.name = name
        self.path = Path(path)
        self.policy, self.card = load_envelope_policy(self.path)

    def sweep_values(self, k: int, low: float, high: float) -> list[float]:
        """K cost weights whose val costs span ``low`` .. ``high``, cheapest (largest weight) first."""
        return calibrated_values(self.card.get("calibration") or [], k, low, high)

    def at(self, value: float) -> tuple[EnvelopeAgent, dict[str, Any]]:
        """The policy at cost weight ``value``; it needs no env arguments."""
        return EnvelopeAgent(self.policy, value, f"{self.name}@{value:g}"), {}
