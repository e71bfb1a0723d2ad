"""The dense static front (#26): its targets, the shipped searches, resuming a search, and its rows' names."""

import itertools
import json

import pytest

from agents.app.bench import front_names
from agents.app.front import check_row_names, is_reserved_name
from agents.controllers.baselines import StaticAgent
from agents.controllers.registry import BenchContext, default_agent_names, known_agent_names, make_agent
from agents.controllers.static_configs import (
    DEFAULT_TARGETS,
    FRONT_TARGETS,
    POLICY_DIR,
    static_search,
    target_bitops,
)
from supernets.foundation.errors import UnknownNameError, UsageError
from supernets.registry import load_supernet, load_supernet_split

QUARTER = "resnet20-quarter-fashionmnist"
CHOICES = (2, 3, 4, 5, 6, 7, 8)
# static-3 to static-7 as they were shipped before the front grew (issue #26): the descent from
# all-8 is deterministic, so adding targets must not move any of them.
BEFORE = {
    "resnet20-fashionmnist": {
        "7": [6, 7, 6, 7, 6, 5, 6, 7, 7, 8, 6, 8, 8, 8, 7, 8, 7, 8],
        "6": [4, 4, 6, 7, 6, 4, 5, 7, 6, 6, 5, 6, 8, 6, 6, 7, 7, 6],
        "5": [4, 4, 4, 6, 6, 4, 5, 5, 6, 4, 5, 5, 8, 6, 5, 4, 4, 4],
        "4": [4, 3, 4, 4, 5, 3, 4, 4, 5, 4, 5, 3, 6, 5, 4, 2, 2, 3],
        "3": [4, 2, 4, 4, 2, 2, 4, 4, 3, 3, 3, 3, 4, 2, 3, 2, 2, 2],
    },
    QUARTER: {
        "7": [5, 6, 6, 8, 8, 8, 7, 7, 8, 8, 6, 7, 5, 8, 8, 4, 8, 5],
        "6": [5, 4, 5, 6, 7, 7, 5, 6, 5, 8, 6, 6, 5, 8, 6, 3, 8, 3],
        "5": [5, 4, 4, 5, 7, 6, 4, 4, 5, 7, 5, 4, 4, 6, 5, 3, 5, 2],
        "4": [5, 4, 4, 3, 5, 5, 4, 4, 4, 5, 4, 4, 4, 4, 4, 2, 3, 2],
        "3": [4, 3, 2, 2, 4, 2, 4, 4, 3, 4, 2, 2, 2, 4, 3, 2, 2, 2],
    },
}
NAMES = [
    "2.25",
    "2.5",
    "2.75",
    "3",
    "3.25",
    "3.5",
    "3.75",
    "4",
    "4.25",
    "4.5",
    "4.75",
    "5",
    "5.5",
    "6",
    "6.5",
    "7",
    "7.5",
]


@pytest.fixture(scope="module")
def quarter():
    return load_supernet(QUARTER)


def test_at_least_16_targets_span_all_2_to_all_8_with_short_chords(quarter):
    assert len(FRONT_TARGETS) >= 16 and set(DEFAULT_TARGETS) <= set(FRONT_TARGETS)
    n = quarter.num_switchable
    macs = sum(s.macs for s in quarter.layer_specs) + sum(s.macs for _, s in quarter.extra_specs)
    fixed = quarter.bitops([8] * n) - 64 * macs  # the stem and classifier, at 8x8
    for b in FRONT_TARGETS:
        assert target_bitops(quarter, b) == pytest.approx(fixed + b * b * macs, rel=1e-12)
        if float(b).is_integer():
            assert target_bitops(quarter, b) == quarter.bitops([int(b)] * n)  # today's definition, exactly
    spend = sorted(
        [quarter.bitops([2] * n), quarter.bitops([8] * n), *(target_bitops(quarter, b) for b in FRONT_TARGETS)]
    )
    assert spend[0] == quarter.bitops([2] * n) and spend[-1] == quarter.bitops([8] * n)
    # No chord of the front spans more than an eighth of all-8's BitOps; the cheap end is denser.
    steps = [b - a for a, b in itertools.pairwise(spend)]
    assert max(steps) <= quarter.bitops([8] * n) / 8 and max(steps[:4]) < min(steps[-4:])


