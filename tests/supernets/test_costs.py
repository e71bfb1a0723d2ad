"""Cost models (supernets.costs): BitOps, BitFusion against a hand count, and a user's table."""

import json

import numpy as np
import pytest

from supernets.costs import CostModelError, bitfusion_bricks, cost_table, layer_names, load_cost_file, write_cost_file
from supernets.registry import config_of
from supernets.resnet import ResNetSupernet

QUARTER = "resnet20-quarter-fashionmnist"
BITS = (2, 3, 4, 5, 6, 7, 8)


@pytest.fixture(scope="module")
def arch():
    return ResNetSupernet(config_of(QUARTER))  # the architecture only: costs read no weights


def hand_macs() -> list[int]:
    """The quarter-width ResNet-20's switchable 3x3 convs, k*k*C_in*C_out*H_out*W_out, counted by hand.

    Stage 1: 4 -> 4 channels at 28x28; stage 2 opens with a stride-2 conv 4 -> 8 at 14x14, then 8 -> 8;
    stage 3 opens with 8 -> 16 at 7x7, then 16 -> 16.
    """
    stage1 = [9 * 4 * 4 * 28 * 28] * 6
    stage2 = [9 * 4 * 8 * 14 * 14] + [9 * 8 * 8 * 14 * 14] * 5
    stage3 = [9 * 8 * 16 * 7 * 7] + [9 * 16 * 16 * 7 * 7] * 5
    return stage1 + stage2 + stage3


HAND_FIXED_MACS = 9 * 1 * 4 * 28 * 28 + 16 * 10  # stem conv 1 -> 4 at 28x28, classifier 16 -> 10
BRICKS = {2: 1, 3: 4, 4: 4, 5: 9, 6: 9, 7: 16, 8: 16}  # ceil(w/2) * ceil(a/2) with w = a, by hand


def test_bitfusion_cost_of_a_configuration_against_a_hand_count(arch):
    macs = hand_macs()
    assert macs[:7] == [112_896] * 6 + [56_448] and HAND_FIXED_MACS == 28_384
    table = cost_table(arch, BITS, "bitfusion")
    config = [2, 3, 4, 5, 6, 7, 8, 2, 3, 4, 5, 6, 7, 8, 2, 3, 4, 5]
    expected = sum(m * BRICKS[b] for m, b in zip(macs, config)) + 16 * HAND_FIXED_MACS
    all8 = 16 * (sum(macs) + HAND_FIXED_MACS)
    assert table.total(config) == expected and table.all8 == all8 and table.fixed == 16 * HAND_FIXED_MACS
    assert table.fraction(config) == expected / all8
    assert (table.model, table.unit, table.layers.dtype) == ("bitfusion", "bricks", np.int64)
    # 3 bits cost what 4 do (two bricks per operand either way); so do 5 and 6, 7 and 8.
    assert table.total([3] * 18) == table.total([4] * 18) < table.total([5] * 18) == table.total([6] * 18)
    assert [bitfusion_bricks(b, b) for b in BITS] == [BRICKS[b] for b in BITS]
    assert bitfusion_bricks(3, 8) == 2 * 4


def test_bitops_table_is_the_supernets_own_bitops(arch):
    table = cost_table(arch, BITS)
    assert table.layers.dtype == np.int64 and table.all8 == arch.max_bitops
    assert table.layers.tolist() == [[int(arch.layer_bitops(t, b)) for b in BITS] for t in range(18)]
    config = [2, 8] * 9
    assert table.total(config) == arch.bitops(config)
    assert table.total(config) == sum(m * b * b for m, b in zip(hand_macs(), config)) + 64 * HAND_FIXED_MACS


def full_costs(arch, scale: float = 1.0) -> dict[str, dict[int, float]]:
    """A table over every layer: cost = scale * (t + 1) * bits, fixed layers at 8 only."""
    costs = {name: {b: scale * (t + 1) * b for b in BITS} for t, name in enumerate(layer_names(arch)["switchable"])}
    costs["stem"], costs["fc"] = {8: 0.5}, {8: 0.25}
    return costs


