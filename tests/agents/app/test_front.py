"""The verdict code on hand-made records: one name one row, the front's rows, the statistics it rests on."""

import numpy as np
import pandas as pd
import pytest

from agents.app.front import (
    add_paired,
    check_row_names,
    front_summary,
    is_reserved_name,
    leaderboard,
    static_hull_mixture,
)
from agents.app.stats import interval, iqm, paired_bootstrap
from supernets.foundation.errors import UsageError
from tests.agents.app.bench_records import bench_records


def _records(name: str, correct, bitops: float, seed: int = 0, reward=None) -> list[dict]:
    return bench_records(name, correct, bitops, seed, reward, decision_macs_per_index=3)


def _table(records: list[dict]) -> pd.DataFrame:
    names = list(dict.fromkeys(r["agent"] for r in records))
    return leaderboard(records, {n: {"wall_s": 1.5, "uses_label": n == "oracle"} for n in names}, max_bitops=10.0)


@pytest.mark.parametrize(
    "name,reserved",
    [
        ("random", True),
        ("greedy", True),
        ("oracle", True),
        ("ppo", True),
        ("escalation", True),
        ("fixed-4", True),
        ("fixed-99", True),
        ("static-5", True),
        ("greedy@0.9", True),
        ("escalation@0.1", True),
        ("threshold", False),
        ("greedy-ish", False),
        ("my-fixed-4", False),
        ("ppo2", False),
        ("Random", False),
    ],
)
def test_reserved_names_are_the_built_in_ones_and_their_forms(name, reserved):
    assert is_reserved_name(name) is reserved


def test_one_name_one_row():
    check_row_names(
        [("fixed-4", "fixed-4", False), ("m:A", "mine", True), ("runs/a/model.zip", "runs/a/model.zip", False)]
    )
    with pytest.raises(UsageError, match=r"--agents lists 'fixed-4' twice; one name, one row"):
        check_row_names([("fixed-4", "fixed-4", False), ("fixed-2", "fixed-2", False), ("fixed-4", "fixed-4", False)])
    with pytest.raises(UsageError, match=r"agents 'm:A' and 'm:B' would both be the row 'mine'"):
        check_row_names([("m:A", "mine", True), ("m:B", "mine", True)])
    with pytest.raises(UsageError, match=r"agents 'fixed-2' and 'm:B' would both be the row 'fixed-2'"):
        check_row_names([("fixed-2", "fixed-2", False), ("m:B", "fixed-2", False)])
    # A custom agent may not take a built-in's name even when that built-in is not listed.
    with pytest.raises(UsageError, match=r"agent 'm:A' calls itself 'fixed-4', the name of a built-in agent"):
        check_row_names([("fixed-2", "fixed-2", False), ("m:A", "fixed-4", True)])
    check_row_names([("fixed-4", "fixed-4", False)])  # a built-in may carry its own name


def test_leaderboard_rows_merge_only_their_own_episodes():
    c = np.array([1, 0, 1, 1], bool)
    recs = (
        _records("a", c, 2.0, seed=0)
        + _records("b", ~c, 6.0)
        + _records("a", np.ones(4, bool), 4.0, seed=1)
        + _records("oracle", c, 1.0)
    )
    t = _table(recs).set_index("agent")
    assert list(t.index) == ["a", "b", "oracle"]
    assert t.loc["a", "seeds"] == 2 and t.loc["a", "episodes"] == 4 and t.loc["b", "episodes"] == 4
    assert t.loc["a", "bitops"] == 3.0 and t.loc["a", "bitops_fraction"] == 0.3
    assert t.loc["b", "accuracy"] == 0.25 and t.loc["b", "bitops"] == 6.0 and t.loc["b", "seeds"] == 1
    assert t.loc["a", "decision_macs"] == 4.5 and t.loc["a", "wall_s"] == 1.5
    assert t.loc["a", "reward"] == t.loc["a", "accuracy"]  # two seeds: the IQM of per-seed means
    assert t.loc["a", "accuracy"] == pytest.approx(iqm(np.array([0.75, 1.0])))
    assert t.loc["oracle", "uses_label"] and not t.loc["a", "uses_label"]
    lo, hi = t.loc["b", "accuracy_ci"]
    assert 0.0 <= lo <= 0.25 <= hi <= 0.75


