"""Agents with one knob: a budget, a price or a trade-off weight, benchmarked as one curve.

``abn-gym bench --agents NAME@sweep`` evaluates such an agent at K operating points on the same
images and ranks the curve (see :mod:`agents.app.curves`). An agent takes part by following
:class:`SweepableAgent`: it names its knob and says which values to evaluate, and gives the agent
(and any env arguments, such as ``budget``) at each value.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from agents.controllers.base import Agent

DEFAULT_SWEEP_POINTS = 8
"""K, the operating points a curve is evaluated at unless ``--sweep-points`` says otherwise."""


@runtime_checkable
class SweepableAgent(Protocol):
    """An agent family with one knob, evaluated as a curve.

    Attributes:
        name: the curve's name (the row's name without ``@sweep``).
        sweep_parameter: what the knob is: "budget" (a cost fraction of all-8), "price" (the cost
            coefficient of a reward) or "weight" (the cost objective's weight in a linear scalarisation).

    Optionally, ``env_id``: the env id the points run on (with ``at``'s env arguments) instead of the
    bench's, e.g. a Budget id; it must have the bench's supernet and actions. The points are scored on
    correctness and cost only, so the reward may differ.
    """

    name: str
    sweep_parameter: str

    def sweep_values(self, k: int, low: float, high: float) -> list[float]:
        """K knob values whose operating points span cost fractions ``low`` .. ``high`` of all-8, cheapest first."""

    def at(self, value: float) -> tuple[Agent, dict[str, Any]]:
        """The agent at knob ``value``, and the env arguments it runs with there (e.g. ``{"budget": value}``)."""
