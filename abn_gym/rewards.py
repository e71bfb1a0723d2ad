"""Reward functions: a per-step BitOps cost plus a terminal correctness term.

All functions are vectorised over a batch of episodes (numpy in, numpy out) so the single env
and the batched vector env share them exactly. The multi-objective ids return the same two
parts as a vector (:func:`reward_vectors`); :attr:`RewardFn.scalar_weights` weighs it back into
the scalar reward.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REWARDS = ("default", "logprob", "blockdrop", "correct", "baseline", "agreement")
"""Names accepted by the ``reward`` keyword argument of the environments."""

OBJECTIVES = ("terminal", "cost")
"""The parts of a multi-objective reward vector, in order (see :func:`reward_vectors`)."""


@dataclass(frozen=True)
class RewardFn:
    """How an episode is scored.

    Args:
        kind: "default" (cost per step, +1 if correct at the end), "logprob" (cost per step,
            log-probability of the true class at the end, clipped at ``-logprob_clip``),
            "blockdrop" (nothing per step; 1 - used**2 if correct else -gamma at the end, where
            ``used`` is the episode's BitOps as a fraction of all-8), "correct" (1 if correct),
            "baseline" (cost per step; at the end, correctness minus the same image's correctness
            at the cheapest uniform configuration of the action set: a per-image baseline, so an
            image's difficulty cancels out and only the effect of the bits remains), or
            "agreement" (cost per step; +1 if the prediction equals the all-8 prediction of the
            same image: label-free).
        cost_coef: weight of the per-step BitOps cost (default and logprob).
        gamma: penalty of a wrong prediction (blockdrop).
        logprob_clip: lower clip of the log-probability term (logprob).
        reference_bits: the uniform bit-width whose prediction "baseline" and "agreement" compare
            with (set by :meth:`for_actions`).
        group_size: K > 1 makes the terminal term group-relative (GRPO, self-critical training):
            K consecutive episodes of a batch share one image, and each one's terminal term has the
            group's mean terminal term subtracted (see :func:`group_relative`).
    """

    kind: str = "default"
    cost_coef: float = 0.04
    gamma: float = 0.5
    logprob_clip: float = 10.0
    reference_bits: int | None = None
    group_size: int = 1

    def __post_init__(self) -> None:
        if self.kind not in REWARDS:
            raise ValueError(f"unknown reward {self.kind!r}; choose one of {list(REWARDS)}")
        if not np.isfinite(self.cost_coef) or self.cost_coef < 0:
            raise ValueError(f"cost_coef must be a finite number >= 0, got {self.cost_coef!r}")
        if self.kind in ("baseline", "agreement") and self.reference_bits is None:
            raise ValueError(f"reward {self.kind!r} needs reference_bits; build it with RewardFn.for_actions")
        if isinstance(self.group_size, bool) or not isinstance(self.group_size, int) or self.group_size < 1:
            raise ValueError(f"group_size must be an int >= 1, got {self.group_size!r}")

    @property
    def has_step_cost(self) -> bool:
        """Whether each step is charged its BitOps."""
        return self.kind in ("default", "logprob", "baseline", "agreement")

    @property
    def scalar_weights(self) -> np.ndarray:
        """w such that ``w @ reward_vector`` is this scalar reward at every step, bit for bit.

        The vector is (terminal term, -step cost): the rewards with a step cost weigh the cost by
        ``cost_coef``, the others ("correct") by 0.
        """
        self.check_vector_form()
        return np.array([1.0, self.cost_coef if self.has_step_cost else 0.0])

    def check_vector_form(self) -> None:
        """Refuse the rewards that the vector (terminal term, -step cost) cannot express (ValueError)."""
        if self.kind == "blockdrop":
            raise ValueError(
                "reward='blockdrop' has no multi-objective form: its terminal term 1 - f**2 already mixes accuracy "
                "with the episode's cost, so no weighting of (terminal term, -step cost) gives it; use "
                "reward='default' (or 'correct', 'logprob', 'baseline', 'agreement') with the mo- ids"
            )

    def terminal_bounds(self) -> tuple[float, float]:
        """The range of the terminal term (:meth:`terminal`): the first objective's bounds."""
        low, high = {"baseline": (-1.0, 1.0), "logprob": (-self.logprob_clip, 0.0)}.get(self.kind, (0.0, 1.0))
        if self.group_size > 1:  # a term minus its group's mean lies within +-(high - low)
            return low - high, high - low
        return low, high

    @classmethod
    def for_actions(
        cls,
        kind: str,
        cost_coef: float,
        gamma: float,
        bit_choices: tuple[int, ...],
        trained: tuple[int, ...],
        group_size: int = 1,
    ) -> RewardFn:
        """The reward of an env whose actions are ``bit_choices`` on a supernet trained for ``trained``."""
        reference = {"baseline": min(bit_choices), "agreement": max(trained)}.get(kind)
        return cls(kind, cost_coef, gamma, reference_bits=reference, group_size=group_size)

    def step(self, cost_fraction: np.ndarray) -> np.ndarray:
        """Per-step reward from the layer's BitOps as a fraction of the all-8 configuration."""
        if self.has_step_cost:
            return -self.cost_coef * cost_fraction
        return np.zeros_like(cost_fraction)

    def terminal(
        self,
        correct: np.ndarray,
        log_prob_label: np.ndarray,
        bitops_fraction: np.ndarray,
        prediction: np.ndarray | None = None,
        reference_prediction: np.ndarray | None = None,
        labels: np.ndarray | None = None,
    ) -> np.ndarray:
        """Reward added on the last step (``reference_prediction``: see :meth:`reference_bits`)."""
        term = self._terminal_term(correct, log_prob_label, bitops_fraction, prediction, reference_prediction, labels)
        return term if self.group_size == 1 else group_relative(term, self.group_size)

    def _terminal_term(
        self,
        correct: np.ndarray,
        log_prob_label: np.ndarray,
        bitops_fraction: np.ndarray,
        prediction: np.ndarray | None,
        reference_prediction: np.ndarray | None,
        labels: np.ndarray | None,
    ) -> np.ndarray:
        if self.kind == "baseline":
            return correct.astype(np.float64) - (reference_prediction == labels)
        if self.kind == "agreement":
            return (prediction == reference_prediction).astype(np.float64)  # type: ignore[union-attr]
        if self.kind in ("default", "correct"):
            return correct.astype(np.float64)
        if self.kind == "logprob":
            return np.maximum(log_prob_label.astype(np.float64), -self.logprob_clip)
        return np.where(correct, 1.0 - bitops_fraction**2, -self.gamma)


def group_relative(term: np.ndarray, group_size: int) -> np.ndarray:
    """``term`` minus the mean of its group: rows ``g*K .. g*K + K - 1`` form group g.

    The groups' rows share one image, so the image's difficulty cancels and only the effect of
    each episode's bit-widths remains (GRPO's group baseline, without the division by the
    standard deviation). For the rewards whose terminal term is the correctness ("default",
    "correct") or the agreement with all-8 ("agreement") this subtracts the group's mean
    correctness (agreement); for "baseline" the per-image reference cancels as well, so it
    equals "default"'s. A group whose episodes are all right, or all wrong, gets 0.

    Args:
        term: (N,) terminal terms, N a multiple of ``group_size``.
        group_size: K, the number of consecutive rows per group.
    """
    groups = term.reshape(-1, group_size)
    return (groups - groups.mean(axis=1, keepdims=True)).reshape(term.shape)


def reward_vectors(cost_fraction: np.ndarray, terminal: np.ndarray | None) -> np.ndarray:
    """(N, 2) multi-objective rewards: (terminal term, minus the step's cost fraction) per episode.

    Args:
        cost_fraction: (N,) the step's BitOps as a fraction of the all-8 configuration (what the
            scalar reward charges ``cost_coef`` times).
        terminal: (N,) the terminal term (:meth:`RewardFn.terminal`) on the last step, None before.
    """
    out = np.empty((len(cost_fraction), len(OBJECTIVES)))
    out[:, 0] = 0.0 if terminal is None else terminal
    np.negative(cost_fraction, out=out[:, 1])
    return out
