"""A curve's hypervolume, the static front's, the paired interval of their difference, the share above the mixtures."""

import numpy as np
import pytest

from agents.app.curves import default_range, format_curves_markdown, hypervolume, reference_row, score_curve
from agents.app.stats import paired_bootstrap, resampled_means
from supernets.foundation.errors import UsageError


def brute_force_hv(costs, accuracies, low, high, reference, steps=200_000):
    """The definition, integrated on a fine grid of costs (midpoints)."""
    xs = low + (np.arange(steps) + 0.5) * (high - low) / steps
    best = np.full(steps, -np.inf)
    for c, a in zip(costs, accuracies):
        best = np.where(xs >= c, np.maximum(best, a), best)
    return float(np.mean(np.maximum(0.0, best - reference)))


def test_hypervolume_of_two_steps_by_hand():
    # [0.1, 0.2): 0.5 - 0.4 = 0.1; [0.2, 0.3]: 0.7 - 0.4 = 0.3; mean over the width 0.2: (0.01 + 0.03) / 0.2.
    assert hypervolume([0.2, 0.1], np.array([0.7, 0.5]), 0.1, 0.3, 0.4) == pytest.approx(0.2)
    # A point dearer and less accurate than another adds nothing; one dearer than high neither.
    assert hypervolume([0.1, 0.2, 0.25, 0.5], np.array([0.5, 0.7, 0.6, 0.99]), 0.1, 0.3, 0.4) == pytest.approx(0.2)
    # A point cheaper than low counts from low on; below the reference counts zero.
    assert hypervolume([0.0], np.array([0.45]), 0.1, 0.3, 0.4) == pytest.approx(0.05)
    assert hypervolume([0.0], np.array([0.3]), 0.1, 0.3, 0.4) == 0.0
    # Nothing costs less than 0.25: only [0.25, 0.3] counts, a quarter of the width.
    assert hypervolume([0.25], np.array([0.8]), 0.1, 0.3, 0.4) == pytest.approx(0.4 * 0.25)


def test_hypervolume_matches_the_integral_on_random_points():
    rng = np.random.default_rng(3)
    for _ in range(5):
        costs, accs = rng.uniform(0, 0.4, 7), rng.uniform(0.3, 0.9, 7)
        want = brute_force_hv(costs, accs, 0.05, 0.3, 0.5)
        assert hypervolume(costs, accs, 0.05, 0.3, 0.5) == pytest.approx(want, abs=1e-5)
    # Versions side by side (bootstrap resamples) give each version's own hypervolume.
    accs = rng.uniform(0.3, 0.9, (4, 3))
    refs = np.array([0.4, 0.5, 0.6])
    many = hypervolume([0.1, 0.2, 0.15, 0.3], accs, 0.1, 0.3, refs)
    one = [hypervolume([0.1, 0.2, 0.15, 0.3], accs[:, j], 0.1, 0.3, refs[j]) for j in range(3)]
    np.testing.assert_allclose(many, one)


def test_a_range_must_be_a_range():
    with pytest.raises(UsageError, match="--sweep-range"):
        hypervolume([0.1], np.array([0.5]), 0.3, 0.3, 0.4)


NAMES = ["fixed-2", "fixed-3", "fixed-4", "static-3.5", "fixed-8"]
COSTS = [0.0625, 0.14, 0.25, 0.19, 1.0]


def static_rows(n=300, seed=0):
    """Static rows whose accuracy rises with cost; images 0..19 are wrong in every row."""
    rng = np.random.default_rng(seed)
    p = np.array([0.55, 0.7, 0.8, 0.76, 0.85])
    correct = (rng.random((len(p), n)) < p[:, None]).astype(float)
    correct[:, :20] = 0.0
    return correct


def test_reference_and_default_range():
    assert reference_row(NAMES) == "fixed-2"
    assert default_range(NAMES, COSTS) == (0.0625, 0.25)
    with pytest.raises(UsageError, match="--sweep-range"):
        default_range(["fixed-3", "fixed-4"], [0.14, 0.25])


