import pytest

from supernets import resnet20
from supernets.bitops import LayerSpec, bitops_unit, conv_out
from supernets.convert import from_torchvision_resnet18


def test_layer_macs_by_hand():
    # stem: 3x3 conv, 1 -> 16 channels, 28x28 output: 9 * 1 * 16 * 784
    assert LayerSpec("stem", 1, 16, 3, 1, 28, 28).macs == 112_896
    # a stage-2 downsampling conv: 3x3, 16 -> 32, 14x14 output
    assert LayerSpec("c", 16, 32, 3, 2, 14, 14).macs == 903_168
    assert LayerSpec("c", 16, 32, 3, 2, 14, 14).bitops(4) == 16 * 903_168
    assert conv_out(28, 3, 2, 1) == 14 and conv_out(14, 3, 2, 1) == 7


def test_resnet20_descriptors_and_totals():
    net = resnet20()
    specs = net.layer_specs
    assert net.num_switchable == 18
    assert [s.c_out for s in specs] == [16] * 6 + [32] * 6 + [64] * 6
    assert [s.h_out for s in specs] == [28] * 6 + [14] * 6 + [7] * 6
    assert [s.stride for s in specs].count(2) == 2
    # 6 convs of 9*16*16*784, one of 9*16*32*196 + 5 of 9*32*32*196, one of 9*32*64*49 + 5 of 9*64*64*49
    switchable = 6 * 1_806_336 + 2 * (903_168 + 5 * 1_806_336)
    assert sum(s.macs for s in specs) == switchable
    fixed = 112_896 + 64 * 10
    for b in (2, 4, 8):
        assert net.bitops([b] * 18) == b * b * switchable + 64 * fixed
    mixed = [2] * 9 + [8] * 9
    expected = sum(s.macs * b * b for s, b in zip(specs, mixed)) + 64 * fixed
    assert net.bitops(mixed) == expected
    assert net.max_bitops == net.bitops([8] * 18)
    assert sum(net.layer_bitops(i, 3) for i in range(18)) == 9 * switchable


def test_resnet18_matches_published_counts():
    net = from_torchvision_resnet18()
    macs = sum(s.macs for s in net.layer_specs + net.fixed_specs) + sum(s.macs for _, s in net.extra_specs)
    assert macs == pytest.approx(1.814e9, rel=1e-3)
    assert net.bitops([4] * 16) == pytest.approx(34.7e9, rel=2e-3)
    assert net.bitops([3] * 16) == pytest.approx(22.9e9, rel=3e-3)
    assert net.bitops([2] * 16) == pytest.approx(14.4e9, rel=3e-3)


@pytest.mark.parametrize(
    "all8,unit",
    [(1.97e9, "GBitOps"), (0.1246e9, "GBitOps"), (5.2e6, "MBitOps"), (0.09e9, "MBitOps"), (40e3, "kBitOps")],
)
def test_a_small_network_gets_a_unit_whose_four_decimals_tell_its_configurations_apart(all8, unit):
    scale, name = bitops_unit(all8)
    assert name == unit and scale == {"G": 1e9, "M": 1e6, "k": 1e3}[unit[0]]
    # two configurations 0.1% of all-8 apart never print alike, and all-8 prints as at least 0.1
    assert f"{all8 / scale:.4f}" != f"{0.999 * all8 / scale:.4f}" and all8 / scale >= 0.1
