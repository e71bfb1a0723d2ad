"""The one supernet interface: every family passes the same tests (steps, BitOps, frozen exactness, grouping)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from supernets.bitops import conv_out
from supernets.families import (
    IMPORT_ENV,
    build_supernet,
    config_from_dict,
    family_config,
    load_arch_config,
    register_family,
)
from supernets.float_net import FloatSupernet, warm_start
from supernets.foundation.errors import CheckpointError, UsageError
from supernets.mobilenetv2 import MobileNetV2Config
from supernets.plain import PlainConfig
from supernets.resnet import ResNetConfig
from supernets.supernet import ArchConfig, LayerPlan, Plan, StemPlan

ROOT = Path(__file__).resolve().parents[2]
BITS = (2, 4, 8)
CONFIGS = {
    "resnet-A": ResNetConfig(
        input_size=12,
        stem_channels=4,
        stage_channels=(4, 8),
        blocks_per_stage=(1, 2),
        stage_strides=(1, 2),
        bit_choices=BITS,
    ),
    "resnet-B": ResNetConfig(
        input_size=12,
        stem_channels=4,
        stage_channels=(4, 6),
        blocks_per_stage=(1, 1),
        stage_strides=(1, 2),
        shortcut="B",
        bit_choices=BITS,
    ),
    "mobilenetv2": MobileNetV2Config(
        input_size=12,
        stem_channels=4,
        stage_channels=(4, 6),
        blocks_per_stage=(1, 2),
        stage_strides=(1, 2),
        expansion=(1, 3),
        last_channels=8,
        bit_choices=BITS,
    ),
    "plain": PlainConfig(input_size=12, stem_channels=4, channels=(4, 6, 6), pools=(1, 0, 0), bit_choices=BITS),
}


def hand_macs(config: ArchConfig) -> tuple[list[int], int]:
    """(switchable MACs in step order, fixed MACs): counted from the config's fields, not from the plan."""
    size = conv_out(config.input_size, getattr(config, "stem_kernel", 3), config.stem_stride, 1)
    fixed = 9 * config.in_channels * config.stem_channels * size * size
    c, macs = config.stem_channels, []
    if isinstance(config, ResNetConfig):
        for c_out, n, stride in zip(config.stage_channels, config.blocks_per_stage, config.stage_strides):
            for j in range(n):
                s = stride if j == 0 else 1
                out = (size - 1) // s + 1
                conv1, conv2 = 9 * c * c_out * out * out, 9 * c_out * c_out * out * out
                projection = c * c_out * out * out if config.shortcut == "B" and (s != 1 or c != c_out) else 0
                macs += [conv1 + projection, conv2]
                c, size = c_out, out
    elif isinstance(config, MobileNetV2Config):
        for c_out, n, stride, t in zip(
            config.stage_channels, config.blocks_per_stage, config.stage_strides, config.expansion
        ):
            for j in range(n):
                s = stride if j == 0 else 1
                out, hidden = (size - 1) // s + 1, c * t
                if t != 1:
                    macs.append(c * hidden * size * size)
                macs += [9 * hidden * out * out, hidden * c_out * out * out]  # depthwise: one input channel each
                c, size = c_out, out
        macs.append(c * config.last_channels * size * size)
        c = config.last_channels
    else:
        for c_out, pool in zip(config.channels, config.pools):
            macs.append(9 * c * c_out * size * size)
            c, size = c_out, size // 2 if pool else size
    return macs, fixed + c * config.num_classes


def frozen(config: ArchConfig, seed: int = 0):
    torch.manual_seed(seed)
    net = build_supernet(config)
    net.init_quantizers(torch.randn(16, config.in_channels, config.input_size, config.input_size))
    return net.freeze()


