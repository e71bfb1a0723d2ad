"""The single env: Gymnasium and SB3 checks over every id, episodes, errors, look-ahead."""

import pickle
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import abn_gym
from abn_gym.env import ABNEnv

IDS = sorted(abn_gym.ENV_IDS)


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("obs_mode", ["vector", "dict"])
def test_gymnasium_and_sb3_checkers(env_id, obs_mode):
    from gymnasium.utils.env_checker import check_env

    check_env(gym.make(env_id, obs_mode=obs_mode).unwrapped, skip_render_check=True)
    sb3_check_env(gym.make(env_id, obs_mode=obs_mode), warn=True)


def test_make_without_import_registers_ids():
    code = "import gymnasium as gym; e = gym.make('abn_gym:ABN-ResNet-v0'); print(e.action_space.n)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "7"


def run_episode(env, actions, seed=0, index=None):
    obs, _ = env.reset(seed=seed, options=None if index is None else {"index": index})
    trace = [obs]
    rewards, infos = [], []
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        trace.append(obs)
        rewards.append(r)
        infos.append(info)
        assert isinstance(r, float) and isinstance(term, bool) and trunc is False
    return trace, rewards, infos, term


@pytest.mark.parametrize("env_id", IDS)
def test_episode_length_determinism_and_terminal_info(env_id):
    env = gym.make(env_id)
    actions = list(np.random.default_rng(0).integers(0, 7, 18))
    t1, r1, i1, term = run_episode(env, actions, seed=5)
    assert term and len(r1) == 18
    assert [info["layer"] for info in i1] == list(range(18))
    last = i1[-1]
    chosen = [info["bits"] for info in i1]
    assert last["episode_bits"].dtype == np.int64 and last["episode_bits"].tolist() == chosen
    if env_id == "ABN-ResNet-v0":
        assert chosen == [env.unwrapped.bit_choices[a] for a in actions]
    assert set(last) >= {"correct", "prediction", "label", "episode_bits", "bitops", "bitops_fraction", "bitops_step"}
    net = env.unwrapped.engine.net
    assert last["bitops"] == net.bitops(last["episode_bits"].tolist())
    assert last["correct"] == (last["prediction"] == last["label"])
    t2, r2, i2, _ = run_episode(gym.make(env_id), actions, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(t1, t2)) and r1 == r2 and data_equivalence(i1, i2)
    for obs in t1:
        assert obs.dtype == np.float32 and env.observation_space.contains(obs)


def test_default_reward_is_cost_plus_correctness():
    env = gym.make("ABN-ResNet-v0")
    _, rewards, infos, _ = run_episode(env, [2] * 18, seed=1)
    e = env.unwrapped
    frac = sum(e.engine.net.layer_bitops(i, 4) for i in range(18)) / e.engine.max_bitops
    c = abn_gym.DEFAULT_COST_COEF
    assert e.config.cost_coef == c
    assert sum(rewards) == pytest.approx(float(infos[-1]["correct"]) - c * frac, abs=1e-9)
    assert rewards[0] == pytest.approx(-c * e.engine.net.layer_bitops(0, 4) / e.engine.max_bitops)


@pytest.mark.parametrize("reward", ["logprob", "blockdrop"])
def test_alternative_rewards(reward):
    env = gym.make("ABN-ResNet-v0", reward=reward, gamma=0.7)
    _, rewards, infos, _ = run_episode(env, [6] * 18, seed=2)
    last = infos[-1]
    if reward == "blockdrop":
        assert rewards[:-1] == [0.0] * 17
        expected = 1 - last["bitops_fraction"] ** 2 if last["correct"] else -0.7
        assert rewards[-1] == pytest.approx(expected)
    else:
        assert -10.0 - 1 <= rewards[-1] <= 0.0


def test_reset_index_and_sequential_sampling():
    env = gym.make("ABN-ResNet-v0", split="test", sampling="sequential")
    seen = []
    for k in range(3):
        env.reset(seed=0) if k == 0 else env.reset()
        seen.append(int(env.unwrapped.engine.indices[0]))
    assert seen == [0, 1, 2]
    env.reset(options={"index": 42})
    assert int(env.unwrapped.engine.indices[0]) == 42
    with pytest.raises(ValueError, match="not an image"):
        env.reset(options={"index": 10_000})
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"label": 3})