@pytest.mark.parametrize("supernet", sorted(BEFORE))
def test_shipped_searches_hold_every_target_and_keep_static_3_to_7(supernet):
    data = json.loads((POLICY_DIR / f"static-{supernet}.json").read_text())
    assert list(data["configs"]) == NAMES
    assert {b: data["configs"][b] for b in BEFORE[supernet]} == BEFORE[supernet]
    trace = data["trace"]
    assert trace[0]["bits"] == [8] * 18 and trace[-1]["bits"] == [2] * 18  # the whole path, all-8 to all-2
    for a, b in itertools.pairwise(trace):  # one layer one step lower each time
        lowered = [i for i in range(18) if a["bits"][i] != b["bits"][i]]
        assert (
            lowered == [b["lowered"]]
            and CHOICES.index(a["bits"][b["lowered"]]) == CHOICES.index(b["bits"][b["lowered"]]) + 1
        )
    for name, config in data["configs"].items():  # the first configuration of the path under each target
        first = next(t for t in trace if t["bitops"] <= data["targets"][name])
        assert config == first["bits"] and data["bitops"][name] <= data["targets"][name]
    assert "--limit 1000" in data["command"] and data["images"] == 1000 and data["split"] == "val"


def test_a_resumed_search_is_one_long_search(quarter):
    split = load_supernet_split(QUARTER, "val")
    kwargs = {"targets": (2.5, 3, 5, 7.5), "bit_choices": (2, 4, 8), "limit": 32, "progress": False}
    long = json.loads(json.dumps(static_search(quarter, split, **kwargs)))
    assert long["trace"][-1]["bits"] == [2] * 18 and len(long["trace"]) == 2 * 18 + 1
    for k in (1, 20, len(long["trace"])):  # an older, shorter search stopped at step k - 1
        resumed = static_search(quarter, split, **kwargs, resume={**long, "trace": long["trace"][:k]})
        assert resumed.pop("resumed_at_step") == k - 1
        assert json.loads(json.dumps(resumed)) == long
    with pytest.raises(UsageError, match="same --limit"):
        static_search(quarter, split, **{**kwargs, "limit": 30}, resume={**long, "trace": long["trace"][:3]})


def test_fractional_targets_are_rows_with_names_that_parse():
    ctx = BenchContext("ABN-ResNet20Quarter-v1", QUARTER, CHOICES)
    data = json.loads((POLICY_DIR / f"static-{QUARTER}.json").read_text())
    agent = make_agent("static-2.5", ctx, progress=False)
    assert (
        isinstance(agent, StaticAgent) and agent.name == "static-2.5" and list(agent.config) == data["configs"]["2.5"]
    )
    assert {f"static-{b}" for b in NAMES} <= set(known_agent_names())
    assert is_reserved_name("static-2.5")
    with pytest.raises(UsageError, match=r"calls itself 'static-2\.5'"):
        check_row_names([("m:A", "static-2.5", True)])
    for bad in ("static-2.6", "static-2.50", "static-8"):
        with pytest.raises(UnknownNameError, match="unknown agent"):
            make_agent(bad, ctx, progress=False)
    # The dense front runs for the verdicts; the default leaderboard lists static-3 to static-7 only.
    assert [n for n in front_names(ctx, []) if n.startswith("static-")] == [f"static-{b}" for b in NAMES]
    assert [n for n in default_agent_names("ABN-ResNet20Quarter-v1") if n.startswith("static-")] == [
        f"static-{b}" for b in range(3, 8)
    ]
