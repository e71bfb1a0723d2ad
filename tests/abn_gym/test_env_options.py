"""The levers of issue #21 as env options: ``decide_at``, ``group_size`` and a budget drawn from a range.

Each is checked against a value worked out another way: ``decide_at`` against the every-layer env
played with each decision repeated over its layers (and the slow reference observation), the
group-relative reward against numbers written by hand, and the vector env against single envs.
"""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from abn_gym.engine import reference_predictions
from abn_gym.errors import EnvArgumentError
from abn_gym.rewards import RewardFn, group_relative
from abn_gym.sb3 import SB3VecEnv
from abn_gym.vector import ABNVectorEnv
from supernets.data import load_split
from tests.abn_gym.test_observation_oracle import ATOL, MACS, reference_obs

POINTS = (0, 7, 13)
SPANS = [range(0, 7), range(7, 13), range(13, 18)]


def expand(actions, points=POINTS, layers=18):
    """Per-layer actions of a decide_at episode: each decision repeated up to the next point."""
    ends = (*points[1:], layers)
    return [a for a, p, e in zip(actions, points, ends) for _ in range(p, e)]


# decide_at ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("env_id", "kwargs"),
    [
        ("ABN-ResNet-v0", {"decide_at": POINTS}),
        ("ABN-ResNet-v0", {"decide_at": [0, 1, 17], "obs_mode": "dict"}),
        ("ABN-ResNet20Quarter-Budget-v1", {"decide_at": POINTS}),
        ("ABN-ResNet-Budget-v0", {"budget": (0.15, 0.6)}),
        ("ABN-ResNet-Budget-v0", {"budget": (0.15, 0.6), "decide_at": (0, 9)}),
    ],
)
def test_options_pass_both_env_checkers(env_id, kwargs):
    check_env(gym.make(env_id, **kwargs).unwrapped, skip_render_check=True)
    sb3_check_env(gym.make(env_id, **kwargs), warn=True)


def test_decide_at_equals_the_every_layer_env_with_repeated_actions(net):
    actions = [1, 6, 3]
    coarse = gym.make("ABN-ResNet-v0", split="test", decide_at=POINTS)
    fine = gym.make("ABN-ResNet-v0", split="test")
    obs, _ = coarse.reset(seed=0, options={"index": 17})
    fine_obs, _ = fine.reset(seed=0, options={"index": 17})
    assert np.array_equal(obs, fine_obs)
    fine_trace = [fine.step(a) for a in expand(actions)]
    images = load_split("test").images
    bits = [coarse.unwrapped.bit_choices[a] for a in expand(actions)]
    for k, (a, span) in enumerate(zip(actions, SPANS)):
        obs, reward, term, trunc, info = coarse.step(a)
        assert term == (k == 2) and trunc is False
        assert info["layer"] == span.start and info["bits"] == bits[span.start]
        # The step's cost is the BitOps of every layer it ran, counted by hand.
        assert info["bitops_step"] == sum(bits[j] ** 2 * MACS[j] for j in span)
        assert info["bitops_step"] == sum(fine_trace[j][4]["bitops_step"] for j in span)
        # The observation is the every-layer env's at the next decision point (or after the last layer).
        assert np.array_equal(obs, fine_trace[span.stop - 1][0])
        ref = reference_obs(net, images[17], bits, span.stop)
        np.testing.assert_allclose(obs, ref, atol=ATOL, rtol=0)
        assert reward == pytest.approx(sum(fine_trace[j][1] for j in span), abs=1e-12)
    last = fine_trace[-1][4]
    for key in ("correct", "prediction", "bitops", "bitops_fraction"):
        assert info[key] == last[key]
    assert list(info["episode_bits"]) == bits == list(last["episode_bits"])


@pytest.mark.parametrize(
    ("env_id", "extra"),
    [("ABN-ResNet-v0", {}), ("ABN-ResNet-Budget-v0", {}), ("ABN-ResNet-Budget-v0", {"budget": (0.15, 0.6)})],
)
def test_decide_at_vector_env_equals_single_envs(env_id, extra):
    n, seed = 3, 4
    kwargs = {"decide_at": (0, 2, 11), "split": "val", **extra}
    actions = np.random.default_rng(2).integers(0, 7, (2 * 4, n))  # two episodes of 3 steps + autoreset
    envs = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", **kwargs)
    assert envs.horizon == 3 and envs.decision_points == (0, 2, 11)
    obs, _ = envs.reset(seed=seed)
    trace = [envs.step(a) for a in actions]
    for i in range(n):
        env = gym.make(env_id, **kwargs)
        o, _ = env.reset(seed=seed + i)
        assert np.array_equal(o, obs[i])
        for k, a in enumerate(actions[:, i]):
            if k % 4 == 3:  # the vector env's autoreset step
                o, r = env.reset()[0], 0.0
            else:
                o, r, term, _, info = env.step(int(a))
                assert term == (k % 4 == 2)
                if term:
                    assert np.array_equal(trace[k][4]["episode_bits"][i], info["episode_bits"])
            assert np.array_equal(o, trace[k][0][i]) and r == trace[k][1][i]