def test_the_front_is_the_rows_named_not_what_the_names_look_like():
    n = 300
    rng = np.random.default_rng(5)
    low = rng.random(n) < 0.7
    high = low | (rng.random(n) < 0.6)
    recs = _records("fixed-2", low, 1.0) + _records("five", high, 5.0) + _records("fixed-6", high, 6.0)
    table = _table(recs)
    alone = add_paired(table, recs, "fixed-2").set_index("agent")  # by name: the front is fixed-2 and fixed-6
    assert alone.loc["five", "front"]["against"] == "fixed-2" and alone.loc["five", "front"]["beats_static_front"]
    # Judged against a front that holds "five" itself as a static row, it cannot beat it.
    held = add_paired(table, recs, "fixed-2", front_rows=["fixed-2", "five"]).set_index("agent")
    f = held.loc["five", "front"]
    assert f["against"] == "five" and f["accuracy_gap"] == 0.0 and not f["beats_static_front"]
    assert f["hull_mixture"] == [["five", 1.0]] and f["hull_gap"] == 0.0
    # fixed-6 is no longer on the front, so it is judged against "five" (cheaper, as accurate).
    assert held.loc["fixed-6", "front"]["against"] == "five"
    with pytest.raises(ValueError, match=r"front rows \['fixed-8'\] are not rows"):
        add_paired(table, recs, "fixed-2", front_rows=["fixed-8"])


def test_an_empty_front_judges_nothing():
    recs = _records("a", np.ones(20, bool), 1.0) + _records("b", np.zeros(20, bool), 2.0)
    t = add_paired(_table(recs), recs, "a", front_rows=[]).set_index("agent")
    for name in ("a", "b"):
        f = t.loc[name, "front"]
        assert f["against"] is None and f["hull_mixture"] is None and not f["beats_static_front"]
        assert not f["beats_static_mixtures"]
        assert f["accuracy_gap"] is None and f["accuracy_gap_ci"] == [None, None] and f["hull_gap"] is None
    assert t.loc["b", "paired"]["accuracy_delta"] == -1.0 and t.loc["b", "paired"]["reference"] == "a"


def test_a_win_needs_the_whole_interval_above_zero():
    n = 400
    base = np.arange(n) % 4 != 0  # 75%
    plus_one = base.copy()
    plus_one[0] = True  # one image more: a gap whose interval reaches zero
    plus_many = base | (np.arange(n) % 8 == 0)  # 50 images more
    recs = _records("fixed-2", base, 1.0) + _records("one", plus_one, 1.5) + _records("many", plus_many, 1.5)
    t = add_paired(_table(recs), recs, "fixed-2").set_index("agent")
    one, many = t.loc["one", "front"], t.loc["many", "front"]
    assert one["accuracy_gap"] == pytest.approx(1 / n) and one["accuracy_gap_ci"][0] == 0.0
    assert not one["beats_static_front"] and not one["beats_static_mixtures"]
    assert many["accuracy_gap"] == pytest.approx(50 / n) and many["accuracy_gap_ci"][0] > 0
    assert many["beats_static_front"] and many["beats_static_mixtures"]  # fixed-2 alone: the mixture is fixed-2
    assert many["accuracy_gap_ci"][0] < 50 / n < many["accuracy_gap_ci"][1]
    reward = t.loc["many", "paired"]
    assert reward["reward_delta"] == pytest.approx(50 / n) and reward["reward_delta_ci"][0] > 0
    assert reward["reward_delta_ci"][0] < 50 / n < reward["reward_delta_ci"][1]


def test_front_summary_lists_the_front_cheapest_first():
    recs = (
        _records("fixed-8", np.ones(10, bool), 8.0)
        + _records("agent", np.ones(10, bool), 3.0)
        + _records("fixed-2", np.array([1, 0] * 5, bool), 2.0)
        + _records("static-3", np.array([1, 1, 0, 1, 1] * 2, bool), 2.0)
    )
    front = front_summary(_table(recs), ["fixed-8", "fixed-2", "static-3"], ["agent", "fixed-8"])
    assert front == [
        {"agent": "fixed-2", "accuracy": 0.5, "bitops": 2.0, "listed": False},
        {"agent": "static-3", "accuracy": 0.8, "bitops": 2.0, "listed": False},
        {"agent": "fixed-8", "accuracy": 1.0, "bitops": 8.0, "listed": True},
    ]


