"""Paired statistics of the leaderboard on hand-made records, where the right answer is known."""

import numpy as np
import pandas as pd
import pytest

from agents.app.bench import add_paired, leaderboard, per_image
from agents.app.stats import paired_bootstrap
from tests.agents.app.bench_records import bench_records


def _records(name: str, correct: np.ndarray, bitops: float, seed: int = 0) -> list[dict]:
    return bench_records(name, correct, bitops, seed, reward=[float(c) - 0.01 * bitops for c in correct])


def _table(records: list[dict]) -> pd.DataFrame:
    names = list(dict.fromkeys(r["agent"] for r in records))
    return leaderboard(records, {n: {} for n in names}, max_bitops=10.0)


def test_identical_agents_give_zero_delta_with_an_interval_containing_zero():
    rng = np.random.default_rng(0)
    c = rng.random(500) < 0.8
    recs = _records("fixed-2", c, 1.0) + _records("twin", c, 1.0)
    t = add_paired(_table(recs), recs, "fixed-2")
    twin = t.set_index("agent").loc["twin"]
    assert twin["paired"]["accuracy_delta"] == 0.0
    lo, hi = twin["paired"]["accuracy_delta_ci"]
    assert lo <= 0.0 <= hi
    assert twin["front"]["against"] == "fixed-2" and not twin["front"]["beats_static_front"]


def test_a_known_difference_is_found_and_is_tighter_than_unpaired():
    rng = np.random.default_rng(1)
    n = 2000
    base = rng.random(n) < 0.85
    better = base.copy()
    fix = np.flatnonzero(~base)[:60]  # 60 of the base's errors are right: +3 points, exactly
    better[fix] = True
    recs = _records("fixed-2", base, 1.0) + _records("fixed-8", base, 4.0) + _records("agent", better, 2.0)
    t = add_paired(_table(recs), recs, "fixed-8").set_index("agent")
    p = t.loc["agent"]["paired"]
    assert p["accuracy_delta"] == pytest.approx(60 / n)
    assert 0 < p["accuracy_delta_ci"][0] < 60 / n < p["accuracy_delta_ci"][1]
    # Rewards differ by the accuracy gain plus the cheaper BitOps (0.01 per unit): 0.03 + 0.02.
    assert t.loc["agent"]["paired"]["reward_delta"] == pytest.approx(60 / n + 0.02)
    # Against the front: the best static row spending no more (2.0) is fixed-2 at 1.0.
    f = t.loc["agent"]["front"]
    assert f["against"] == "fixed-2" and f["accuracy_gap"] == pytest.approx(60 / n) and f["beats_static_front"]
    # The paired interval is narrower than the two separate intervals' overlap would suggest.
    width = p["accuracy_delta_ci"][1] - p["accuracy_delta_ci"][0]
    assert width < 0.5 * (t.loc["agent"]["accuracy_ci"][1] - t.loc["agent"]["accuracy_ci"][0])


def test_front_picks_the_most_accurate_static_row_that_spends_no_more():
    n = 400
    ones = np.ones(n, bool)
    half = np.arange(n) % 2 == 0
    recs = (
        _records("fixed-2", half, 1.0)
        + _records("static-3", ones, 2.0)
        + _records("fixed-8", half, 8.0)
        + _records("cheap", ones, 0.5)
        + _records("mid", ones, 3.0)
    )
    t = add_paired(_table(recs), recs, "fixed-8").set_index("agent")
    assert t.loc["cheap"]["front"]["against"] is None  # cheaper than every static row: no comparison
    assert t.loc["cheap"]["front"]["accuracy_gap"] is None and not t.loc["cheap"]["front"]["beats_static_front"]
    assert t.loc["mid"]["front"]["against"] == "static-3"  # not fixed-8, which spends more
    assert t.loc["mid"]["front"]["accuracy_gap"] == 0.0 and not t.loc["mid"]["front"]["beats_static_front"]
    assert t.loc["fixed-8"]["front"]["against"] == "static-3"
    assert t.loc["fixed-8"]["front"]["accuracy_gap"] == pytest.approx(-0.5)