def test_csv_and_json_tables_load_to_the_same_table(arch, tmp_path):
    costs = full_costs(arch, 0.01)
    write_cost_file(tmp_path / "t.csv", costs, "ms")
    (tmp_path / "t.json").write_text(
        json.dumps({"unit": "ms", "layers": {k: {str(b): c for b, c in v.items()} for k, v in costs.items()}})
    )
    from_csv = cost_table(arch, BITS, str(tmp_path / "t.csv"))
    from_json = cost_table(arch, BITS, str(tmp_path / "t.json"))
    assert np.array_equal(from_csv.layers, from_json.layers) and from_csv.layers.dtype == np.float64
    assert (
        (from_csv.fixed, from_csv.all8, from_csv.unit)
        == (from_json.fixed, from_json.all8, "ms")
        == (
            0.75,
            0.75 + sum(0.01 * (t + 1) * 8 for t in range(18)),
            "ms",
        )
    )
    assert from_csv.model == "table:t.csv" and from_csv.sha256 != from_json.sha256
    assert load_cost_file(tmp_path / "t.csv") == ("ms", costs)
    assert from_csv.layers[3, BITS.index(5)] == pytest.approx(0.01 * 4 * 5, rel=1e-15)


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda c: c.update({"stage9.conv": {8: 1.0}}), r"names layers the supernet does not have: \['stage9.conv'\]"),
        (lambda c: c.pop("stage2.block1.conv2"), r"no row for layer 'stage2.block1.conv2'"),
        (lambda c: c["stage1.block1.conv1"].pop(3), r"layer 'stage1.block1.conv1' has no cost at bits \[3\]"),
        (lambda c: c["fc"].pop(8), r"no cost at bits \[8\]|no row for layer 'fc'"),
        (lambda c: c["stem"].update({8: -1.0}), r"layer 'stem' at 8 bits costs -1.0; a cost is a finite number >= 0"),
    ],
)
def test_user_table_errors_name_the_problem(arch, tmp_path, edit, needle):
    costs = full_costs(arch)
    edit(costs)
    costs = {k: v for k, v in costs.items() if v}
    write_cost_file(tmp_path / "t.csv", costs, "ms")
    with pytest.raises(CostModelError, match=needle):
        cost_table(arch, BITS, str(tmp_path / "t.csv"))


def test_bad_files_are_refused_with_the_expected_format(arch, tmp_path):
    (tmp_path / "h.csv").write_text("name,bits,latency\nstem,8,1\n")
    with pytest.raises(CostModelError, match=r"has the header \['name', 'bits', 'latency'\]; expected a CSV"):
        cost_table(arch, BITS, str(tmp_path / "h.csv"))
    (tmp_path / "b.json").write_text('{"unit": "ms", "layers": {')
    with pytest.raises(CostModelError, match=r"is not valid JSON .*expected a CSV with the header 'layer,bits,cost'"):
        cost_table(arch, BITS, str(tmp_path / "b.json"))
    (tmp_path / "n.json").write_text('{"unit": "ms"}')
    with pytest.raises(CostModelError, match="has no 'layers' object"):
        cost_table(arch, BITS, str(tmp_path / "n.json"))
    (tmp_path / "x.csv").write_text("layer,bits,cost\nstem,eight,1\n")
    with pytest.raises(CostModelError, match="both must be numbers"):
        cost_table(arch, BITS, str(tmp_path / "x.csv"))
    with pytest.raises(CostModelError, match=r"unknown cost_model 'latency': choose one of \['bitops', 'bitfusion'\]"):
        cost_table(arch, BITS, "latency")
    with pytest.raises(CostModelError, match="does not exist"):
        cost_table(arch, BITS, str(tmp_path / "missing.csv"))
    assert issubclass(CostModelError, ValueError)
