"""Curves on the leaderboard: one agent at K operating points, ranked against the static front.

An agent with a knob (a budget, a price, a trade-off weight) is evaluated at K values of it on the
same images as the static rows (``abn-gym bench --agents NAME@sweep``; :mod:`agents.app.sweep_bench`).
Everything here is arithmetic on per-image correctness and mean costs, so it can be checked on
hand-made numbers:

**Hypervolume.** For points P = {(c_i, a_i)} (mean cost as a fraction of all-8, accuracy), a cost
range [low, high] and a reference accuracy a_ref::

    HV(P) = 1 / (high - low) * integral from low to high of max(0, f_P(x) - a_ref) dx,
    f_P(x) = max {a_i : c_i <= x}   (minus infinity where no point costs x or less)

It is the area that P dominates inside the box [low, high] x [a_ref, 1] (the usual hypervolume
with the reference point (cost = high, accuracy = a_ref), cut at ``low``), divided by the box's
width: the mean accuracy above a_ref across the range, so it reads in points. The default range
runs from all-2's cost to all-4's, and a_ref is all-2's accuracy on the same images (the row
:func:`reference_row` names): a curve that never beats all-2 scores 0.

**The static front's hypervolume** is the same integral over the static rows' points (every
fixed-b and static-b): the staircase a user gets by picking one static configuration per cost.

**Paired bootstrap.** Images are resampled (:func:`agents.app.stats.resampled_means`: the seed
and number of resamples of every leaderboard interval), the same resample for every curve point,
every static row and the reference; both hypervolumes and their difference are recomputed on
each resample, and the interval is the percentile one. The points' costs stay at their means
over all images, as the leaderboard's mixtures do.

**Share above the static mixtures.** Each point's paired gap to the best random mixture of two
static rows with the same mean cost (:func:`agents.app.front.static_hull_mixture`, the
leaderboard's ``gap to static mixtures``), on the same resamples: the share of points whose gap
is above zero, and the share whose whole 95% interval is. A point cheaper than every static row
has no mixture and counts as not above.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agents.app.front import static_hull_mixture
from agents.app.stats import BOOTSTRAP_REPS, resampled_means
from supernets.foundation.errors import UsageError

DEFAULT_RANGE_BITS = (2, 4)
"""The default cost range of a curve: from all-2's cost to all-4's (the ``fixed-b`` rows)."""


def hypervolume(costs: Sequence[float], accuracies: np.ndarray, low: float, high: float, reference: Any) -> Any:
    """HV of the points (``costs``, ``accuracies``) over [``low``, ``high``] above ``reference`` (module docstring).

    Args:
        costs: (p,) each point's mean cost.
        accuracies: (p,) each point's accuracy, or (p, r): r versions of them (bootstrap resamples).
        low: the range's cheap end.
        high: the range's costly end, the reference point's cost.
        reference: the reference accuracy: a number, or (r,) one per version.

    Returns:
        A float, or (r,) with one per version.
    """
    if not high > low:
        raise UsageError(f"a curve's cost range needs low < high; got {low}..{high}: give --sweep-range LOW,HIGH")
    c = np.asarray(costs, dtype=np.float64)
    a = np.asarray(accuracies, dtype=np.float64)
    order = np.argsort(c, kind="stable")
    c, a = c[order], a[order]
    best = np.maximum.accumulate(a, axis=0)  # f at the cost of each point: the best among those no dearer
    starts = np.clip(c, low, high)
    ends = np.clip(np.append(c[1:], np.inf), low, high)
    widths = (ends - starts).reshape((-1,) + (1,) * (a.ndim - 1))
    above = np.maximum(0.0, best - np.asarray(reference, dtype=np.float64))
    return (widths * above).sum(axis=0) / (high - low)


def reference_row(names: Sequence[str]) -> str:
    """The row whose accuracy is the reference: all-2 (``fixed-2``), else the fewest-bits ``fixed-b``.

    Args:
        names: the static rows.
    """
    fixed = sorted((int(n[6:]), n) for n in names if n.startswith("fixed-") and n[6:].isdigit())
    if not fixed:
        raise UsageError("a curve needs a fixed-b row for its reference point; the static rows have none")
    return fixed[0][1]


def default_range(names: Sequence[str], costs: Sequence[float]) -> tuple[float, float]:
    """(all-2's cost, all-4's cost): the default range of a curve, from the static rows' mean costs.

    Args:
        names: the static rows.
        costs: their mean costs.
    """
    found = dict(zip(names, costs, strict=True))
    wanted = [f"fixed-{b}" for b in DEFAULT_RANGE_BITS]
    missing = [n for n in wanted if n not in found]
    if missing:
        raise UsageError(
            f"the default curve range runs from {wanted[0]}'s cost to {wanted[1]}'s, but this env has no "
            f"{', '.join(missing)}; give the range as cost fractions of all-8, e.g. --sweep-range 0.1,0.3"
        )
    return float(found[wanted[0]]), float(found[wanted[1]])


def score_curve(
    curve_correct: np.ndarray,
    curve_costs: Sequence[float],
    static_correct: np.ndarray,
    static_costs: Sequence[float],
    static_names: Sequence[str],
    cost_range: tuple[float, float] | None = None,
    reps: int = BOOTSTRAP_REPS,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """A curve's hypervolume, the static front's, the paired interval of the difference, and its points' gaps.

    Args:
        curve_correct: (K, n) each operating point's correctness per image.
        curve_costs: (K,) each point's mean cost.
        static_correct: (S, n) each static row's correctness on the same images, in the same order.
        static_costs: (S,) each static row's mean cost.
        static_names: the static rows' names (``fixed-b``, ``static-b``).
        cost_range: (low, high); default :func:`default_range`.
        reps: bootstrap resamples.
        seed: the bootstrap's seed.
        level: the intervals' level.

    Returns:
        ``range``, ``reference`` (row, accuracy, cost), ``hv``, ``front_hv``, ``difference`` and
        ``difference_ci``, ``points`` (cost, accuracy, mixture, mixture_gap, mixture_gap_ci each),
        ``above_mixtures`` (share of points whose gap is above 0) and ``above_mixtures_ci`` (share
        whose interval is), all accuracies as fractions.
    """
    curve = np.atleast_2d(np.asarray(curve_correct, dtype=np.float64))
    static = np.atleast_2d(np.asarray(static_correct, dtype=np.float64))
    if curve.shape[1] != static.shape[1] or curve.shape[1] == 0:
        raise ValueError("a curve and the static rows must be scored on the same images (at least one)")
    k, names = len(curve), list(static_names)
    low, high = cost_range if cost_range is not None else default_range(names, static_costs)
    ref = k + names.index(reference_row(names))
    stacked = np.concatenate([curve, static])
    full = stacked.mean(axis=1)
    boot = resampled_means(stacked, reps, seed)
    lo_q, hi_q = 100 * (1 - level) / 2, 100 * (1 + level) / 2

    def both(values: np.ndarray) -> tuple[Any, Any]:
        """The curve's and the front's hypervolume for accuracies ``values`` (one column per version)."""
        mine = hypervolume(curve_costs, values[:k], low, high, values[ref])
        return mine, hypervolume(static_costs, values[k:], low, high, values[ref])

    hv, front_hv = both(full)
    boot_hv, boot_front = both(boot)
    diff = boot_hv - boot_front
    pts = [(j, float(static_costs[j]), full[k + j]) for j in range(len(names))]
    points = []
    for i in range(k):
        mix = static_hull_mixture(float(curve_costs[i]), pts)
        point: dict[str, Any] = {"cost": float(curve_costs[i]), "accuracy": float(full[i]), "mixture": None}
        point.update(mixture_gap=None, mixture_gap_ci=None)
        if mix is not None:
            gaps = boot[i] - sum(w * boot[k + j] for j, w in mix)
            point.update(
                mixture=[[names[j], float(w)] for j, w in mix],
                mixture_gap=float(full[i] - sum(w * full[k + j] for j, w in mix)),
                mixture_gap_ci=[float(np.percentile(gaps, lo_q)), float(np.percentile(gaps, hi_q))],
            )
        points.append(point)
    return {
        "range": [float(low), float(high)],
        "reference": {"row": names[ref - k], "accuracy": float(full[ref]), "cost": float(high)},
        "hv": float(hv),
        "front_hv": float(front_hv),
        "difference": float(hv - front_hv),
        "difference_ci": [float(np.percentile(diff, lo_q)), float(np.percentile(diff, hi_q))],
        "points": points,
        "above_mixtures": sum(p["mixture_gap"] is not None and p["mixture_gap"] > 0 for p in points) / k,
        "above_mixtures_ci": sum(p["mixture_gap_ci"] is not None and p["mixture_gap_ci"][0] > 0 for p in points) / k,
    }


def format_curves_markdown(curves: Sequence[dict]) -> str:
    """The "Curves" table: one row per curve (name, knob, K, range, both hypervolumes, the difference, the share).

    Hypervolumes and the difference are in points (accuracy x 100, see the module docstring); the
    range is in cost fractions of all-8; the share above the static mixtures counts the points
    whose gap is above zero, and in brackets those whose whole paired 95% interval is.

    Args:
        curves: the ``curves`` of a bench's ``results.json``.
    """
    lines = [
        "| curve | knob | K | range (cost / all-8) | HV, points | static front HV, points | "
        "difference, points (paired 95% CI) | points above static mixtures (interval above 0) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in curves:
        s = c["score"]
        lo, hi = s["difference_ci"]
        above = f"{round(s['above_mixtures'] * c['k'])}/{c['k']} ({round(s['above_mixtures_ci'] * c['k'])}/{c['k']})"
        lines.append(
            f"| {c['name']} | {c['knob']} | {c['k']} | {s['range'][0]:.3f}-{s['range'][1]:.3f} | "
            f"{100 * s['hv']:.2f} | {100 * s['front_hv']:.2f} | {100 * s['difference']:+.2f} "
            f"({100 * lo:+.2f} to {100 * hi:+.2f}){' **above**' if lo > 0 else ''} | {above} |"
        )
    ref = curves[0]["score"]["reference"] if curves else None
    if ref is not None:
        lines += [
            "",
            f"HV: mean accuracy above {ref['row']}'s ({100 * ref['accuracy']:.2f}%) across the range, of the best "
            "point costing no more (reference point: that accuracy at the range's top cost); the static front's "
            "over every fixed-b and static-b row.",
        ]
    return "\n".join(lines)
