"""The per-image reward options: "baseline" (against the cheapest uniform configuration) and "agreement"."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from abn_gym.engine import reference_predictions
from abn_gym.vector import ABNVectorEnv
from supernets.data import normalize

OPTIONS = [
    {"reward": "baseline"},
    {"reward": "agreement"},
    {"reward": "baseline", "bit_choices": (3, 4, 5)},
]


@pytest.mark.parametrize("kwargs", OPTIONS)
def test_reward_options_pass_both_env_checkers(kwargs):
    check_env(gym.make("ABN-ResNet-v0", split="val", **kwargs).unwrapped)
    sb3_check_env(gym.make("ABN-ResNet-v0", split="val", **kwargs))


@pytest.mark.parametrize("kwargs", OPTIONS)
def test_reward_options_vector_equals_single_bit_for_bit(kwargs):
    n, seed = 4, 5
    k = len(kwargs.get("bit_choices", range(7)))
    actions = np.random.default_rng(1).integers(0, k, (18, n))
    vec = ABNVectorEnv(n, split="val", **kwargs)
    vec.reset(seed=seed)
    v_rewards = np.stack([vec.step(a)[1] for a in actions])
    for i in range(n):
        env = gym.make("ABN-ResNet-v0", split="val", **kwargs)
        env.reset(seed=seed + i)
        rewards = [env.step(int(a))[1] for a in actions[:, i]]
        assert rewards == v_rewards[:, i].tolist()


def _plain_prediction(net, split, index: int, bits: int) -> int:
    x = normalize(split.images[index : index + 1])
    return int(net(x, [bits] * net.num_switchable).argmax(1)[0])


@pytest.mark.parametrize(
    ("reward", "choices", "reference"), [("baseline", None, 2), ("baseline", (3, 4, 5), 3), ("agreement", (2, 3), 8)]
)
def test_terminal_reward_against_the_plain_forward_pass(net, reward, choices, reference):
    kwargs = {"reward": reward, "split": "val", "cost_coef": 0.0}
    if choices:
        kwargs["bit_choices"] = choices
    env = ABNVectorEnv(1, **kwargs)
    split = env.engine.split
    # Images where the reference configuration is wrong, and some where it is right.
    seen = {True: 0, False: 0}
    for index in range(300):
        ref_pred = _plain_prediction(net, split, index, reference)
        ref_right = ref_pred == int(split.labels[index])
        if seen[ref_right] >= 2:
            continue
        seen[ref_right] += 1
        env.reset(seed=0, options={"index": [index]})
        action = len(env.bit_choices) - 1  # the widest allowed everywhere
        total = sum(env.step(np.array([action]))[1][0] for _ in range(env.num_layers))
        pred = _plain_prediction(net, split, index, env.bit_choices[-1])
        if reward == "baseline":
            expected = float(pred == int(split.labels[index])) - float(ref_right)
        else:
            expected = float(pred == ref_pred)
        assert total == expected, (index, total, expected)
        if min(seen.values()) >= 2:
            break
    assert min(seen.values()) >= 2  # both kinds of image were checked


def test_reference_predictions_are_remembered_and_exact(net, test_split):
    idx = np.array([5, 3, 5, 9])
    first = reference_predictions(net, test_split, 2, idx)
    again = reference_predictions(net, test_split, 2, idx[::-1])
    assert first.tolist() == again[::-1].tolist() and first[0] == first[2]
    assert first.tolist() == [_plain_prediction(net, test_split, int(i), 2) for i in idx]


def test_reward_fn_refuses_unknown_kinds_and_missing_references_by_name():
    from abn_gym.rewards import REWARDS, RewardFn

    with pytest.raises(ValueError, match=r"unknown reward 'nope'; choose one of \['default', 'logprob'"):
        RewardFn("nope")
    for kind in ("baseline", "agreement"):
        with pytest.raises(
            ValueError, match=f"reward '{kind}' needs reference_bits; build it with RewardFn.for_actions"
        ):
            RewardFn(kind)
        assert RewardFn(kind, reference_bits=2).reference_bits == 2
    for kind in set(REWARDS) - {"baseline", "agreement"}:
        RewardFn(kind)  # no reference needed
