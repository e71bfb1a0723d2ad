"""Integer kernels of the frozen path: bit-identical to float32 conv2d, and the tuner's choices and cache."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from supernets import int_kernels as ik
from supernets.quant import signed_range, unsigned_range


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test tunes into its own cache file, from an empty memory."""
    monkeypatch.setenv(ik.CACHE_ENV, str(tmp_path / "int-kernels.json"))
    ik.reset_choices()
    yield
    ik.reset_choices()


def _bits(y: torch.Tensor) -> torch.Tensor:
    # The float32 bit patterns in one layout: torch.equal on these tells -0.0 from +0.0.
    return y.contiguous(memory_format=torch.channels_last).view(torch.int32)


def _extreme_codes(gen, shape, lo, hi):
    """Uniform codes in [lo, hi], with rows all lo, all hi, and all 0 (zero windows, -0.0 traps)."""
    x = torch.randint(lo, hi + 1, shape, generator=gen, dtype=torch.float32)
    x[0], x[1] = lo, hi
    x[2] = 0
    x[3, ::2] = hi  # alternating extreme channels
    return x.contiguous(memory_format=torch.channels_last)


def _weights(gen, shape, bits):
    lo, hi = signed_range(bits)
    w = torch.randint(lo, hi + 1, shape, generator=gen, dtype=torch.float32)
    w[0] = lo  # an all-minimum filter, and an all-maximum one
    w[-1] = hi
    return w.contiguous(memory_format=torch.channels_last)