def test_decide_at_keeps_a_budget_over_whole_spans():
    # The mask of a decision counts every layer it will run: the highest choice is always refused
    # at the first decision of a 0.25 budget (8 bits on layers 0-8 alone is 0.5 of all-8).
    env = gym.make("ABN-ResNet-Budget-v0", decide_at=(0, 9)).unwrapped
    for seed in range(3):
        env.reset(seed=seed)
        mask = env.action_masks()
        assert mask[0] and not mask[-1]
        _, _, _, _, info = env.step(6)
        assert info["clipped"] and info["bits"] == env.bit_choices[int(np.flatnonzero(mask).max())]
        *_, info = env.step(6)
        assert info["bitops_fraction"] <= 0.25 + 1e-9


@pytest.mark.parametrize(
    "value", [(7, 13), (0, 7, 7), (0, 13, 7), (0, 18), (), "0,7", (0, True), (0, 2.0), 3, [[0, 1]]]
)
def test_bad_decide_at_is_refused_with_the_rule(value):
    with pytest.raises(EnvArgumentError, match=r"invalid decide_at=.*starts at 0 and increases strictly.*\[0, 17\]"):
        gym.make("ABN-ResNet-v0", decide_at=value)


def test_every_layer_decide_at_is_the_default_bit_for_bit():
    actions = np.random.default_rng(7).integers(0, 7, (18, 3))
    runs = []
    for decide_at in (None, tuple(range(18))):
        envs = ABNVectorEnv(3, split="val", decide_at=decide_at)
        obs, _ = envs.reset(seed=1)
        runs.append([obs] + [x for a in actions for x in envs.step(a)[:2]])
    assert all(np.array_equal(a, b) for a, b in zip(*runs))


# group_size --------------------------------------------------------------------------------------
def test_group_relative_by_hand():
    correct = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    assert group_relative(correct, 4).tolist() == [0.25, -0.75, 0.25, 0.25, 0, 0, 0, 0, 0.5, -0.5, 0.5, -0.5]
    assert group_relative(correct, 2).tolist() == [0.5, -0.5, 0, 0, 0, 0, 0, 0, 0.5, -0.5, 0.5, -0.5]
    fn = RewardFn("correct", group_size=2)
    got = fn.terminal(np.array([True, False, True, True]), np.zeros(4), np.zeros(4))
    assert got.tolist() == [0.5, -0.5, 0.0, 0.0]
    # "baseline": the per-image reference is shared by a group, so it cancels.
    fn = RewardFn("baseline", group_size=2, reference_bits=2)
    got = fn.terminal(np.array([True, False, True, False]), np.zeros(4), np.zeros(4), None, np.array([3, 3, 1, 1]),
                      np.array([3, 3, 0, 0]))  # fmt: skip
    assert got.tolist() == [0.5, -0.5, 0.5, -0.5]
    with pytest.raises(ValueError, match="group_size must be an int >= 1"):
        RewardFn(group_size=0)


@pytest.fixture(scope="module")
def disagreeing(net):
    """Val images where all-2 is wrong and all-8 right, and images where both are right."""
    split = load_split("val")
    idx = np.arange(300)
    right2 = reference_predictions(net, split, 2, idx) == split.labels.numpy()[idx]
    right8 = reference_predictions(net, split, 8, idx) == split.labels.numpy()[idx]
    return idx[~right2 & right8], idx[right2 & right8]


