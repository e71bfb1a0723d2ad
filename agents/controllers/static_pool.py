"""The static search's pool: every configuration its descents visited, and the rows picked from it.

The static search (:mod:`agents.controllers.static_configs`) descends from several uniform
starting points and pools every configuration it scores. The ``static-<b>`` rows are picked from
the pool's *front*: the configurations that no other configuration of the pool, and no uniform
(``fixed-b``) configuration, dominates. A configuration is dominated by another when the other's
val accuracy is at least as high at a cost no higher; of two configurations with the same cost and
accuracy, only the first found stays (a uniform one before any other). Uniform configurations are
the ``fixed-b`` rows, so they are never picked as a static row.

Each cost target takes the most accurate front configuration within its cost. Where that is the
row of a cheaper target already (no configuration that costs more scores higher), the target gets
no row; neither does a target within whose cost the front holds nothing. Such a target is
``unmet``, with the reason. So the rows are pairwise distinct, no row is dominated by another or by
a ``fixed-b`` row, and each ``static-<b>`` is still the most accurate configuration found as cheap as
uniform-b, but for a ``fixed-b`` row that is at least as accurate for no more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

UNDOMINATED = (
    "no configuration the search found within this cost is more accurate than a fixed-b row that costs no more"
)
"""Why a target has no row when the front holds nothing within its cost."""


class Pool:
    """Scored configurations in the order they were found: config -> (cost, val accuracy)."""

    def __init__(self) -> None:
        self.scores: dict[tuple[int, ...], tuple[float, float]] = {}

    def add(self, config: Sequence[int], cost: float, accuracy: float) -> None:
        """Record a configuration (its first score stays: the search is deterministic)."""
        self.scores.setdefault(tuple(int(b) for b in config), (float(cost), float(accuracy)))

    def __len__(self) -> int:
        return len(self.scores)

    def front(self) -> list[tuple[tuple[int, ...], float, float]]:
        """(config, cost, accuracy) of every non-uniform configuration no other one dominates, cheapest first.

        Along the front, cost and accuracy both rise strictly.
        """
        found = {config: k for k, config in enumerate(self.scores)}

        def rank(config: tuple[int, ...]) -> tuple:
            cost, acc = self.scores[config]
            return cost, -acc, not is_uniform(config), found[config]

        front, best = [], float("-inf")
        for config in sorted(self.scores, key=rank):
            cost, acc = self.scores[config]
            if acc > best:
                best = acc
                if not is_uniform(config):
                    front.append((config, cost, acc))
        return front


def is_uniform(config: Sequence[int]) -> bool:
    """Every layer at the same bit-width: a ``fixed-b`` row."""
    return len(set(config)) == 1


def pick(
    front: Sequence[tuple[tuple[int, ...], float, float]], goal: Mapping[str, float]
) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """Each target's row: the most accurate front configuration within its cost, unless a cheaper target has it.

    Args:
        front: :meth:`Pool.front`, cheapest first.
        goal: target name -> cost target.

    Returns (target -> configuration, target -> why it has no row).
    """
    picked: dict[str, tuple[int, ...]] = {}
    unmet: dict[str, str] = {}
    holder: dict[tuple[int, ...], str] = {}
    for name in sorted(goal, key=lambda n: goal[n]):
        within = [p for p in front if p[1] <= goal[name]]
        if not within:
            unmet[name] = UNDOMINATED
        elif within[-1][0] in holder:
            unmet[name] = (
                f"the most accurate configuration within this cost is static-{holder[within[-1][0]]}'s: "
                "none that costs more scores higher"
            )
        else:
            picked[name] = within[-1][0]
            holder[within[-1][0]] = name
    return picked, unmet