def test_observation_depends_only_on_the_image():
    a = gym.make("ABN-ResNet-v0", split="test")
    b = gym.make("ABN-ResNet-v0", split="test")
    oa, _ = a.reset(seed=1, options={"index": 7})
    ob, _ = b.reset(seed=99, options={"index": 7})
    assert np.array_equal(oa, ob)


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("bad", [7, -1, 2.0, "3", None, True, np.array([1, 2]), np.float32(1)])
def test_bad_actions_name_the_action_and_range(bad, env_id):
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"invalid action .*\[0, 6\]"):
        env.step(bad)


def test_step_before_reset_and_after_end():
    env = ABNEnv()
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(0)
    env.reset(seed=0)
    for _ in range(18):
        env.step(0)
    with pytest.raises(RuntimeError, match="after the episode terminated"):
        env.step(0)


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"colour": "red"}, "unknown environment argument"),
        ({"split": "holdout"}, "invalid split"),
        ({"sampling": "shuffled"}, "invalid sampling"),
        ({"bit_choices": (1, 2)}, "subset of the trained"),
        ({"bit_choices": ()}, "non-empty"),
        ({"cost_coef": -1}, "cost_coef"),
        ({"budget": 0.01}, "invalid budget"),
        ({"obs_mode": "image"}, "invalid obs_mode"),
        ({"device": "tpu"}, "invalid device"),
        ({"supernet": "vgg"}, "unknown supernet"),
        ({"reward": "accuracy"}, "invalid reward"),
    ],
)
@pytest.mark.parametrize("env_id", IDS)
def test_bad_kwargs_are_refused_early(kwargs, needle, env_id):
    with pytest.raises((ValueError, TypeError), match=needle):
        gym.make(env_id, **kwargs)


def test_bit_choices_subset_maps_actions():
    env = gym.make("ABN-ResNet-v0", bit_choices=(4, 2, 3))
    assert env.action_space.n == 3 and env.unwrapped.bit_choices == (2, 3, 4)
    env.reset(seed=0)
    info = env.step(2)[4]
    assert info["bits"] == 4


def test_budget_env_keeps_every_episode_within_budget():
    env = gym.make("ABN-ResNet-Budget-v0")
    e = env.unwrapped
    for seed in range(3):
        env.reset(seed=seed)
        clipped = False
        for _ in range(18):
            mask = e.action_masks()
            assert mask[0] and mask.dtype == bool
            _, r, _, _, info = env.step(6)
            clipped |= info["clipped"]
        assert info["bitops_fraction"] <= abn_gym.DEFAULT_BUDGET + 1e-9
        assert clipped and r in (0.0, 1.0)


def test_lookahead_is_side_effect_free_and_consistent():
    env = gym.make("ABN-ResNet-v0", split="test").unwrapped
    env.reset(seed=3)
    for a in (1, 5, 2):
        env.step(a)
    snap_obs = env.engine._obs.copy()
    rest = [4] * (18 - env.layer)
    logits = env.lookahead(rest)
    many = env.lookahead(np.array([rest, [8] * len(rest)]))
    assert np.array_equal(many[0], logits) and many.shape == (2, 10)
    assert np.array_equal(env.engine._obs, snap_obs) and env.layer == 3
    state = env.get_state()
    for _ in rest:
        *_, info = env.step(env.bit_choices.index(4))
    assert int(np.argmax(logits)) == info["prediction"]
    env.set_state(state)
    assert env.layer == 3
    fork = env.fork()
    *_, info_fork = [fork.step(2) for _ in rest][-1]
    assert info_fork["prediction"] == info["prediction"] and env.layer == 3


def test_pickle_round_trip_keeps_arguments_not_weights():
    env = ABNEnv(split="val", cost_coef=0.3)
    env.reset(seed=0)
    blob = pickle.dumps(env)
    assert len(blob) < 150_000  # the episode's activations (about 100 kB), not the supernet's weights
    clone = pickle.loads(blob)
    assert clone.config == env.config
    o1, _ = clone.reset(seed=4)
    o2, _ = env.reset(seed=4)
    assert np.array_equal(o1, o2)


@pytest.mark.slow
def test_default_cost_coef_makes_the_trade_off_real():
    """Under the default reward the best uniform configuration is neither all-2 nor all-8 on val."""
    from abn_gym.tables import uniform_returns

    table = uniform_returns("val")
    best = max(table, key=lambda b: table[b]["return"])
    assert best not in (2, 8), table
