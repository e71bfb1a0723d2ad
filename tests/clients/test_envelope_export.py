"""The exported Envelope policy acts as morl-baselines' own Envelope does, without morl-baselines.

``agents.app.train_morl`` trains morl-baselines' Envelope and exports its Q-network as plain tensors;
``agents.controllers.conditioned`` rebuilds it in plain torch. Here a tiny run is trained, and the
rebuilt network's actions are compared with ``Envelope.eval`` (its greedy action) on standardised
observations of val images at several weights. Skipped when morl-baselines is not installed
(``make clients`` installs it).
"""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("morl_baselines")

import abn_gym  # noqa: F401  (registers the ids)
from agents.app import train_morl
from agents.controllers.conditioned import EnvelopeSweep, envelope_network, load_envelope_policy

# Importing morl-baselines and training take over 10 s here: `make clients` runs these.
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")


def test_rebuilt_network_acts_as_envelope_eval(tmp_path, monkeypatch):
    trained = {}
    original = train_morl.export_policy

    def keep(agent, mean, scale, meta):  # keeps the live morl-baselines agent to compare with
        trained["agent"] = agent
        return original(agent, mean, scale, meta)

    monkeypatch.setattr(train_morl, "export_policy", keep)
    args = train_morl.MORLTrainArgs(
        timesteps=300,
        learning_starts=50,
        norm_episodes=50,
        calibration_episodes=40,
        calibration_points=3,
        net_arch="16,16",
        seed=0,
        out=str(tmp_path),
    )
    path = train_morl.train(args, "test")
    policy, card = load_envelope_policy(path)
    net = envelope_network(policy)
    env = gym.make("mo-ABN-ResNet20Quarter-v1", split="val", decide_at=(0,), bit_choices=(2, 3, 4))
    obs = np.stack([env.reset(seed=i)[0] for i in range(40)]).astype(np.float32)
    x = ((obs - policy["obs_mean"].numpy()) / policy["obs_scale"].numpy()).astype(np.float32)
    agent = trained["agent"]
    seen: set[int] = set()
    for w in ([1.0, 0.0], [0.7, 0.3], [0.5, 0.5], [0.2, 0.8]):
        theirs = [agent.eval(row, np.asarray(w, dtype=np.float32)) for row in x]
        np.testing.assert_array_equal(net.actions(obs, np.asarray(w)), theirs)
        seen |= set(theirs)
    assert len(seen) > 1  # the comparison covers more than one action
    # the card: its checksum, command and a calibration that the curve reads
    assert card["sha256"] and card["command"] == "test" and len(card["calibration"]) == 3
    assert json.loads((tmp_path / "card.json").read_text()) == card
    values = EnvelopeSweep(path).sweep_values(3, 0.076, 0.26)
    assert len(values) == 3 and all(0.0 <= v <= 1.0 for v in values)


def test_missing_morl_baselines_names_make_clients(monkeypatch):
    import builtins  # to make the import of morl_baselines fail as on a machine without it

    real = builtins.__import__

    def refuse(name, *args, **kwargs):
        if name.startswith("morl_baselines"):
            raise ImportError("No module named 'morl_baselines'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse)
    with pytest.raises(train_morl.UsageError, match="make clients"):
        train_morl.import_envelope()
