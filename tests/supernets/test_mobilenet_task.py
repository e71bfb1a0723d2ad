"""The MobileNetV2 task's supernet: its test table against the bars of issue #27, from a fresh evaluation."""

import pytest

from abn_gym.registration import ENV_IDS, MOBILENET, MOBILENET_BUDGET
from supernets.data import load_split
from supernets.registry import CHECKPOINT_DIR, load_supernet, read_supernet_card
from supernets.report import correct_matrix, float_accuracy


@pytest.mark.slow
def test_mobilenet_supernet_meets_its_bars_on_the_test_split():
    net = load_supernet(MOBILENET)
    split = load_split("test")
    uniform = {b: [b] * net.num_switchable for b in (2, 4, 8)}
    acc = dict(zip(uniform, correct_matrix(net, split, list(uniform.values()), progress=False).mean(axis=1)))
    card = read_supernet_card(MOBILENET)
    rows = {r["config"]: r["accuracy"] for r in card["eval"]["rows"]}
    for b in uniform:  # the card is what a fresh evaluation of the shipped checkpoint gives
        assert rows[f"uniform-{b}"] == pytest.approx(acc[b])
    assert acc[8] - acc[2] >= 0.030  # bit-widths matter: the task can rank controllers
    assert acc[2] < acc[4] < acc[8]
    ref = card["float_reference"]
    reference = float_accuracy(CHECKPOINT_DIR / ref["file"], split, expected_sha256=ref["sha256"])
    assert reference == pytest.approx(ref["accuracy"])
    assert reference - acc[8] <= 0.015  # all-8 within 1.5 points of its float reference


def test_the_card_records_the_family_and_the_re_estimation():
    card = read_supernet_card(MOBILENET)
    assert card["architecture"]["family"] == "mobilenetv2"
    assert card["recalibrate_bn"]["images"] == 2048
    net = load_supernet(MOBILENET)
    kinds = net.layer_kinds
    assert net.family == "mobilenetv2" and len(kinds) == 18
    assert kinds.count("depthwise") == 6 and kinds.count("project") == 6 and kinds.count("expand") == 5


def test_the_budget_id_sits_just_below_uniform_4():
    net = load_supernet(MOBILENET)
    fraction = {b: net.bitops([b] * net.num_switchable) / net.max_bitops for b in (2, 3, 4)}
    assert fraction[3] < MOBILENET_BUDGET < fraction[4]
    assert ENV_IDS["ABN-MobileNetV2-Budget-v0"]["budget"] == MOBILENET_BUDGET
