"""The static search returns distinct, non-dominated configurations (#27, section 6).

The greedy descent from all-8 alone gave a user's small network a static-4 equal to its static-5
and static-3..5 below fixed-2; the search now pools the descents from every uniform width and
picks each target's row from the pool's front.
"""

import itertools
import json

import pytest

from agents.controllers.registry import BenchContext, make_agent
from agents.controllers.static_configs import FRONT_TARGETS, POLICY_DIR, front_static_rows, static_search, target_name
from agents.controllers.static_pool import UNDOMINATED, Pool, pick
from supernets.data import load_split
from supernets.evaluate import accuracy
from supernets.foundation.errors import UsageError
from supernets.registry import load_supernet
from supernets.resnet import ResNetConfig
from supernets.train import TrainArgs, train

TINY = ResNetConfig(stem_channels=4, stage_channels=(4, 8), blocks_per_stage=(1, 1), stage_strides=(1, 2))
LIMIT = 400


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """(cost, accuracy) ``a`` is at least as accurate as ``b`` at no higher cost."""
    return a[1] >= b[1] and a[0] <= b[0]


def test_the_front_drops_duplicates_ties_and_what_a_uniform_row_dominates():
    pool = Pool()
    pool.add([2, 2], 4, 0.50)  # fixed-2
    pool.add([4, 4], 16, 0.80)  # fixed-4
    pool.add([2, 4], 10, 0.50)  # no more accurate than the cheaper fixed-2
    pool.add([4, 2], 10, 0.60)
    pool.add([4, 2], 10, 0.10)  # found again: its first score stays
    pool.add([3, 2], 10, 0.60)  # a tie with [4, 2], found later
    pool.add([3, 4], 16, 0.80)  # a tie with fixed-4
    pool.add([3, 3], 12, 0.55)  # costs more than [4, 2] for less
    pool.add([4, 3], 14, 0.70)
    assert pool.front() == [((4, 2), 10, 0.60), ((4, 3), 14, 0.70)]


def test_each_target_takes_the_best_within_its_cost_once():
    front = [((2, 3), 5.0, 0.5), ((3, 3), 7.0, 0.6), ((3, 4), 9.0, 0.7)]
    picked, unmet = pick(front, {"4": 4.0, "5": 5.5, "6": 8.0, "6.5": 8.5, "7": 12.0})
    assert picked == {"5": (2, 3), "6": (3, 3), "7": (3, 4)}
    assert unmet == {
        "4": UNDOMINATED,
        "6.5": "the most accurate configuration within this cost is static-6's: none that costs more scores higher",
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small supernet over bit-widths 2..8, trained for one short epoch: an uneven accuracy landscape."""
    out = tmp_path_factory.mktemp("tiny")
    common = dict(epochs=1, batch_size=64, train_limit=512, eval_limit=32, threads=1, num_random=1)
    final = train(TrainArgs(mode="supernet", out=str(out), lr=0.05, **common), TINY)
    return load_supernet("resnet20-fashionmnist", checkpoint=final)


def test_a_small_network_gets_distinct_rows_no_fixed_or_static_row_dominates(tiny):
    val = load_split("val")
    result = static_search(tiny, val, limit=LIMIT, progress=False)
    configs = result["configs"]
    assert set(configs) | set(result["unmet"]) == {target_name(b) for b in FRONT_TARGETS}
    assert not set(configs) & set(result["unmet"]) and len(configs) >= 3
    assert len({tuple(c) for c in configs.values()}) == len(configs)  # pairwise distinct
    assert not any(len(set(c)) == 1 for c in configs.values())  # none is a fixed-b row

    # Each row's cost and correct count measured again, by the plain evaluation of the whole configuration.
    def measured(config):
        return tiny.bitops(config), round(accuracy(tiny, val, config, LIMIT) * LIMIT)

    rows = {f"static-{b}": measured(c) for b, c in configs.items()}
    assert {f"static-{b}": round(a * LIMIT) for b, a in result["val_accuracy"].items()} == {
        k: v[1] for k, v in rows.items()
    }
    for b in configs:
        assert rows[f"static-{b}"][0] == result["bitops"][b] <= result["targets"][b]
    fixed = {f"fixed-{b}": measured([b] * tiny.num_switchable) for b in tiny.bit_choices}
    for (name, row), (other, theirs) in itertools.product(rows.items(), {**rows, **fixed}.items()):
        assert name == other or not dominates(theirs, row), (name, row, other, theirs)
    # The trace is still the whole descent from all-8, resumable as before.
    assert result["trace"][0]["bits"] == [8] * 4 and result["trace"][-1]["bits"] == [2] * 4
    assert result["starts"] == [8, 7, 6, 5, 4, 3]


def test_a_target_without_a_row_is_named_with_its_reason(tmp_path):
    quarter = "resnet20-quarter-fashionmnist"
    data = json.loads((POLICY_DIR / f"static-{quarter}.json").read_text())
    del data["configs"]["4"]
    data["unmet"] = {"4": UNDOMINATED}
    (tmp_path / f"static-{quarter}.json").write_text(json.dumps(data))
    ctx = BenchContext("ABN-ResNet20Quarter-v1", quarter, (2, 3, 4, 5, 6, 7, 8), static_from=str(tmp_path))
    assert make_agent("static-3", ctx, progress=False).config == data["configs"]["3"]  # the result is used
    with pytest.raises(UsageError, match=r"^static-4: the static search for .* has no row at target 4: no config"):
        make_agent("static-4", ctx, progress=False)
    assert "static-4" not in front_static_rows(data) and "static-4.25" in front_static_rows(data)
