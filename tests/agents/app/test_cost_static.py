"""The static search and its saved fronts under a cost model (#28, section 3): BitFusion and a user's table."""

import json
import math

import pytest

from agents.app.static_search import save_result
from agents.controllers.static_configs import (
    FRONT_TARGETS,
    POLICY_DIR,
    find_result,
    shipped_path,
    static_search,
    target_bitops,
    target_cost,
)
from supernets.costs import cost_table
from supernets.foundation.errors import UsageError
from supernets.registry import load_supernet, load_supernet_split, read_supernet_card

QUARTER = "resnet20-quarter-fashionmnist"
CHOICES = (2, 3, 4, 5, 6, 7, 8)
SMALL = {"targets": (2.5, 4, 6), "limit": 24, "progress": False}


@pytest.fixture(scope="module")
def quarter():
    return load_supernet(QUARTER)


@pytest.fixture(scope="module")
def val():
    return load_supernet_split(QUARTER, "val")


def bricks(net, bits):
    """BitFusion bricks of a configuration counted by hand: ceil(w/2) * ceil(a/2) per MAC, w = a = the layer's bits."""
    per_mac = [math.ceil(b / 2) ** 2 for b in bits]
    total = sum(per_mac[t] * s.macs for t, s in enumerate(net.layer_specs))
    total += sum(per_mac[t] * s.macs for t, s in net.extra_specs)  # ResNet's "B" downsample follows its layer
    return float(total + 16 * sum(s.macs for s in net.fixed_specs))  # stem and classifier at 8 bits: 4 * 4


def test_bitops_is_the_default_and_keeps_the_old_keys(quarter, val):
    default = static_search(quarter, val, **SMALL, bit_choices=(2, 4, 8))
    explicit = static_search(quarter, val, **SMALL, bit_choices=(2, 4, 8), cost_model="bitops")
    assert default == explicit and "cost" not in default and "cost" not in default["trace"][1]
    assert default["cost_model"] == {"model": "bitops", "unit": "BitOps", "sha256": None}
    assert default["targets"] == {f"{b:g}": target_bitops(quarter, b) for b in SMALL["targets"]}


def test_bitfusion_descent_skips_widths_that_cost_no_less(quarter, val):
    result = static_search(quarter, val, **SMALL, cost_model="bitfusion")
    assert result["cost_model"] == {"model": "bitfusion", "unit": "bricks", "sha256": None}
    trace = result["trace"]
    assert trace[0]["bits"] == [8] * 18 and trace[-1]["bits"] == [2] * 18
    # 8 -> 6 -> 4 -> 2 per layer: 3 lowerings each, and never an odd width (it costs what the next even one does).
    assert len(trace) == 3 * 18 + 1
    assert all(b % 2 == 0 for step in trace for b in step["bits"])
    for step in trace:
        assert step["cost"] == bricks(quarter, step["bits"]) and step["bitops"] == quarter.bitops(step["bits"])
    table = cost_table(quarter, CHOICES, "bitfusion")
    for name, config in result["configs"].items():  # each within its target, priced in bricks
        assert result["cost"][name] <= result["targets"][name] and result["cost"][name] == bricks(quarter, config)
        assert result["targets"][name] == target_cost(quarter, table, float(name))


def test_targets_sit_where_the_bitops_targets_sit(quarter):
    """Under BitFusion a target is the BitOps target's fraction of all-8: the front keeps its density."""
    table = cost_table(quarter, CHOICES, "bitfusion")
    for b in FRONT_TARGETS:
        assert target_cost(quarter, table, b) / table.all8 == pytest.approx(
            target_bitops(quarter, b) / quarter.max_bitops, rel=1e-12
        )
    assert target_cost(quarter, table, 2) == bricks(quarter, [2] * 18)
    assert target_cost(quarter, table, 8) == bricks(quarter, [8] * 18)


def test_resume_refuses_another_cost_model(quarter, val):
    result = json.loads(json.dumps(static_search(quarter, val, **SMALL, cost_model="bitfusion")))
    with pytest.raises(UsageError, match="cost model"):
        static_search(quarter, val, **SMALL, resume={**result, "trace": result["trace"][:3]})
    resumed = static_search(
        quarter, val, **SMALL, cost_model="bitfusion", resume={**result, "trace": result["trace"][:5]}
    )
    assert resumed.pop("resumed_at_step") == 4 and json.loads(json.dumps(resumed)) == result


def test_saved_fronts_are_found_by_cost_model(quarter, val, tmp_path):
    sha = read_supernet_card(QUARTER)["sha256"]
    bitops = find_result(QUARTER, sha, CHOICES)
    assert bitops is not None and "cost_model" not in bitops  # the shipped BitOps front, as it was
    shipped = find_result(QUARTER, sha, CHOICES, cost_model="bitfusion")
    assert shipped is not None and shipped["cost_model"]["model"] == "bitfusion"
    assert shipped_path(QUARTER, "bitfusion") == POLICY_DIR / f"static-{QUARTER}-bitfusion.json"
    result = static_search(quarter, val, targets=(3, 4, 5, 6, 7), limit=8, progress=False, cost_model="bitfusion")
    path = save_result(result, tmp_path, QUARTER, sha, "test")
    assert path.name == f"static-{QUARTER}-bitfusion.json"
    assert find_result(QUARTER, sha, CHOICES, tmp_path, "bitfusion")["images"] == 8
    with pytest.raises(UsageError, match="does not exist"):
        find_result(QUARTER, sha, CHOICES, tmp_path)  # no BitOps search there


def test_shipped_bitfusion_front_holds_every_target_in_even_widths(quarter):
    data = json.loads(shipped_path(QUARTER, "bitfusion").read_text())
    assert list(data["configs"]) == [f"{b:g}" for b in FRONT_TARGETS]
    assert data["supernet_sha256"] == read_supernet_card(QUARTER)["sha256"] and data["images"] == 1000
    assert all(b % 2 == 0 for config in data["configs"].values() for b in config)
    for name, config in data["configs"].items():
        assert data["cost"][name] == bricks(quarter, config) <= data["targets"][name]