@pytest.mark.parametrize("name", CONFIGS)
def test_bitops_match_a_hand_count(name):
    config = CONFIGS[name]
    net = build_supernet(config)
    macs, fixed = hand_macs(config)
    assert net.num_switchable == len(macs)
    rng = np.random.default_rng(0)
    for bits in ([2] * len(macs), [8] * len(macs), rng.choice(BITS, len(macs)).tolist()):
        assert net.bitops(bits) == sum(b * b * m for b, m in zip(bits, macs)) + 64 * fixed
    assert [net.layer_bitops(i, 4) for i in range(len(macs))] == [16 * m for m in macs]


@pytest.mark.parametrize("name", CONFIGS)
def test_stepwise_equals_forward_and_grouped_rows_equal_rows_alone(name):
    config = CONFIGS[name]
    net = frozen(config)
    x = torch.randn(9, config.in_channels, config.input_size, config.input_size)
    rng = np.random.default_rng(1)
    bits = rng.choice(BITS, (9, net.num_switchable))
    with torch.inference_mode():
        state = net.stem_forward(x)
        for i in range(net.num_switchable):
            state = net.step(state, i, bits[:, i])  # one bit-width per row: grouped layouts
        grouped = net.head(state)
        for r in range(9):
            alone = net(x[r : r + 1], bits[r].tolist())
            assert torch.equal(alone[0], grouped[r]), f"row {r} differs when run inside a mixed batch"
        # a whole batch at one configuration equals its rows run alone, whatever the batch
        uniform = net(x, bits[0].tolist())
        assert torch.equal(uniform[3], net(x[3:4], bits[0].tolist())[0])