# (c_in, c_out, kernel, stride, groups): 3x3, 1x1, depthwise; stride 1 and 2.
SHAPES = [
    (16, 16, 3, 1, 1),
    (16, 32, 3, 2, 1),
    (24, 16, 1, 1, 1),
    (8, 48, 1, 2, 1),
    (24, 24, 3, 1, 24),
    (48, 48, 3, 2, 48),
]


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
@pytest.mark.parametrize("shape", SHAPES, ids=[f"{c}>{o}-k{k}s{s}g{g}" for c, o, k, s, g in SHAPES])
def test_integer_kernels_equal_float32_bit_for_bit(shape, signed):
    c_in, c_out, k, stride, groups = shape
    gen = torch.Generator().manual_seed(c_in * 100 + c_out + k + stride)
    checked = 0
    for bits in range(2, 9):
        act = signed_range(bits) if signed else unsigned_range(bits)
        weight = _weights(gen, (c_out, c_in // groups, k, k), bits)
        assert ik.applicable(weight, act)
        for batch, size in ((7, 9), (33, 8)):  # odd batches; odd and even sizes
            codes = _extreme_codes(gen, (batch, c_in, size, size), *act)
            ref = F.conv2d(codes, weight, stride=stride, padding=k // 2, groups=groups)
            for name in ik.candidates(weight, stride, k // 2, groups):
                y = ik.make_kernel(name, weight, stride, k // 2, groups, act)(codes)
                assert y.shape == ref.shape and y.dtype == torch.float32
                assert torch.equal(_bits(y), _bits(ref)), (name, bits, batch)
                checked += 1
            with ik.using("force"):  # the entry point run_frozen calls
                assert torch.equal(_bits(ik.conv_codes(codes, weight, stride, k // 2, groups, act)), _bits(ref))
    assert checked >= 14  # every bit-width and batch ran at least one integer kernel
    if k == 1 and stride == 1:
        assert "int_mm" in ik.candidates(weight, stride, 0, groups)


def test_kernels_keep_float32_where_it_might_not_be_exact():
    act = unsigned_range(8)
    weight = torch.full((4, 64, 3, 3), -128.0)  # 255 * 128 * 576 > 2**24: float32 sums could round
    assert ik.exact_bound(weight, act) >= ik.EXACT_LIMIT and not ik.applicable(weight, act)
    assert ik.applicable(weight[:, :8], act)  # 255 * 128 * 72 < 2**24
    assert not ik.applicable(weight + 0.5, act)  # not integer codes
    assert not ik.applicable(weight, (0, 511))  # codes that fit no byte
    codes = torch.randint(0, 256, (40, 64, 5, 5)).float()
    with ik.using("force"):
        y = ik.conv_codes(codes, weight, 1, 1, 1, act)
    assert torch.equal(y, F.conv2d(codes, weight, padding=1))  # the float32 kernel ran
    assert ik.code_kind((0, 127)) == "u7" and ik.code_kind((-8, 7)) == "s8" and ik.code_kind((0, 255)) == "u8"


def test_shipped_supernet_gives_the_same_logits_with_integer_kernels(test_split):
    from supernets.registry import load_supernet

    net = load_supernet("resnet20-quarter-fashionmnist")
    x = test_split.inputs(slice(0, 256))
    rng = np.random.default_rng(0)
    configs = [[b] * net.num_switchable for b in (2, 4, 8)] + [list(rng.choice(net.bit_choices, net.num_switchable))]
    for bits in configs:
        with ik.using("off"):
            off = net(x, bits)
        with ik.using("force"):
            on = net(x, bits)
        assert torch.equal(on.view(torch.int32), off.view(torch.int32)), bits
    # One bit-width per row: the grouped path (padded group batches, outputs written into buffers).
    per_row = [rng.choice(net.bit_choices, len(x)) for _ in range(net.num_switchable)]
    logits = {}
    for m in ("off", "force"):
        with ik.using(m), torch.inference_mode():
            logits[m] = net.run_layers(net.stem_forward(x), per_row)
    assert torch.equal(logits["force"].view(torch.int32), logits["off"].view(torch.int32))


def test_auto_times_once_caches_per_machine_and_skips_small_batches(monkeypatch):
    gen = torch.Generator().manual_seed(3)
    act = unsigned_range(4)
    weight = _weights(gen, (16, 16, 3, 3), 4)
    timed = []
    real = ik.time_shape

    def counting(*args, **kwargs):
        timed.append(args[:3])
        return real(*args, **kwargs)

    monkeypatch.setattr(ik, "time_shape", counting)
    with ik.using("auto"), torch.inference_mode():
        small = _extreme_codes(gen, (ik.MIN_BATCH - 1, 16, 6, 6), *act)
        ik.conv_codes(small, weight, 1, 1, 1, act)
        assert timed == []  # small batches never tune
        for batch in (33, 40, 64):  # one power-of-two bucket: timed once, at 64 rows
            codes = _extreme_codes(gen, (batch, 16, 6, 6), *act)
            y = ik.conv_codes(codes, weight, 1, 1, 1, act)
            assert torch.equal(_bits(y), _bits(F.conv2d(codes, weight, padding=1)))
        assert timed == [(64, 6, 6)]
        data = json.loads(ik.cache_path().read_text())
        record = data[ik.machine_key()][ik.shape_key(64, 6, 6, weight, 1, 1, 1, act)]
        assert record["choice"] in ("fp32", *ik.KERNELS) and set(record["ms"]) >= {"fp32", "onednn"}
        assert record["inexact"] == []
        ik.reset_choices()  # a new process: the choice comes from the file
        ik.conv_codes(_extreme_codes(gen, (50, 16, 6, 6), *act), weight, 1, 1, 1, act)
        assert timed == [(64, 6, 6)]


def test_mode_from_environment_values(monkeypatch):
    assert ik._parse_mode(None) == ik.DEFAULT_MODE
    assert [ik._parse_mode(v) for v in ("0", "off", "1", "on", "auto", "force", " FORCE ")] == [
        "off",
        "off",
        "auto",
        "auto",
        "auto",
        "force",
        "force",
    ]
    assert ik._parse_mode(" ") == ik.DEFAULT_MODE
    with pytest.raises(ValueError, match=ik.ENV):
        ik._parse_mode("fast")
    monkeypatch.setenv(ik.ENV, "fast")
    with pytest.warns(RuntimeWarning, match="float32"):
        assert ik._mode_from_env() == "off"
    old = ik.mode()
    with ik.using("force"):
        assert ik.mode() == "force"
    assert ik.mode() == old