def test_seeds_are_averaged_per_image_before_pairing():
    c0 = np.array([1, 0, 1, 0], bool)
    c1 = np.array([1, 1, 0, 0], bool)
    recs = _records("a", c0, 1.0, seed=0) + _records("a", c1, 1.0, seed=1) + _records("b", c0, 1.0)
    correct, _ = per_image(recs, ["a", "b"])
    np.testing.assert_allclose(correct[0], [1.0, 0.5, 0.5, 0.0])


def test_unknown_reference_lists_the_rows():
    recs = _records("fixed-2", np.ones(10, bool), 1.0)
    with pytest.raises(ValueError, match="fixed-2"):
        add_paired(_table(recs), recs, "fixed-8")


def test_paired_bootstrap_matches_a_direct_resampling():
    rng = np.random.default_rng(3)
    d = rng.normal(size=(2, 300))
    mean, lo, hi = paired_bootstrap(d, reps=500, seed=7)
    np.testing.assert_allclose(mean, d.mean(axis=1))
    # The same draws done the plain way: resample indices, take means.
    draws = np.random.default_rng(7).integers(0, 300, (500, 300))
    direct = d[:, draws].mean(axis=2)
    np.testing.assert_allclose(lo, np.percentile(direct, 2.5, axis=1))
    np.testing.assert_allclose(hi, np.percentile(direct, 97.5, axis=1))


def test_static_hull_mixture_by_hand():
    from agents.app.bench import static_hull_mixture

    pts = [(0, 1.0, 0.80), (1, 2.0, 0.84), (2, 3.0, 0.85), (3, 4.0, 0.84), (4, 5.0, 0.90)]
    # (2.0, 0.84) lies above the chord from (1, 0.80) to (5, 0.90); (3.0, 0.85) below the chord (2, 0.84)-(5, 0.90).
    assert static_hull_mixture(0.5, pts) is None
    assert static_hull_mixture(1.5, pts) == [(0, 0.5), (1, 0.5)]
    mix = dict(static_hull_mixture(3.5, pts))
    assert set(mix) == {1, 4} and mix[1] == pytest.approx(0.5)
    assert static_hull_mixture(9.0, pts) == [(4, 1.0)]
    assert static_hull_mixture(2.0, pts) == [(1, 1.0)]


def test_hull_gap_is_paired_against_the_mixture():
    n = 1000
    rng = np.random.default_rng(4)
    lo_c = rng.random(n) < 0.8
    hi_c = lo_c | (rng.random(n) < 0.5)
    mid = np.where(np.arange(n) < n // 2, hi_c, lo_c)  # a coin-flip controller: exactly the mixture, per image
    recs = _records("fixed-2", lo_c, 1.0) + _records("fixed-8", hi_c, 3.0) + _records("coin", mid, 2.0)
    t = add_paired(_table(recs), recs, "fixed-8").set_index("agent")
    f = t.loc["coin"]["front"]
    assert [m[0] for m in f["hull_mixture"]] == ["fixed-2", "fixed-8"]
    expected = mid.mean() - (0.5 * lo_c.mean() + 0.5 * hi_c.mean())
    assert f["hull_gap"] == pytest.approx(expected)
    assert f["hull_gap_ci"][0] <= expected <= f["hull_gap_ci"][1]
    assert f["accuracy_gap"] == pytest.approx(mid.mean() - lo_c.mean())  # the front itself is only fixed-2


def test_cli_reference_not_run_lists_the_rows(tmp_path, capsys):
    from agents.app.cli import main

    code = main(
        [
            "bench",
            "--agents",
            "fixed-2,fixed-4",
            "--reference",
            "fixed-8",
            "--episodes",
            "5",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--reference 'fixed-8'" in err and "fixed-2, fixed-4" in err
    assert not (tmp_path / "results.json").exists()  # refused before anything ran
