"""What a budget allows: the cost of a step's span of layers, the cheapest rest, and fitting an action.

The engine prices each step with a cost table (:mod:`supernets.costs`). Kept apart from
:mod:`abn_gym.engine` so that the rules for tables whose costs do not rise with the bits (a
measured latency table) sit in one place, beside the fast rules for those whose costs do.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def spans(per_layer: np.ndarray, points: Sequence[int]) -> tuple[np.ndarray, list[int]]:
    """(span, next_layer): ``span[p]`` is the cost of layers p .. next_layer[p] - 1 at each action.

    A step at decision point p runs every layer up to the next point at one bit-width; rows that
    are not decision points keep their layer's own cost (never read). Without ``decide_at`` every
    layer is a point and ``span`` equals ``per_layer``.
    """
    num_layers = len(per_layer)
    span, next_layer = per_layer.copy(), list(range(1, num_layers + 1))
    for p, end in zip(points, (*points[1:], num_layers)):
        next_layer[p] = end
        span[p] = per_layer[p:end].sum(axis=0)
    return span, next_layer


def is_monotone(per_layer: np.ndarray) -> bool:
    """Whether no layer's cost falls as its bit-width rises (BitOps, BitFusion; not every measured table)."""
    return bool(np.all(np.diff(per_layer, axis=1) >= 0))


def min_rest(
    cost: np.ndarray, span_cost: np.ndarray, points: Sequence[int], next_layer: list[int], monotone: bool
) -> np.ndarray:
    """(L + 1,) the cheapest cost fraction of the steps from each decision point on; entry L is 0.

    Monotone costs: the cumulative sum of the cheapest column, as the engine always computed it
    (so the default path's floats are unchanged). Otherwise per decision point, the cheapest
    action of each later step, since a step's layers share one width.
    """
    if monotone:
        return np.concatenate([np.cumsum(cost[::-1, 0])[::-1], [0.0]])
    rest = np.zeros(len(cost) + 1)
    for p in reversed(points):
        rest[p] = span_cost[p].min() + rest[next_layer[p]]
    return rest


def fit(mask: np.ndarray, actions: np.ndarray, cheapest: int) -> tuple[np.ndarray, np.ndarray]:
    """(clipped, actions): each action the mask refuses lowered to the highest allowed one below it.

    For costs that are not monotone, where the allowed actions need not be a prefix; with no
    allowed action below, the step's cheapest one (always allowed).
    """
    clipped = ~mask[np.arange(len(actions)), actions]
    if clipped.any():
        actions = actions.copy()
        for r in np.flatnonzero(clipped):
            below = np.flatnonzero(mask[r, : actions[r]])
            actions[r] = below[-1] if below.size else cheapest
    return clipped, actions