def test_a_curve_equal_to_the_front_has_no_difference():
    static = static_rows()
    score = score_curve(static, COSTS, static, COSTS, NAMES)
    assert score["hv"] == pytest.approx(score["front_hv"]) and score["difference"] == pytest.approx(0.0)
    assert score["difference_ci"] == pytest.approx([0.0, 0.0])
    assert score["reference"] == {"row": "fixed-2", "accuracy": static[0].mean(), "cost": 0.25}
    # The front's hypervolume by hand: fixed-2 on [0.0625, 0.14), fixed-3 on [0.14, 0.19), then the best of
    # fixed-3 and static-3.5 on [0.19, 0.25), all above fixed-2's accuracy.
    a = static.mean(axis=1)
    steps = (0.14 - 0.0625) * 0 + (0.19 - 0.14) * (a[1] - a[0]) + (0.25 - 0.19) * (max(a[1], a[3]) - a[0])
    assert score["front_hv"] == pytest.approx(steps / (0.25 - 0.0625))


def test_a_curve_above_the_front_by_delta_everywhere_differs_by_delta():
    static = static_rows()
    curve = static.copy()
    curve[:, :6] = 1.0  # six images every static row gets wrong: each point is 6 / 300 more accurate
    score = score_curve(curve, COSTS, static, COSTS, NAMES)
    assert score["difference"] == pytest.approx(6 / 300)
    # Per resample the difference is the share of those six images drawn: the interval is that mean's.
    flipped = np.zeros(300)
    flipped[:6] = 1.0
    _, lo, hi = paired_bootstrap(flipped[None, :])
    assert score["difference_ci"] == pytest.approx([lo[0], hi[0]])


def test_point_gaps_are_the_leaderboards_mixture_gaps():
    static = static_rows()
    rng = np.random.default_rng(1)
    curve = (rng.random((3, 300)) < np.array([[0.6], [0.75], [0.9]])).astype(float)
    costs = [0.05, 0.16, 0.22]  # the first is cheaper than every static row: no mixture
    score = score_curve(curve, costs, static, COSTS, NAMES)
    first, second, third = score["points"]
    assert first["mixture"] is None and first["mixture_gap"] is None
    # 0.16 lies between fixed-3 (0.14) and static-3.5 (0.19) on the hull when both are on it.
    names = [m[0] for m in second["mixture"]]
    weights = dict(second["mixture"])
    mixed = sum(w * static[NAMES.index(n)] for n, w in weights.items())
    assert sum(weights.values()) == pytest.approx(1.0) and all(n in NAMES for n in names)
    assert np.dot([COSTS[NAMES.index(n)] for n in names], [weights[n] for n in names]) == pytest.approx(0.16)
    mean, lo, hi = paired_bootstrap((curve[1] - mixed)[None, :])
    assert second["mixture_gap"] == pytest.approx(mean[0]) and second["mixture_gap_ci"] == pytest.approx([lo[0], hi[0]])
    above = [p["mixture_gap"] is not None and p["mixture_gap"] > 0 for p in score["points"]]
    assert score["above_mixtures"] == pytest.approx(sum(above) / 3)
    sure = [p["mixture_gap_ci"] is not None and p["mixture_gap_ci"][0] > 0 for p in score["points"]]
    assert score["above_mixtures_ci"] == pytest.approx(sum(sure) / 3)
    assert third["mixture_gap_ci"][0] > 0 and score["above_mixtures_ci"] >= 1 / 3  # 0.9 vs about 0.8


def test_resampled_means_are_the_paired_bootstraps_draws():
    x = np.random.default_rng(2).random((3, 50))
    means = resampled_means(x, 600, seed=4)
    _, lo, hi = paired_bootstrap(x, 600, seed=4)
    np.testing.assert_allclose(np.percentile(means, 2.5, axis=1), lo)
    np.testing.assert_allclose(np.percentile(means, 97.5, axis=1), hi)


def test_curves_table():
    static = static_rows()
    curve = static.copy()
    curve[:, :6] = 1.0
    score = score_curve(curve, COSTS, static, COSTS, NAMES)
    text = format_curves_markdown([{"name": "x@sweep", "knob": "budget", "k": 5, "score": score}])
    row = text.splitlines()[2]
    assert row.startswith("| x@sweep | budget | 5 | 0.062-0.250 |") and "+2.00 (" in row
    assert f"| {round(score['above_mixtures'] * 5)}/5 (" in row
    assert "fixed-2's" in text
