"""Reward functions: a per-step BitOps cost plus a terminal correctness term.

All functions are vectorised over a batch of episodes (numpy in, numpy out) so the single env
and the batched vector env share them exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REWARDS = ("default", "logprob", "blockdrop", "correct")
"""Names accepted by the ``reward`` keyword argument of the environments."""


@dataclass(frozen=True)
class RewardFn:
    """How an episode is scored.

    Args:
        kind: "default" (cost per step, +1 if correct at the end), "logprob" (cost per step,
            log-probability of the true class at the end, clipped at ``-logprob_clip``),
            "blockdrop" (nothing per step; 1 - used**2 if correct else -gamma at the end, where
            ``used`` is the episode's BitOps as a fraction of all-8), or "correct" (1 if correct).
        cost_coef: weight of the per-step BitOps cost (default and logprob).
        gamma: penalty of a wrong prediction (blockdrop).
        logprob_clip: lower clip of the log-probability term (logprob).
    """

    kind: str = "default"
    cost_coef: float = 0.04
    gamma: float = 0.5
    logprob_clip: float = 10.0

    def __post_init__(self) -> None:
        if self.kind not in REWARDS:
            raise ValueError(f"unknown reward {self.kind!r}; choose one of {list(REWARDS)}")
        if not np.isfinite(self.cost_coef) or self.cost_coef < 0:
            raise ValueError(f"cost_coef must be a finite number >= 0, got {self.cost_coef!r}")

    @property
    def has_step_cost(self) -> bool:
        """Whether each step is charged its BitOps."""
        return self.kind in ("default", "logprob")

    def step(self, cost_fraction: np.ndarray) -> np.ndarray:
        """Per-step reward from the layer's BitOps as a fraction of the all-8 configuration."""
        if self.has_step_cost:
            return -self.cost_coef * cost_fraction
        return np.zeros_like(cost_fraction)

    def terminal(self, correct: np.ndarray, log_prob_label: np.ndarray, bitops_fraction: np.ndarray) -> np.ndarray:
        """Reward added on the last step."""
        if self.kind in ("default", "correct"):
            return correct.astype(np.float64)
        if self.kind == "logprob":
            return np.maximum(log_prob_label.astype(np.float64), -self.logprob_clip)
        return np.where(correct, 1.0 - bitops_fraction**2, -self.gamma)
