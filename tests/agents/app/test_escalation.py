"""The escalation controller: rollouts against the plain forward pass, the decision rule, the agent in the bench."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from agents.app.bench import run_agent
from agents.app.train_escalation import EscalationArgs, outcome_classes, rollouts, score_escalation, train_escalation
from agents.controllers.escalation import EscalationAgent, load_policy, rest_cost_fraction
from agents.controllers.registry import BenchContext, make_agent
from supernets.data import load_split, normalize
from supernets.foundation.errors import CheckpointError, UsageError

ENV = "ABN-ResNet-v0"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("escalation")
    args = EscalationArgs(env=ENV, decide_at=2, train_images=400, val_images=120, epochs=3, batch=200, out=str(out))
    return train_escalation(args, command="test", progress=False)


def test_outcome_classes_by_hand():
    low = np.array([True, True, False, False])
    high = np.array([True, False, True, False])
    assert outcome_classes(low, high).tolist() == [1, 0, 2, 1]


def test_rollouts_match_the_plain_forward_pass(net):
    data = rollouts(ENV, "val", 7, decide_at=3, low=2, high=5, batch=4, progress=False)
    split = load_split("val")
    x = normalize(split.images[:7])
    labels = split.labels[:7].numpy()
    low = net(x, [2] * 18).argmax(1).numpy() == labels
    high = net(x, [2] * 3 + [5] * 15).argmax(1).numpy() == labels
    assert data["correct_low"].tolist() == low.tolist() and data["correct_high"].tolist() == high.tolist()
    assert np.all(data["bitops_low"] == net.bitops([2] * 18))
    assert np.all(data["bitops_high"] == net.bitops([2] * 3 + [5] * 15))
    assert data["obs"].shape == (7, 172)
    # The observation at layer 3 records the three 2-bit layers before it.
    bits = data["obs"][:, 128 + 6 + 18 : 128 + 6 + 18 + 18]
    assert np.allclose(bits[:, :3], 2 / 8) and np.all(bits[:, 3:] == 0)


def test_rest_cost_fraction_by_hand(net):
    extra = sum(net.layer_specs[t].bitops(4) - net.layer_specs[t].bitops(2) for t in range(5, 18))
    assert rest_cost_fraction(ENV, 5, 2, 4) == pytest.approx(extra / net.max_bitops)


def test_decision_rule_and_operating_points(trained):
    policy = load_policy(trained)
    agent = EscalationAgent(policy)
    assert agent.threshold == pytest.approx(0.04 * policy["rest_cost_fraction"])
    obs = np.random.default_rng(0).random((50, 172)).astype(np.float32)
    agent.reset(50, 0)
    infos = {"bit_choices": (2, 3, 4, 5, 6, 7, 8)}
    before = agent.act(obs, {**infos, "layer": 1})
    assert before.tolist() == [0] * 50  # low bits before the decision layer
    at = agent.act(obs, {**infos, "layer": 2})
    gain = agent.model.gain(obs)
    assert at.tolist() == np.where(gain > agent.threshold, 2, 0).tolist()
    assert agent.act(obs * 0, {**infos, "layer": 9}).tolist() == at.tolist()  # the decision holds
    never = EscalationAgent(policy, cost_coef=1e9)
    never.reset(50, 0)
    assert never.act(obs, {**infos, "layer": 2}).tolist() == [0] * 50


def test_bench_agrees_with_the_offline_evaluation(trained):
    card = json.loads((trained.parent / "card.json").read_text())
    ctx = BenchContext(ENV, "resnet20-fashionmnist", (2, 3, 4, 5, 6, 7, 8))
    agent = make_agent(str(trained), ctx)
    records = run_agent(agent, ENV, "val", 120, batch_size=50, progress=False)
    acc = np.mean([r["correct"] for r in records])
    ops = np.mean([r["bitops"] for r in records])
    assert acc == pytest.approx(card["val"]["accuracy"]) and ops == pytest.approx(card["val"]["bitops"])
    macs = agent.model.obs_dim * (1 + agent.model.hidden) + agent.model.hidden * 3
    assert {r["decision_macs"] for r in records} == {macs}  # one MLP evaluation per input
    again = score_escalation(load_policy(trained), rollouts(ENV, "val", 120, 2, 2, 4, progress=False))
    assert again["accuracy"] == pytest.approx(acc)


def test_tampered_or_foreign_policies_are_refused(trained, tmp_path):
    bad = tmp_path / "policy.pt"
    bad.write_bytes(trained.read_bytes()[:-10] + b"0123456789")
    (tmp_path / "card.json").write_text((trained.parent / "card.json").read_text())
    with pytest.raises(CheckpointError, match=r"sha256.*abn-gym train-escalation"):
        load_policy(bad)
    ctx = BenchContext("ABN-ResNet20Quarter-v1", "resnet20-quarter-fashionmnist", (2, 3, 4, 5, 6, 7, 8))
    with pytest.raises(UsageError, match=r"belongs on ABN-ResNet-v0.*supernet 'resnet20-fashionmnist' there"):
        make_agent(str(trained), ctx)  # its card's env, with another supernet
    ctx = BenchContext(ENV, "resnet20-fashionmnist", (2, 3))
    with pytest.raises(UsageError, match="not actions"):
        make_agent(str(trained), ctx)
    with pytest.raises(UsageError, match="BitOps price"):
        make_agent("escalation@abc", BenchContext(ENV, "resnet20-fashionmnist", (2, 3, 4, 5, 6, 7, 8)))


def test_training_is_deterministic(tmp_path, trained):
    args = EscalationArgs(
        env=ENV, decide_at=2, train_images=400, val_images=120, epochs=3, batch=200, out=str(tmp_path)
    )
    path = train_escalation(args, progress=False)
    a, b = torch.load(path, weights_only=True), torch.load(trained, weights_only=True)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k])


@pytest.mark.parametrize("field,split", [("train_images", "train"), ("val_images", "val")])
def test_more_images_than_the_split_holds_is_refused_before_any_rollout(tmp_path, field, split):
    size = len(load_split(split))
    args = EscalationArgs(env=ENV, train_images=10, val_images=10, out=str(tmp_path / "out"))
    flag = "--" + field.replace("_", "-")
    expected = rf"^{flag} {size + 1}: the {split} split has {size} images; choose 1 to {size}$"
    with pytest.raises(UsageError, match=expected):
        train_escalation(replace(args, **{field: size + 1}), progress=False)
    assert not (tmp_path / "out").exists()  # refused before anything is written
