"""Baseline controllers: random, fixed-b, static mixed precision, greedy look-ahead, label oracle."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agents.controllers.base import BaseAgent, highest_allowed


def _index_of(bits: int, bit_choices: Sequence[int]) -> int:
    """Action index of the largest bit-width in ``bit_choices`` not above ``bits``."""
    allowed = [i for i, b in enumerate(bit_choices) if b <= bits]
    return allowed[-1] if allowed else 0


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class RandomAgent(BaseAgent):
    """Uniformly random bit-width per layer (among the allowed ones)."""

    name = "random"
    stochastic = True

    def act(self, obs: np.ndarray, infos: dict[str, Any]) -> np.ndarray:
        """A random allowed action per episode."""
        allowed = infos["action_mask"].sum(axis=1)
        return (self.rng.random(len(obs)) * allowed).astype(np.int64)


class FixedAgent(BaseAgent):
    """Every layer at ``bits`` bits (the largest allowed bit-width at or below it).

    Args:
        bits: the bit-width of every layer.
    """

    def __init__(self, bits: int) -> None:
        super().__init__()
        self.bits = int(bits)
        self.name = f"fixed-{self.bits}"

    def act(self, obs: np.ndarray, infos: dict[str, Any]) -> np.ndarray:
        """The same action for every episode."""
        a = _index_of(self.bits, infos["bit_choices"])
        return highest_allowed(np.full(len(obs), a, dtype=np.int64), infos["action_mask"])


class StaticAgent(BaseAgent):
    """One layer-wise configuration shared by all inputs (HAQ-like static mixed precision).

    Args:
        config: bit-width of each switchable layer.
        name: leaderboard name, e.g. "static-4" for the search targeting uniform-4's BitOps.
    """

    def __init__(self, config: Sequence[int], name: str = "static") -> None:
        super().__init__()
        self.config = [int(b) for b in config]
        self.name = name

    def act(self, obs: np.ndarray, infos: dict[str, Any]) -> np.ndarray:
        """The configured bit-width of the current layer for every episode."""
        a = _index_of(self.config[infos["layer"]], infos["bit_choices"])
        return highest_allowed(np.full(len(obs), a, dtype=np.int64), infos["action_mask"])


def lowest_accepted(view, bit_choices: Sequence[int], n: int, accept, num_candidates: int, fallback: int) -> np.ndarray:
    """Per episode, the lowest action whose look-ahead (this layer at its bit-width, the rest at
    the top bit-width) ``accept(logits, rows)`` approves; ``fallback`` where none of the first
    ``num_candidates`` actions is approved. Rows stop being evaluated once decided."""
    rest = view.num_layers - view.layer
    top = max(view.trained_bits)
    choice = np.full(n, fallback, dtype=np.int64)
    undecided = np.arange(n)
    for a, b in enumerate(list(bit_choices)[:num_candidates]):
        if undecided.size == 0:
            break
        cfg = np.full((undecided.size, rest), top)
        cfg[:, 0] = b
        ok = accept(view.lookahead(cfg, undecided), undecided)
        choice[undecided[ok]] = a
        undecided = undecided[~ok]
    return choice


class GreedyAgent(BaseAgent):
    """Label-free look-ahead: the lowest bit-width that keeps the all-8 look-ahead's class.

    At each layer it looks ahead with the remaining layers at 8 bits: first with this layer at
    8 too (the reference class), then with this layer at each lower bit-width, lowest first,
    and takes the first one whose prediction keeps the reference class with softmax confidence
    at least ``tau``. Every look-ahead is counted in the decision cost.

    Args:
        tau: minimum softmax confidence of the kept class.
    """

    name = "greedy"
    uses_lookahead = True

    def __init__(self, tau: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= tau <= 1.0:
            raise ValueError(f"tau must be in [0, 1], got {tau}")
        self.tau = float(tau)

    def reset(self, num_envs: int, seed: int) -> None:
        """New batch: forget the cached reference classes."""
        super().reset(num_envs, seed)
        self._target: np.ndarray | None = None
        self._stale: np.ndarray | None = None

    def act(self, obs: np.ndarray, infos: dict[str, Any]) -> np.ndarray:
        """Lowest acceptable bit-width per episode (the top one when none is)."""
        view, bits, n = infos["view"], list(infos["bit_choices"]), len(obs)
        rest, top = view.num_layers - view.layer, max(view.trained_bits)
        # The all-8 look-ahead's class only needs computing once per episode: an accepted
        # candidate's look-ahead *is* the next layer's all-8 look-ahead, and it kept the class.
        if view.layer == 0 or self._target is None:
            self._target, self._stale = np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)
        rows = np.flatnonzero(self._stale)
        if rows.size:
            self._target[rows] = view.lookahead(np.full((rows.size, rest), top), rows).argmax(axis=1)
        target = self._target

        def accept(logits: np.ndarray, rows: np.ndarray) -> np.ndarray:
            probs = _softmax(logits)
            return (probs.argmax(axis=1) == target[rows]) & (probs.max(axis=1) >= self.tau)

        fallback = len(bits) - 1
        choice = lowest_accepted(view, bits, n, accept, fallback, fallback)
        final = highest_allowed(choice, infos["action_mask"])
        # Rows whose next all-8 look-ahead was not evaluated here need a fresh reference.
        self._stale = (final != choice) | ((choice == fallback) & (bits[fallback] != top))
        return final


class OracleAgent(BaseAgent):
    """Uses the label: the lowest bit-width whose all-8 look-ahead still classifies correctly.

    An upper bound on what per-input control can reach, not a deployable controller. Whenever
    fixed-8 is right, every prefix it chooses keeps an all-8 continuation that is right, so its
    accuracy is never below fixed-8's; where no bit-width helps it takes the cheapest.
    """

    name = "oracle"
    uses_label = True
    uses_lookahead = True

    def act(self, obs: np.ndarray, infos: dict[str, Any]) -> np.ndarray:
        """Cheapest bit-width that keeps a correct continuation (the cheapest overall when none does)."""
        view, bits, n = infos["view"], infos["bit_choices"], len(obs)
        labels = view.labels

        def accept(logits: np.ndarray, rows: np.ndarray) -> np.ndarray:
            return logits.argmax(axis=1) == labels[rows]

        choice = lowest_accepted(view, bits, n, accept, len(bits), 0)
        return highest_allowed(choice, infos["action_mask"])