def test_interval_of_one_seed_is_a_bootstrap_over_episodes():
    x = np.random.default_rng(8).normal(0.7, 0.2, 40)  # continuous: every draw moves the percentiles
    mean, lo, hi = interval([x], reps=400, seed=3)
    draws = np.random.default_rng(3).integers(0, 40, (400, 40))
    means = x[draws].mean(axis=1)
    assert mean == pytest.approx(x.mean(), rel=1e-12)
    assert lo == pytest.approx(np.percentile(means, 2.5), rel=1e-12)
    assert hi == pytest.approx(np.percentile(means, 97.5), rel=1e-12)
    _, lo90, hi90 = interval([x], reps=400, level=0.9, seed=3)
    assert lo90 == pytest.approx(np.percentile(means, 5.0), rel=1e-12)
    assert hi90 == pytest.approx(np.percentile(means, 95.0), rel=1e-12)
    assert np.isnan(interval([np.array([])])).all()
    assert interval([np.ones(5)]) == (1.0, 1.0, 1.0)
    assert interval([np.array([0.7])]) == (0.7, 0.7, 0.7)  # one episode: no spread, but a value


def test_interval_over_seeds_is_the_iqm_with_a_bootstrap_over_seeds():
    per_seed = [np.full(10, v) for v in (0.1, 0.5, 0.6, 0.7, 0.95)]
    point, lo, hi = interval(per_seed, reps=300, seed=1)
    assert point == pytest.approx(iqm(np.array([0.1, 0.5, 0.6, 0.7, 0.95])))
    scores = np.array([0.1, 0.5, 0.6, 0.7, 0.95])
    rng = np.random.default_rng(1)
    boot = [iqm(scores[rng.integers(0, 5, 5)]) for _ in range(300)]
    assert lo == pytest.approx(np.percentile(boot, 2.5)) and hi == pytest.approx(np.percentile(boot, 97.5))
    assert lo < point < hi


def test_iqm_drops_the_outer_quarters():
    assert iqm(np.array([0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 100.0])) == 1.0
    assert iqm(np.array([2.0, 4.0])) == 3.0


def test_paired_bootstrap_of_one_image_is_that_image():
    mean, lo, hi = paired_bootstrap(np.array([[0.5], [-1.0]]))
    assert mean.tolist() == lo.tolist() == hi.tolist() == [0.5, -1.0]


def test_rows_with_several_seeds_take_each_seeds_own_rewards():
    c = np.ones(6, bool)
    recs = []
    for seed, r in enumerate((0.1, 0.2, 0.3, 1.0)):
        recs += _records("a", c, 1.0, seed=seed, reward=np.full(6, r))
    t = _table(recs).set_index("agent")
    assert t.loc["a", "reward"] == pytest.approx(0.25)  # the IQM of four seeds: the middle two
    lo, hi = t.loc["a", "reward_ci"]
    assert 0.1 - 1e-9 <= lo < 0.25 < hi <= 1.0 + 1e-9 and t.loc["a", "seeds"] == 4


def test_pairing_needs_the_same_images():
    recs = _records("a", np.ones(4, bool), 1.0) + _records("b", np.ones(3, bool), 1.0)
    with pytest.raises(ValueError, match=r"^paired statistics need every agent to run on the same images$"):
        add_paired(_table(recs), recs, "a")


def test_paired_bootstrap_edges():
    mean, lo, hi = paired_bootstrap(np.zeros((2, 0)))
    assert mean.shape == (2,) and np.isnan(mean).all() and np.isnan(lo).all() and np.isnan(hi).all()
    d = np.arange(600, dtype=float).reshape(1, 600) % 3  # 0, 1, 2 repeating: mean 1
    mean, lo, hi = paired_bootstrap(d[0], reps=600, seed=2)  # one row may be given as a vector
    assert mean.tolist() == [1.0]
    draws = np.random.default_rng(2).integers(0, 600, (600, 600))
    direct = d[0][draws].mean(axis=1)
    np.testing.assert_allclose(lo, [np.percentile(direct, 2.5)])
    np.testing.assert_allclose(hi, [np.percentile(direct, 97.5)])
    _, lo80, hi80 = paired_bootstrap(d, reps=600, level=0.8, seed=2)
    np.testing.assert_allclose([lo80[0], hi80[0]], np.percentile(direct, [10.0, 90.0]))


def test_the_mixture_at_the_edges_of_the_front():
    # Given in no particular order; two rows at BitOps 1.0, of which only the more accurate counts.
    pts = [(2, 2.0, 0.9), (1, 1.0, 0.7), (0, 1.0, 0.5)]
    assert static_hull_mixture(1.0, pts) == [(1, 1.0)]  # exactly the cheapest point: that row alone
    assert static_hull_mixture(1.5, pts) == [(1, 0.5), (2, 0.5)]
    # A spend a hair below the cheapest row (float noise in mean BitOps) still gets the cheapest row.
    assert static_hull_mixture(1.0 * (1 - 1e-9), pts) == [(1, 1.0)]
    assert static_hull_mixture(1.0 * (1 - 1e-8), pts) is None
    # A row that spends more for the same accuracy is never on the front.
    assert static_hull_mixture(2.0, [(0, 1.0, 0.8), (1, 2.0, 0.8)]) == [(0, 1.0)]


