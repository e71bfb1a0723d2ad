"""Conditioned policies as curves: the sweep protocol, the plain-torch Envelope network, the shipped files."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from abn_gym.vector import ABNVectorEnv
from agents.app.episodes import run_agent
from agents.controllers.base import AgentActionError
from agents.controllers.conditioned import (
    ENVELOPE_KIND,
    EnvelopeAgent,
    EnvelopeSweep,
    MOQNet,
    envelope_network,
)
from agents.controllers.model_agents import BenchContext
from agents.controllers.registry import SWEEPABLE_POLICIES, known_agent_names, make_sweepable
from agents.controllers.static_configs import POLICY_DIR
from agents.controllers.sweepables import calibrated_values
from agents.controllers.sweeps import SweepableAgent
from supernets.foundation.errors import CheckpointError, UnknownNameError
from supernets.foundation.files import atomic_torch_save, sha256

STEEP = "ABN-ResNet20Quarter-v1"
QUARTER = "resnet20-quarter-fashionmnist"
CTX = BenchContext(STEEP, QUARTER, (2, 3, 4, 5, 6, 7, 8))


def random_policy(obs_dim: int, seed: int = 0, decide_at=(0,), bits=(2, 3, 4)) -> dict:
    """An Envelope policy file's contents with random weights (what train_morl exports)."""
    torch.manual_seed(seed)
    net = MOQNet(obs_dim, len(bits), 2, [8])
    return {
        "kind": ENVELOPE_KIND,
        "q_net": {k: v for k, v in net.state_dict().items() if k.startswith("net.")},
        "obs_mean": torch.randn(obs_dim),
        "obs_scale": torch.rand(obs_dim) + 0.5,
        "env": STEEP,
        "decide_at": list(decide_at),
        "bit_choices": list(bits),
        "obs_dim": obs_dim,
        "action_dim": len(bits),
        "reward_dim": 2,
        "net_arch": [8],
        "cost_scale": 0.1,
    }


@pytest.fixture(scope="module")
def obs_dim():
    return int(ABNVectorEnv(1, supernet=QUARTER).single_observation_space.shape[0])


@pytest.fixture
def policy_file(tmp_path, obs_dim):
    path = tmp_path / "policy.pt"
    atomic_torch_save(random_policy(obs_dim), path)
    card = {"kind": ENVELOPE_KIND, "sha256": sha256(path), "calibration": [[0.0, 0.26, 0.9], [1.0, 0.076, 0.87]]}
    (tmp_path / "card.json").write_text(json.dumps(card))
    return path


def test_calibrated_values_interpolate_cheapest_first():
    table = [[0.0, 0.30, 0.9], [0.5, 0.20, 0.89], [1.0, 0.10, 0.87]]  # a larger weight costs less
    values = calibrated_values(table, 3, 0.10, 0.30)
    assert values == [1.0, 0.5, 0.0]
    # halfway between two calibrated costs: halfway between their weights
    assert calibrated_values(table, 1, 0.25, 0.25) == [0.25]
    # outside the calibrated costs: the end values, never extrapolated
    assert calibrated_values(table, 2, 0.0, 0.5) == [1.0, 0.0]


def test_calibration_needs_two_points():
    with pytest.raises(CheckpointError, match="calibration"):
        calibrated_values([[0.5, 0.2]], 3, 0.1, 0.3)


def test_moqnet_acts_argmax_of_weighted_q(obs_dim):
    policy = random_policy(obs_dim, seed=1)
    net = envelope_network(policy)
    obs = np.random.default_rng(0).normal(size=(50, obs_dim)).astype(np.float32)
    for w in ([1.0, 0.0], [0.5, 0.5], [0.1, 0.9]):
        # the same network written out by hand in numpy
        x = (obs - policy["obs_mean"].numpy()) / policy["obs_scale"].numpy()
        h = np.concatenate([x, np.tile(w, (len(x), 1))], axis=1)
        q = policy["q_net"]
        h = np.maximum(h @ q["net.0.weight"].numpy().T + q["net.0.bias"].numpy(), 0)
        out = (h @ q["net.2.weight"].numpy().T + q["net.2.bias"].numpy()).reshape(len(x), 3, 2)
        expected = (out @ np.asarray(w)).argmax(axis=1)
        np.testing.assert_array_equal(net.actions(obs, np.asarray(w)), expected)


