"""The supernet report: the card's eval table and the warnings publish prints."""

from supernets.registry import read_supernet_card
from supernets.report import falling_accuracy_warnings, format_table


def test_the_card_table_uses_the_small_networks_unit():
    rows = [("uniform-2", 0.5, 3.1e5), ("uniform-8", 0.6, 5.0e6)]
    report = {"rows": [{"config": c, "accuracy": a, "bitops": b} for c, a, b in rows]}
    assert format_table(report).splitlines()[0] == "| config | accuracy (%) | MBitOps |"
    assert "| uniform-2 | 50.00 | 0.310 |" in format_table(report)


def test_publish_warns_when_accuracy_falls_as_bits_rise():
    # The MNIST-subset supernet: 81.87 / 69.07 / 62.67 / 89.47% at uniform 2/3/4/8.
    rows = [(2, 0.8187), (3, 0.6907), (4, 0.6267), (8, 0.8947)]
    report = {"split": "val", "rows": [{"config": f"uniform-{b}", "accuracy": a} for b, a in rows]}
    lines = falling_accuracy_warnings(report)
    assert len(lines) == 2 and "uniform-3 (69.07%) is 12.80 points below uniform-2 (81.87%)" in lines[0]
    assert "uniform-4 (62.67%) is 19.20 points below uniform-2" in lines[1] and "--epochs" in lines[1]
    # The shipped supernets' cards (the steep one's 4 -> 8 dip is 0.05 points) give none.
    for name in ("resnet20-fashionmnist", "resnet20-quarter-fashionmnist"):
        assert falling_accuracy_warnings(read_supernet_card(name)["eval"]) == []