def test_the_mixture_pops_rows_under_the_chord_and_keeps_the_rest():
    # (2, 0.81) lies under the chord from (1, 0.8) to (3, 0.9): a coin flip between 1 and 3 beats it.
    pts = [(0, 1.0, 0.8), (1, 2.0, 0.81), (2, 3.0, 0.9)]
    assert static_hull_mixture(2.0, pts) == [(0, 0.5), (2, 0.5)]
    # A concave front keeps every row; spacing of 2 BitOps makes the chord test scale-sensitive.
    pts = [(0, 2.0, 0.5), (1, 4.0, 0.8), (2, 6.0, 0.95), (3, 8.0, 0.97)]
    assert static_hull_mixture(6.0, pts) == [(2, 1.0)]
    assert static_hull_mixture(7.0, pts) == [(2, 0.5), (3, 0.5)]
    pts = [(0, 2.0, 0.5), (1, 4.0, 0.8), (2, 6.0, 0.85), (3, 8.0, 1.2)]
    # (6, 0.85) lies under the chord (4, 0.8)-(8, 1.2); (4, 0.8) above the chord (2, 0.5)-(8, 1.2).
    assert static_hull_mixture(6.0, pts) == [(1, 0.5), (3, 0.5)]
    # Beyond the most accurate row the front is flat; BitOps well below the accuracies do not confuse it.
    small = [(0, 0.25, 0.8), (1, 0.5, 0.9)]
    assert static_hull_mixture(0.75, small) == [(1, 1.0)]
    assert static_hull_mixture(0.375, small) == [(0, 0.5), (1, 0.5)]
    assert static_hull_mixture(0.1, small) is None


def test_the_front_prefers_the_cheaper_of_two_equally_accurate_rows():
    c = np.arange(40) % 5 != 0
    recs = _records("fixed-3", c, 2.0) + _records("fixed-2", c, 1.0) + _records("agent", c, 3.0)
    t = add_paired(_table(recs), recs, "fixed-2").set_index("agent")
    assert t.loc["agent", "front"]["against"] == "fixed-2"


def test_an_unknown_reference_names_every_row():
    recs = _records("fixed-2", np.ones(5, bool), 1.0) + _records("mine", np.ones(5, bool), 2.0)
    with pytest.raises(UsageError) as err:
        add_paired(_table(recs), recs, "fixed-8")
    assert str(err.value) == "--reference 'fixed-8' is not a row of this leaderboard; the rows are: fixed-2, mine"


def test_name_errors_say_the_fix():
    with pytest.raises(UsageError) as err:
        check_row_names([("m:A", "oracle", True)])
    assert str(err.value) == (
        "agent 'm:A' calls itself 'oracle', the name of a built-in agent; one name, one row: "
        "give your agent's `name` attribute a name of its own"
    )
    with pytest.raises(UsageError) as err:
        check_row_names([("greedy", "greedy", False), ("greedy", "greedy", False)])
    assert str(err.value) == (
        "--agents lists 'greedy' twice; one name, one row: list each agent once (--seeds gives more episodes per image)"
    )
    with pytest.raises(UsageError) as err:
        check_row_names([("m:A", "x", True), ("m:B", "x", True)])
    assert (
        str(err.value)
        == "agents 'm:A' and 'm:B' would both be the row 'x'; one name, one row: give each agent a name of its own"
    )


def test_a_row_on_the_chord_gives_way_to_the_mixture_of_its_neighbours():
    # (2, 0.75) lies exactly on the chord from (1, 0.5) to (3, 1.0): the hull keeps only the ends.
    pts = [(0, 1.0, 0.5), (1, 2.0, 0.75), (2, 3.0, 1.0)]
    assert static_hull_mixture(2.0, pts) == [(0, 0.5), (2, 0.5)]
    # Spaced 3 apart, (4, 0.6) lies under the chord (1, 0.5)-(7, 1.1) and is popped; (1, 0.5) stays.
    pts = [(0, 1.0, 0.5), (1, 4.0, 0.6), (2, 7.0, 1.1)]
    assert static_hull_mixture(4.0, pts) == [(0, 0.5), (2, 0.5)]
