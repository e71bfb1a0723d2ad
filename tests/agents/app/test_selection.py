"""Coarse decisions and the best policy on val: what `abn-gym train --decide-at --keep-best-every` relies on."""

import json

import numpy as np
import pytest

from agents.app.bench import BenchArgs, bench, run_agent
from agents.app.selection import StaticFront, kept_model, read_selection, static_front
from agents.app.train import AgentTrainArgs, train_agent
from agents.controllers.sb3_agent import SB3Agent, policy_macs

STEEP = "ABN-ResNet20Quarter-v1"
TINY = dict(
    env=STEEP,
    num_envs=8,
    n_steps=6,
    batch_size=48,
    n_epochs=1,
    net_arch="16",
    normalize_obs=True,
    decide_at="0,7,13",
    group_size=4,
    checkpoint_every=48,
)


@pytest.fixture(scope="module")
def coarse_run(tmp_path_factory):
    """A tiny normalised PPO run with three decision points, the group reward, and the best policy kept."""
    out = tmp_path_factory.mktemp("coarse")
    args = AgentTrainArgs(**TINY, timesteps=48 * 4, keep_best_every=48, eval_episodes=40, out=str(out))
    train_agent(args, command="test")
    return out


@pytest.mark.slow
def test_mixture_gap_is_the_leaderboards_hull_gap(tmp_path):
    """StaticFront.mixture_gap against bench's own paired hull gap for a random agent, on the same val images."""
    front = static_front(STEEP, "val", 120)
    assert front.names[0] == "fixed-2" and "static-4" in front.names and front.correct.shape == (len(front.names), 120)
    agents = [*front.names, "random"]
    result = bench(BenchArgs(env=STEEP, agents=agents, split="val", episodes=120, out=str(tmp_path), progress=False))
    row = next(r for r in result["rows"] if r["agent"] == "random")
    doc = json.loads((tmp_path / "results.json").read_text())
    correct = np.array([r["correct"] for r in doc["records"] if r["agent"] == "random"], dtype=float)
    assert front.mixture_gap(correct, row["bitops"]) == pytest.approx(row["front"]["hull_gap"], abs=1e-12)


def test_mixture_gap_by_hand():
    """Two static rows: halfway in BitOps is the average of their per-image correctness."""
    correct = np.array([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0]])
    front = StaticFront(("fixed-2", "fixed-8"), correct, np.array([1, 3]))
    # At 2 BitOps the mixture scores (0.25 + 0.75) / 2 = 0.5; an agent right on 3 of 4 images is 0.25 above it.
    assert front.mixture_gap(np.array([1, 1, 1, 0]), 2.0) == pytest.approx(0.25)
    assert front.mixture_gap(np.array([1, 1, 1, 0]), 5.0) == pytest.approx(0.0)  # flat beyond the most accurate
    assert np.isnan(front.mixture_gap(np.array([1, 1, 1, 1]), 0.5))  # cheaper than every static row


@pytest.mark.slow
def test_coarse_policy_runs_the_same_episodes_on_the_plain_env(coarse_run):
    """A decide_at policy repeats its decision between its layers: the plain env gives its own env's episodes."""
    agent = SB3Agent.load(coarse_run / "model.zip")
    assert agent.decide_at == (0, 7, 13)
    assert agent.decision_macs_per_step == 0 and agent.decision_macs_per_episode == 3 * policy_macs(agent.model)
    plain = run_agent(agent, STEEP, "val", 64, progress=False)
    coarse = run_agent(agent, STEEP, "val", 64, progress=False, env_overrides={"decide_at": (0, 7, 13)})
    for a, b in zip(plain, coarse, strict=True):
        assert a["bits"] == b["bits"] and a["correct"] == b["correct"] and a["bitops"] == b["bitops"]
        assert a["reward"] == pytest.approx(b["reward"], abs=1e-9)
        assert a["decision_macs"] == b["decision_macs"] == 3 * policy_macs(agent.model)
        assert [a["bits"][k] for k in range(7)] == [a["bits"][0]] * 7  # one decision for layers 0-6


@pytest.mark.slow
def test_best_policy_on_val_becomes_the_model(coarse_run):
    """model.zip is the evaluation with the largest mixture gap; the card records it and the steps trained."""
    selection = read_selection(coarse_run)
    gaps = {e["timesteps"]: e["mixture_gap"] for e in selection["evaluations"]}
    assert len(gaps) >= 4 and selection["best"] == max(gaps, key=gaps.get)
    card = json.loads((coarse_run / "card.json").read_text())
    assert card["timesteps"] >= 48 * 4 and card["selected_on_val"]["best"] == selection["best"]
    kept, _ = kept_model(coarse_run)
    assert kept.name == f"model_{selection['best']}_steps.zip"
    assert sorted(p.name for p in kept.parent.glob("model_*")) == sorted([kept.name, kept.stem + ".obs_norm.json"])
    # The shipped model acts as the kept one, with the kept one's statistics, on the images it was chosen on.
    agent = SB3Agent.load(coarse_run / "model.zip")
    best = run_agent(agent, STEEP, "val", 40, progress=False)
    accuracy = np.mean([r["correct"] for r in best])
    point = next(e for e in selection["evaluations"] if e["timesteps"] == selection["best"])
    assert accuracy == pytest.approx(point["accuracy"]) and card["val"]["accuracy"] == pytest.approx(accuracy)
    assert np.mean([r["bitops"] for r in best]) == pytest.approx(point["bitops"])


def test_bad_decision_points_and_group_sizes_are_refused_before_training(tmp_path):
    from supernets.foundation.errors import ABNGymError

    for bad in ({"decide_at": "0,x"}, {"group_size": 0}, {"keep_best_every": -1}, {"budget": "0.1,x"}):
        args = AgentTrainArgs(**{**TINY, **bad, "timesteps": 48, "out": str(tmp_path / "run")})
        with pytest.raises(ABNGymError, match=r"decide-at|group-size|keep-best-every|budget"):
            train_agent(args)
        assert not (tmp_path / "run").exists()