@pytest.mark.parametrize("name", CONFIGS)
def test_frozen_path_matches_the_fake_quant_path(name):
    config = CONFIGS[name]
    net = frozen(config)
    x = torch.randn(6, config.in_channels, config.input_size, config.input_size)
    bits = [4] * net.num_switchable
    with torch.inference_mode():
        integer = net(x, bits)
    net.unfreeze().eval()
    with torch.no_grad():
        fake = net(x, bits)
    torch.testing.assert_close(integer, fake, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", CONFIGS)
def test_observed_statistics_are_of_the_next_layers_input(name):
    config = CONFIGS[name]
    net = frozen(config)
    x = torch.randn(5, config.in_channels, config.input_size, config.input_size)
    bits = np.array([2, 8, 4, 8, 2])
    seen = {}
    with torch.inference_mode():
        state = net.stem_forward(x)
        for i in range(net.num_switchable):
            parts = []
            state = net.step(state, i, bits, observe=lambda y, rows, p=parts: p.append((y.clone(), rows)))
            full = state.select(slice(None)).x  # the next layer's input, in batch order
            for y, rows in parts:
                order = np.arange(5) if rows is None else rows.numpy()
                assert torch.equal(y, full[order]), f"layer {i}: observed activations are not the layer's output"
            seen[i] = full.shape
    assert len(seen) == net.num_switchable


@pytest.mark.parametrize("name", CONFIGS)
def test_float_reference_mirrors_the_supernet(name):
    config = CONFIGS[name]
    torch.manual_seed(0)
    model = FloatSupernet(config).eval()
    net = build_supernet(config)
    warm_start(net, model)
    x = torch.randn(4, config.in_channels, config.input_size, config.input_size)
    assert model(x).shape == (4, config.num_classes)
    assert [tuple(c.weight.shape) for c in model.convs] == [tuple(c.weight.shape) for c in net.convs]
    assert torch.equal(net.convs[-1].weight, model.convs[-1].weight)


@pytest.mark.parametrize("name", CONFIGS)
def test_config_round_trips_through_its_card_dict(name):
    config = CONFIGS[name]
    d = config.as_dict()
    assert d["family"] == config.family
    assert config_from_dict(d) == config


def test_a_card_without_a_family_is_a_resnet():
    d = ResNetConfig().as_dict()
    del d["family"]
    assert isinstance(config_from_dict(d), ResNetConfig)


def test_the_mobilenet_plan_has_depthwise_linear_bottlenecks_and_residuals():
    net = build_supernet(CONFIGS["mobilenetv2"])
    kinds = net.layer_kinds
    assert kinds == [
        "depthwise",
        "project",
        "expand",
        "depthwise",
        "project",
        "expand",
        "depthwise",
        "project",
        "pointwise",
    ]
    depthwise = [s for s, k in zip(net.layer_specs, kinds) if k == "depthwise"]
    assert all(s.groups == s.c_in == s.c_out for s in depthwise)
    assert net.buffer_span == 4  # the residual of an expanded block spans three steps
    steps = net._steps
    assert [s.relu for s in steps] == [k != "project" for k in kinds]
    assert [s.closes for s in steps] == [False, True, False, False, False, False, False, True, False]


class TestInconsistentPlans:
    def _config(self, layers, **kw):
        @dataclasses.dataclass(frozen=True)
        class Custom(ArchConfig):
            family: ClassVar[str] = "custom-test"

            def plan(self) -> Plan:
                return Plan(StemPlan(4), tuple(layers))

        return Custom(input_size=8, **kw)

    @pytest.mark.parametrize(
        ("layers", "message"),
        [
            ([LayerPlan("a", 4, opens="A"), LayerPlan("b", 4, opens="A", closes=True)], "still open"),
            ([LayerPlan("a", 4, closes=True)], "no earlier layer opened"),
            ([LayerPlan("a", 4, opens="A"), LayerPlan("b", 4)], "never closed"),
            ([LayerPlan("a", 6, groups=4)], "groups=4 must divide"),
            ([LayerPlan("a", 4, opens="A"), LayerPlan("b", 7, closes=True)], "even number"),
            ([LayerPlan("a", 4, stride=2, pool=2), LayerPlan("b", 4, pool=2), LayerPlan("c", 4)], "shrink it"),
            ([], "no switchable layers"),
        ],
    )
    def test_errors_name_the_layer(self, layers, message):
        with pytest.raises(UsageError, match=message):
            self._config(layers).validate()

    def test_a_linear_last_layer_is_refused(self):
        with pytest.raises(UsageError, match="ReLU"):
            self._config([LayerPlan("a", 4, relu=False)]).validate()


def test_an_unregistered_family_says_how_to_register(tmp_path):
    path = tmp_path / "arch.json"
    path.write_text('{"family": "nobody-registered-this"}')
    with pytest.raises(UsageError, match="--import MODULE"):
        load_arch_config(path)
    with pytest.raises(UsageError, match="unknown network family"):
        config_from_dict({"family": "nobody-registered-this"})


def test_a_taken_family_name_is_refused():
    @dataclasses.dataclass(frozen=True)
    class Impostor(ArchConfig):
        family: ClassVar[str] = "resnet"

    with pytest.raises(UsageError, match="already registered"):
        register_family(Impostor)
    assert family_config("resnet") is ResNetConfig


def test_unknown_fields_of_a_family_are_named(tmp_path):
    path = tmp_path / "arch.toml"
    path.write_text('family = "plain"\nchannels = [4, 8]\nstage_channels = [4]\n')
    with pytest.raises(UsageError, match="stage_channels"):
        load_arch_config(path)
    with pytest.raises(CheckpointError, match="does not know"):
        config_from_dict({"family": "plain", "stage_channels": [4]})


def test_a_process_started_by_a_command_run_with_import_knows_the_family(tmp_path):
    (tmp_path / "fam_for_children.py").write_text(
        "from dataclasses import dataclass\nfrom typing import ClassVar\n"
        "from supernets import ArchConfig, LayerPlan, Plan, StemPlan, register_family\n\n"
        "@register_family\n@dataclass(frozen=True)\nclass Child(ArchConfig):\n"
        "    family: ClassVar[str] = 'child-family'\n\n"
        "    def plan(self):\n        return Plan(StemPlan(4), (LayerPlan('conv1', 4),))\n"
    )
    code = "from supernets.families import family_config; print(family_config('child-family').__name__)"
    env = {**os.environ, IMPORT_ENV: "fam_for_children", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Child"
    env.pop(IMPORT_ENV)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert "unknown network family 'child-family'" in done.stderr
