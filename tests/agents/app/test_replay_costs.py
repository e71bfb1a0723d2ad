"""The bench's replay (agents.app.validate.replay) prices a reward in the env's cost model, as the env does."""

import gymnasium as gym
import numpy as np
import pytest

import abn_gym
from agents.app.validate import replay
from supernets.costs import layer_names, write_cost_file


@pytest.mark.parametrize("model", ["bitops", "bitfusion", "table"])
def test_replay_gives_the_envs_rewards_under_every_cost_model(tmp_path, model):
    if model == "table":
        names = layer_names(abn_gym.config.architecture(abn_gym.QUARTER))["switchable"]
        costs = {n: {b: 0.1 * (t % 5 + 1) * (9 - b if t % 3 else b) for b in range(2, 9)} for t, n in enumerate(names)}
        costs["stem"], costs["fc"] = {8: 0.3}, {8: 0.05}
        write_cost_file(tmp_path / "ms.csv", costs, "ms")
        model = str(tmp_path / "ms.csv")
    kwargs = {**abn_gym.ENV_IDS["ABN-ResNet20Quarter-v1"], "cost_model": model, "bit_choices": (2, 3, 4, 6, 8)}
    env = gym.make("ABN-ResNet20Quarter-v1", split="val", **kwargs)
    rng = np.random.default_rng(0)
    indices, bits, returns, ops, right, priced = [], [], [], [], [], []
    for seed in range(6):
        env.reset(seed=seed)
        total, term = 0.0, False
        while not term:
            _, r, term, _, info = env.step(int(rng.integers(5)))
            total += r
        indices.append(info["index"])
        bits.append(info["episode_bits"])
        returns.append(total)
        ops.append(info["bitops"])
        right.append(bool(info["correct"]))
        priced.append(info["cost"])
    correct, replay_ops, rewards, cost = replay(kwargs, "val", np.array(indices), np.array(bits))
    assert rewards.tolist() == returns and correct.tolist() == right and cost.tolist() == priced
    assert replay_ops.tolist() == ops  # BitOps stay BitOps whatever the model
