"""The pickle-free loader rebuilds every algorithm's policy exactly as stable-baselines3's own load does."""

from __future__ import annotations

import io
import json
import zipfile

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from agents.controllers.algorithms import ALGOS, algo_class, algorithm
from agents.controllers.safe_load import UnsafeModelError, load_model, policy_spec, read_zip
from supernets.foundation.errors import CheckpointError


def _saved(algo: str, tmp_path, **policy_kwargs):
    """A fresh (untrained, seeded) model of ``algo`` on CartPole, saved by SB3 itself."""
    env = gym.make("CartPole-v1")
    policy = "MlpLstmPolicy" if algorithm(algo).recurrent else "MlpPolicy"
    model = algo_class(algo)(policy, env, seed=0, device="cpu", policy_kwargs=policy_kwargs or None)
    path = tmp_path / f"{algo}.zip"
    model.save(str(path))
    return model, path, env


def _same_actions(a, b, env) -> bool:
    obs = np.random.default_rng(0).normal(size=(64, *env.observation_space.shape)).astype(np.float32)
    return bool((a.predict(obs, deterministic=True)[0] == b.predict(obs, deterministic=True)[0]).all())


def _same_weights(a, b) -> bool:
    sa, sb = a.policy.state_dict(), b.policy.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("algo", ALGOS)
def test_every_algorithm_loads_as_sb3_loads_it(algo, tmp_path):
    kwargs = {"net_arch": [16, 8], "activation_fn": nn.ReLU}
    model, path, env = _saved(algo, tmp_path, **kwargs)
    reference = algo_class(algo).load(str(path), device="cpu")
    for card_policy in (None, policy_spec(model, algo)):  # from the zip's JSON-safe entries, or from the card
        mine = load_model(path, algo, env.observation_space, env.action_space, card_policy)
        assert type(mine.policy) is type(reference.policy) and repr(mine.policy) == repr(reference.policy)
        assert _same_weights(mine, reference)
        if not algorithm(algo).recurrent:
            assert _same_actions(mine, reference, env)


def test_hidden_sizes_are_read_from_the_weights_when_the_zip_records_none(tmp_path):
    _, path, env = _saved("ppo", tmp_path, net_arch={"pi": [12], "vf": [20, 4]})
    reference = algo_class("ppo").load(str(path), device="cpu")
    with zipfile.ZipFile(path) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    data = json.loads(files["data"])
    data["policy_kwargs"] = {}
    files["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, raw in files.items():
            zf.writestr(name, raw)
    mine = load_model(path, "ppo", env.observation_space, env.action_space)
    assert _same_weights(mine, reference) and _same_actions(mine, reference, env)


def test_arguments_off_the_allow_list_and_foreign_spaces_are_refused(tmp_path):
    _, path, env = _saved("ppo", tmp_path)
    with pytest.raises(UnsafeModelError, match=r"allow-list.*--trust-pickle"):
        load_model(path, "ppo", env.observation_space, env.action_space, {"class": "MlpPolicy", "kwargs": {"x": 1}})
    with pytest.raises(CheckpointError, match="MlpPolicy"):
        load_model(path, "ppo", env.observation_space, env.action_space, {"class": "evil:Policy", "kwargs": {}})
    with pytest.raises(CheckpointError, match="chooses among 2 actions"):
        load_model(path, "ppo", env.observation_space, gym.spaces.Discrete(7))
    with pytest.raises(CheckpointError, match="shape"):
        load_model(path, "ppo", gym.spaces.Box(0, 1, (9,), np.float32), env.action_space)


def test_weights_that_are_not_plain_tensors_are_refused(tmp_path):
    _, path, _ = _saved("ppo", tmp_path)
    with zipfile.ZipFile(path) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(1), "obj": gym.spaces.Discrete(2)}, buffer)  # a pickled object among the weights
    files["policy.pth"] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as zf:
        for name, raw in files.items():
            zf.writestr(name, raw)
    with pytest.raises(UnsafeModelError, match="--trust-pickle"):
        read_zip(path)