@pytest.mark.parametrize("reward", ["correct", "default"])
def test_group_reward_against_values_by_hand(disagreeing, reward):
    hard, easy = disagreeing
    assert len(hard) >= 1 and len(easy) >= 1
    envs = ABNVectorEnv(8, split="val", group_size=4, reward=reward)
    envs.reset(seed=0, options={"index": [hard[0], easy[0]]})  # one index per group
    assert envs.engine.indices.tolist() == [hard[0]] * 4 + [easy[0]] * 4
    actions = np.array([6, 0, 6, 6, 0, 6, 0, 6])  # 8 bits or 2 bits on every layer
    rewards = np.zeros(8)
    for _ in range(18):
        _, r, term, _, info = envs.step(actions)
        rewards += r
    assert term.all()
    assert info["correct"].tolist() == [True, False, True, True, True, True, True, True]
    # Group 1: correctness (1, 0, 1, 1), mean 3/4; group 2: all right, mean 1.
    terminal = np.array([0.25, -0.75, 0.25, 0.25, 0.0, 0.0, 0.0, 0.0])
    if reward == "correct":
        assert rewards.tolist() == terminal.tolist()
    else:  # the step costs are unchanged: the single env's return minus the group's mean correctness
        cost = 0.04 * np.where(actions == 6, 64, 4) * sum(MACS) / envs.engine.max_bitops
        np.testing.assert_allclose(rewards, terminal - cost, rtol=0, atol=1e-12)


def test_groups_share_image_and_budget_and_draw_like_their_first_sub_env():
    kw = {"split": "val", "reward": "correct", "budget": (0.2, 0.5)}
    envs = ABNVectorEnv(6, group_size=3, **kw)
    obs, _ = envs.reset(seed=9)
    single = [gym.make("ABN-ResNet-v0", **kw) for _ in range(2)]
    for g, env in enumerate(single):
        o, _ = env.reset(seed=9 + 3 * g)  # group g draws with sub-env 3g's generator
        for i in range(3 * g, 3 * g + 3):
            assert np.array_equal(obs[i], o)
    assert len(set(envs.engine.indices.tolist())) == 2
    # The next episodes (after the autoreset) are drawn the same way.
    for _ in range(19):
        obs, *_ = envs.step(np.zeros(6, dtype=np.int64))
    for g, env in enumerate(single):
        for _ in range(18):
            env.step(0)
        o, _ = env.reset()
        assert all(np.array_equal(obs[i], o) for i in range(3 * g, 3 * g + 3))


def test_sequential_groups_cover_the_split_once():
    envs = ABNVectorEnv(6, split="val", sampling="sequential", group_size=2)
    envs.reset(seed=0)
    seen = []
    for _ in range(2):
        seen.append(envs.engine.indices.tolist())
        for _ in range(19):
            envs.step(np.zeros(6, dtype=np.int64))
    assert seen == [[0, 0, 1, 1, 2, 2], [3, 3, 4, 4, 5, 5]]


def test_group_size_one_is_the_default_bit_for_bit():
    actions = np.random.default_rng(3).integers(0, 7, (19, 4))
    runs = []
    for kwargs in ({}, {"group_size": 1}):
        envs = ABNVectorEnv(4, split="val", **kwargs)
        obs, _ = envs.reset(seed=2)
        runs.append([obs] + [x for a in actions for x in envs.step(a)[:2]])
    assert all(np.array_equal(a, b) for a, b in zip(*runs))


def test_group_size_mistakes_are_refused_with_the_fix():
    with pytest.raises(EnvArgumentError, match=r"num_envs=6 is not a multiple of group_size=4"):
        ABNVectorEnv(6, group_size=4)
    with pytest.raises(EnvArgumentError, match=r"group_size=2: a single env .* use the native vector env"):
        gym.make("ABN-ResNet-v0", group_size=2)
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(EnvArgumentError, match=r"invalid group_size=.*an int >= 1"):
            ABNVectorEnv(4, group_size=bad)
    envs = ABNVectorEnv(4, group_size=2)
    with pytest.raises(ValueError, match="different images to one group"):
        envs.reset(seed=0, options={"index": [1, 2, 3, 3]})
    with pytest.raises(ValueError, match=r"needs 4 image indices \(or 2, one per group\), got 3"):
        envs.reset(seed=0, options={"index": [1, 2, 3]})


def test_group_size_through_make_vec_and_the_sb3_adapter():
    envs = gym.make_vec("ABN-ResNet-v0", num_envs=4, vectorization_mode="vector_entry_point", group_size=2, split="val")
    envs.reset(seed=0)
    rows = envs.engine.indices
    assert rows[0] == rows[1] and rows[2] == rows[3]
    sb3 = SB3VecEnv("ABN-ResNet-v0", num_envs=4, seed=0, group_size=2, decide_at=POINTS, split="val")
    model = PPO("MlpPolicy", sb3, n_steps=6, batch_size=12, n_epochs=1, seed=0, device="cpu")
    model.learn(4 * 6)
    assert model.num_timesteps == 24
    idx = sb3.venv.engine.indices
    assert idx[0] == idx[1] and idx[2] == idx[3]