def test_envelope_agent_decides_once_and_maps_to_env_actions(obs_dim):
    agent = EnvelopeAgent(random_policy(obs_dim, decide_at=(0,), bits=(2, 4)), 0.3)
    agent.reset(4, 0)
    obs = np.random.default_rng(1).normal(size=(4, obs_dim)).astype(np.float32)
    mask = np.ones((4, 7), dtype=bool)
    first = agent.act(obs, {"layer": 0, "action_mask": mask, "bit_choices": (2, 3, 4, 5, 6, 7, 8)})
    assert set(first) <= {0, 2}  # 2 and 4 bits are actions 0 and 2 of the 7-action env
    later = agent.act(obs[::-1].copy(), {"layer": 5, "action_mask": mask, "bit_choices": (2, 3, 4, 5, 6, 7, 8)})
    np.testing.assert_array_equal(later, first)  # not a decision layer: the last decision is repeated
    assert agent.decision_macs_per_episode == agent.net.macs and agent.decision_macs_per_step == 0


def test_envelope_agent_refuses_an_env_without_its_bits(obs_dim):
    agent = EnvelopeAgent(random_policy(obs_dim, bits=(2, 3)), 0.5)
    agent.reset(1, 0)
    with pytest.raises(AgentActionError, match="bit_choices"):
        agent.act(
            np.zeros((1, obs_dim), np.float32),
            {"layer": 0, "action_mask": np.ones((1, 2), bool), "bit_choices": (4, 8)},
        )


def test_envelope_sweep_follows_the_protocol(policy_file):
    sweep = EnvelopeSweep(policy_file)
    assert isinstance(sweep, SweepableAgent) and sweep.sweep_parameter == "weight"
    values = sweep.sweep_values(4, 0.076, 0.26)
    assert len(values) == 4 and values[0] > values[-1]  # cheapest first: the largest cost weight
    agent, overrides = sweep.at(values[0])
    assert overrides == {} and agent.name == f"envelope@{values[0]:g}"


def test_a_changed_policy_file_is_refused(policy_file):
    data = bytearray(policy_file.read_bytes())
    data[-20] ^= 0xFF
    policy_file.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        EnvelopeSweep(policy_file)


def test_curve_names_are_listed_and_unknown_ones_refused():
    assert {f"{n}@sweep" for n in SWEEPABLE_POLICIES} <= set(known_agent_names())
    with pytest.raises(UnknownNameError, match="known curves"):
        make_sweepable("nothing@sweep", CTX)


@pytest.mark.parametrize("name", ["ppo-budget", "envelope", "escalation"])
def test_shipped_curves_load_and_act_deterministically(name):
    assert (POLICY_DIR / f"{name}-{STEEP}.json").is_file()
    sweep = make_sweepable(f"{name}@sweep", CTX)
    assert isinstance(sweep, SweepableAgent)
    values = sweep.sweep_values(3, 0.076, 0.26)
    assert len(values) == 3
    costs = []
    for value in values:
        runs = []
        for _ in range(2):
            agent, overrides = sweep.at(value)
            runs.append(run_agent(agent, STEEP, "val", 24, env_overrides=overrides, progress=False))
        assert [r["bits"] for r in runs[0]] == [r["bits"] for r in runs[1]]
        costs.append(np.mean([r["bitops_fraction"] for r in runs[0]]))
        if "budget" in overrides:  # the mask holds each image to the budget
            assert max(r["bitops_fraction"] for r in runs[0]) <= value + 1e-9
    assert costs[0] <= costs[-1] + 1e-9  # cheapest first


def test_a_shipped_curve_with_a_changed_file_is_refused(tmp_path, monkeypatch):
    import agents.controllers.registry as registry  # to point the shipped folder at a copy

    for suffix in (".pt", ".json"):
        shutil.copy(POLICY_DIR / f"envelope-{STEEP}{suffix}", tmp_path / f"envelope-{STEEP}{suffix}")
    card = json.loads((tmp_path / f"envelope-{STEEP}.json").read_text())
    card["sha256"] = "0" * 64
    (tmp_path / f"envelope-{STEEP}.json").write_text(json.dumps(card))
    monkeypatch.setattr(registry, "POLICY_DIR", tmp_path)
    with pytest.raises(CheckpointError, match="sha256"):
        make_sweepable("envelope@sweep", CTX)
