"""The built-in agents benchmarked as curves (``NAME@sweep``): the escalation controller and budget models.

- :class:`EscalationSweep` (``escalation@sweep``, ``PATH.pt@sweep``): the knob is the BitOps price
  of ``escalation@<c>``. Its K prices come from a calibration on the first val images: the
  controller escalates an input when its predicted gain exceeds ``c`` x the extra cost of
  escalating, so the share of inputs escalated at price c is the share of gains above that
  threshold, and the mean cost is all-low's plus that share times the extra cost. For each of K
  targets evenly spaced over the cost range, the price whose threshold sits between the two
  calibration gains that escalate the target's share is chosen. A target beyond what the
  controller can reach (below all-low, above escalating every input) gets the nearest end. A
  negative price escalates inputs even where the model predicts harm: the top of the range.
- :class:`BudgetSweep` (``PATH.zip@sweep``, ``ppo-budget@sweep``): a model trained on a Budget id
  reads its budget from the observation; the knob is the env's ``budget`` (a cost fraction of
  all-8, which caps every episode's cost). With a calibration in its card (``[budget, val cost]``
  pairs, written by ``python -m agents.app.conditioned_eval --publish``) the K budgets are those
  whose val costs are evenly spaced over the cost range (:func:`calibrated_values`), inside the
  trained budget range; without one, the K budgets themselves are evenly spaced.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from abn_gym.registration import env_kwargs
from abn_gym.vector import ABNVectorEnv
from agents.controllers.base import Agent
from agents.controllers.escalation import EscalationAgent
from supernets.foundation.errors import CheckpointError, UsageError

CALIBRATION_IMAGES = 500
"""Val images the escalation controller's gains are measured on to choose its K prices."""


def _targets(k: int, low: float, high: float) -> np.ndarray:
    """K cost fractions evenly spaced from ``low`` to ``high`` (one point: the middle)."""
    return np.linspace(low, high, k) if k > 1 else np.array([(low + high) / 2])


def calibrated_values(calibration: list[list[float]], k: int, low: float, high: float) -> list[float]:
    """K knob values whose val costs (from ``calibration``) run from ``low`` to ``high``, cheapest first.

    Args:
        calibration: ``[knob value, mean cost fraction, ...]`` rows measured on val.
        k: the number of values.
        low: the cheapest cost fraction wanted.
        high: the costliest cost fraction wanted.
    """
    if k < 1:
        raise UsageError(f"a curve needs at least one point, got K={k}")
    if not high >= low:
        raise UsageError(f"a curve's cost range needs low <= high, got {low}..{high}")
    table = np.array([row[:2] for row in sorted(calibration, key=lambda p: (p[1], p[0]))], dtype=np.float64)
    if table.ndim != 2 or len(table) < 2:
        raise CheckpointError("a conditioned policy's card needs a calibration of at least two knob values")
    costs = np.maximum.accumulate(table[:, 1])  # a non-decreasing x for np.interp
    values = np.interp(_targets(k, low, high), costs, table[:, 0])
    return [float(round(v, 6)) for v in values]


