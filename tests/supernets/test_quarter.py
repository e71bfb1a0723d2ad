"""The steep task's supernet: its test table against the bars it was chosen for, from a fresh evaluation."""

import json

import numpy as np
import pytest

from abn_gym.tables import choose_cost_coef, cost_coef_interval
from supernets.data import load_split
from supernets.registry import CHECKPOINT_DIR, load_supernet, read_supernet_card
from supernets.report import correct_matrix, float_accuracy, random_configs

NAME = "resnet20-quarter-fashionmnist"


@pytest.mark.slow
def test_quarter_supernet_meets_its_bars_on_the_test_split():
    net = load_supernet(NAME)
    split = load_split("test")
    uniform = {b: [b] * net.num_switchable for b in (2, 4, 8)}
    correct = correct_matrix(net, split, list(uniform.values()) + random_configs(net), progress=False)
    acc = dict(zip(uniform, correct[:3].mean(axis=1)))
    random_mean = correct[3:].mean()
    card = read_supernet_card(NAME)
    rows = {r["config"]: r["accuracy"] for r in card["eval"]["rows"]}
    # The card is what a fresh evaluation of the shipped checkpoint gives.
    for b in uniform:
        assert rows[f"uniform-{b}"] == pytest.approx(acc[b])
    assert rows["random-mean-of-20"] == pytest.approx(random_mean)
    # The steep trade-off the task exists for, and the ordering around it.
    assert acc[8] - acc[2] >= 0.030
    assert acc[2] < acc[4] < acc[8]
    assert random_mean > acc[2]
    # Within a point of its full-precision reference (0.98 points, a narrow margin the README states),
    # the shipped reference evaluated again too, after its sha256 is checked.
    ref = card["float_reference"]
    reference = float_accuracy(CHECKPOINT_DIR / ref["file"], split, expected_sha256=ref["sha256"])
    assert reference == pytest.approx(ref["accuracy"])
    assert reference - acc[8] <= 0.010


def test_cost_coef_rule_by_hand():
    table = {
        2: {"accuracy": 0.80, "bitops_fraction": 0.1},
        4: {"accuracy": 0.85, "bitops_fraction": 0.3},
        8: {"accuracy": 0.86, "bitops_fraction": 1.0},
    }
    lo, hi = cost_coef_interval(table, 4)
    # uniform-4 beats 8 when 0.85 - 0.3c >= 0.86 - c (c >= 1/70), and 2 when 0.85 - 0.3c >= 0.80 - 0.1c (c <= 0.25).
    assert lo == pytest.approx(0.01 / 0.7) and hi == pytest.approx(0.25)
    middle, coef, _ = choose_cost_coef(table)
    assert middle == 4 and coef == pytest.approx(0.1)  # (0.0143 + 0.25) / 2 = 0.132, one significant digit
    table[4]["accuracy"] = 0.80  # never the best
    assert np.isnan(cost_coef_interval(table, 4)[0])
    with pytest.raises(ValueError, match="uniform-4"):
        choose_cost_coef(table)


def test_quarter_card_records_the_sweep_and_the_reference():
    card = read_supernet_card(NAME)
    sup, ref = card["train_args"], card["float_reference"]["train_args"]
    # The reference is the same two-phase recipe without quantization: same warm start, epochs,
    # optimiser settings and seed (so the same data order); only the mode and the folder differ.
    assert (sup["mode"], ref["mode"]) == ("supernet", "float")
    same = ("arch", "warm_start", "epochs", "batch_size", "lr", "weight_decay", "seed", "train_limit")
    assert {k: sup[k] for k in same} == {k: ref[k] for k in same}
    assert card["float_reference"]["epochs"] == card["epochs"] == 4
    assert any("capacity sweep" in n for n in card["notes"])
    assert json.loads(json.dumps(card["architecture"]))["stage_channels"] == [4, 8, 16]
