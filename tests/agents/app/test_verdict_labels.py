"""The **beats** label follows the gap to the static mixtures, not the staircase front (#26), in every table."""

import numpy as np
import pandas as pd
import pytest

from agents.app.bench import format_markdown
from agents.app.front import add_paired, format_compact_markdown, leaderboard
from tests.agents.app.bench_records import bench_records

N = 400


def _table() -> pd.DataFrame:
    """fixed-2 (75%, 1 BitOps), fixed-8 (95%, 3 BitOps) and two rows at 2 BitOps, where a coin flip gets 85%.

    ``stair`` (80%) clears the staircase (fixed-2, the best static row it can afford) by 5 points
    but is 5 points under the coin flip; ``hull`` (every image right) beats both.
    """
    i = np.arange(N)
    two = i % 4 != 0
    eight = i % 20 != 0
    stair = two | (i % 20 == 4)
    recs = (
        bench_records("fixed-2", two, 1.0)
        + bench_records("fixed-8", eight, 3.0)
        + bench_records("stair", stair, 2.0)
        + bench_records("hull", np.ones(N, bool), 2.0)
        + bench_records("oracle", np.ones(N, bool), 1.0)
    )
    names = ["fixed-2", "fixed-8", "stair", "hull", "oracle"]
    meta = {n: {"wall_s": 1.0, "uses_label": n == "oracle"} for n in names}
    return add_paired(leaderboard(recs, meta, max_bitops=10.0), recs, "fixed-8")


def test_the_flags_follow_the_mixtures_gap():
    t = _table().set_index("agent")
    stair, hull = t.loc["stair", "front"], t.loc["hull", "front"]
    assert t.loc["stair", "accuracy"] == pytest.approx(0.80) and stair["against"] == "fixed-2"
    assert stair["accuracy_gap"] == pytest.approx(0.05) and stair["beats_static_front"]  # above the step
    assert stair["hull_gap"] == pytest.approx(0.80 - 0.85) and not stair["beats_static_mixtures"]  # below the chord
    assert hull["hull_gap"] == pytest.approx(0.15) and hull["beats_static_mixtures"] and hull["beats_static_front"]
    assert not any(t.loc[n, "front"]["beats_static_mixtures"] for n in ("fixed-2", "fixed-8"))


def _cells(text: str, agent: str) -> list[str]:
    line = next(x for x in text.splitlines() if x.startswith(f"| {agent} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_beats_marks_the_mixtures_column_of_the_full_table():
    text = format_markdown(_table())
    head = _cells(text, "agent")
    front, mixtures = (
        head.index(next(h for h in head if h.startswith("gap to static front"))),
        head.index(next(h for h in head if h.startswith("gap to static mixtures"))),
    )
    assert "**beats**" not in "".join(_cells(text, "stair"))  # the staircase's "win" is no win
    assert _cells(text, "stair")[front].endswith("vs fixed-2")
    assert _cells(text, "hull")[mixtures].endswith("**beats**") and "**beats**" not in _cells(text, "hull")[front]


def test_the_compact_table_has_one_short_line_per_row_with_the_verdict():
    table = _table()
    text = format_compact_markdown(table)
    lines = text.splitlines()
    assert lines[0] == (
        "| agent | accuracy % (95% CI) | GBitOps | decision MMACs | gap to static mixtures, points "
        "| gap to static front, points |"
    )
    rows = [x for x in lines[2:] if x.startswith("| ")]
    assert [r.split("|")[1].strip() for r in rows] == list(table["agent"])  # one line per row, in order
    assert all(r.count("|") == 7 for r in lines[:2] + rows)  # six columns each
    assert lines[-1] == "oracle: uses the labels, an upper bound rather than a controller."
    hull = _cells(text, "hull")
    assert hull[0] == "hull" and hull[1].startswith("100.00 (") and hull[2] == "0.0000" and hull[3] == "0.00"
    assert hull[4].startswith("+15.00 (") and " to " in hull[4] and hull[4].endswith(") **beats**")
    stair = _cells(text, "stair")
    assert stair[4].startswith("-5.00 (") and "**beats**" not in stair[4]
    assert stair[5].startswith("+5.00 (") and stair[5].endswith("vs fixed-2") and "**beats**" not in stair[5]