class EscalationSweep:
    """The escalation controller at K BitOps prices (see the module docstring).

    Args:
        policy: the saved controller (:func:`agents.controllers.escalation.load_policy`).
        env_id: the benchmarked env.
        overrides: its env arguments that differ from the id's.
        name: the curve's name.
        images: val images of the calibration.
        source: the policy's file (what a rerun of an interrupted bench checks), if any.
    """

    sweep_parameter = "price"

    def __init__(
        self,
        policy: dict,
        env_id: str,
        overrides: dict[str, Any],
        name: str = "escalation",
        images: int = CALIBRATION_IMAGES,
        source: str | None = None,
    ) -> None:
        self.policy, self.env_id, self.overrides, self.name, self.images = policy, env_id, overrides, name, images
        self.source = source
        self._calibration: tuple[np.ndarray, float, float] | None = None

    def calibrate(self) -> tuple[np.ndarray, float, float]:
        """(gains of the calibration images, highest first; all-low's mean cost; escalating's mean extra cost)."""
        if self._calibration is None:
            agent = EscalationAgent(self.policy)
            kwargs = env_kwargs(self.env_id, **self.overrides)
            kwargs.update(split="val", sampling="sequential")
            size = min(self.images, len(ABNVectorEnv(1, **kwargs).engine.split))
            costs, gains = [], np.zeros(0)
            for escalate in (False, True):
                env = ABNVectorEnv(size, **kwargs)
                obs, _ = env.reset(seed=0, options={"index": np.arange(size)})
                choices = list(env.bit_choices)
                while not env.engine.done:
                    if env.engine.t == agent.decide_at:
                        gains = agent.model.gain(obs)
                    bits = agent.high if escalate and env.engine.t >= agent.decide_at else agent.low
                    obs, _, _, _, info = env.step(np.full(size, choices.index(bits), dtype=np.int64))
                costs.append(float(np.mean(info["bitops_fraction"])))
            self._calibration = (np.sort(gains)[::-1], costs[0], costs[1] - costs[0])
        return self._calibration

    def sweep_values(self, k: int, low: float, high: float) -> list[float]:
        """K prices whose operating points span cost fractions ``low`` .. ``high`` on the calibration images."""
        gains, base, extra = self.calibrate()
        n = len(gains)
        shares = np.clip((_targets(k, low, high) - base) / max(extra, 1e-12), 0.0, 1.0)
        prices = []
        for m in np.round(shares * n).astype(int):
            if m == 0:
                threshold = gains[0] + 1e-6  # no calibration gain above it
            elif m == n:
                threshold = gains[-1] - 1e-6
            else:
                threshold = (gains[m - 1] + gains[m]) / 2
            prices.append(float(threshold / float(self.policy["rest_cost_fraction"])))
        # Cheapest first: the highest price escalates the fewest inputs.
        return prices

    def at(self, value: float) -> tuple[Agent, dict[str, Any]]:
        """``escalation@<value>``, on the bench's env."""
        return EscalationAgent(self.policy, f"{self.name}@{value:.6g}", value), {}


class BudgetSweep:
    """A model trained on a Budget id at K budgets (see the module docstring).

    Args:
        agent: the model as an agent (in a worker process, or here).
        name: the curve's name.
        env_args: the model's env arguments (its card's), less the budget: every point runs on them.
        env_id: the model's env id (its card's), where the points run.
        calibration: the card's ``[budget, val cost fraction, ...]`` rows, if any.
        budget_range: the (low, high) budgets the model was trained on, if known: no budget outside it.
    """

    sweep_parameter = "budget"

    def __init__(
        self,
        agent: Agent,
        name: str,
        env_args: dict[str, Any],
        env_id: str,
        calibration: list[list[float]] | None = None,
        budget_range: tuple[float, float] | None = None,
    ) -> None:
        self.agent, self.name, self.env_args, self.env_id = agent, name, env_args, env_id
        self.calibration, self.budget_range = calibration, budget_range
        self.source: str | None = None  # the model file, when the curve may be reused on resume

    def sweep_values(self, k: int, low: float, high: float) -> list[float]:
        """K budgets for cost fractions ``low`` .. ``high``: calibrated when the card can, else evenly spaced."""
        if self.calibration:
            values = calibrated_values(self.calibration, k, low, high)
        else:  # each budget caps every image's cost, so a point's mean cost is its budget or less
            values = [float(b) for b in _targets(k, low, high)]
        lo, hi = self.budget_range or (-np.inf, np.inf)
        return [float(min(max(v, lo), hi)) for v in values]

    def at(self, value: float) -> tuple[Agent, dict[str, Any]]:
        """The model, on its own env with ``budget=value``."""
        return self.agent, {**self.env_args, "budget": float(value)}
