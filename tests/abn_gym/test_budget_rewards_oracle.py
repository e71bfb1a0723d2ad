"""Budget masks, clipping, rewards, snapshots and error paths, each against a value worked out another way.

BitOps come from the hand-written ResNet-20 table of ``test_observation_oracle``; correctness and
log-probabilities from the supernet's plain forward pass ``net(x, bits)``; drawn budgets from a
generator seeded like the env's.
"""

import gymnasium as gym
import numpy as np
import pytest
import torch

from abn_gym.rewards import RewardFn
from abn_gym.vector import ABNVectorEnv
from supernets.data import load_split, normalize
from tests.abn_gym.test_observation_oracle import FIXED_MACS, MACS, MAX_BITOPS

TEST_SIZE = 10_000


@pytest.fixture(scope="module")
def split():
    return load_split("test")


def plain_logp(net, split, index: int, bits) -> np.ndarray:
    """Log-probabilities of one test image under the plain forward pass, in float64."""
    logits = net(normalize(split.images[index : index + 1]), list(bits))
    return torch.log_softmax(logits.double(), dim=1)[0].numpy()


def oracle_mask(choices, t: int, spent_ops: int, budget: float) -> np.ndarray:
    """Feasible actions at layer t: this layer at b and every later layer at the cheapest bits fit the budget."""
    rest = sum(choices[0] ** 2 * MACS[j] for j in range(t + 1, 18))
    fixed = 64 * FIXED_MACS
    mask = np.array([fixed + spent_ops + b * b * MACS[t] + rest <= budget * MAX_BITOPS for b in choices])
    mask[0] = True
    return mask


@pytest.mark.parametrize(
    "choices,budget",
    [((2, 3, 4, 5, 6, 7, 8), 0.25), ((2, 4, 8), 0.3), ((3, 5, 7), (0.2, 0.45))],
)
def test_masks_and_clipping_against_layer_bitops(choices, budget):
    env = gym.make("ABN-ResNet-v0", split="test", reward="correct", bit_choices=choices, budget=budget)
    e = env.unwrapped
    actions = np.random.default_rng(1).integers(0, len(choices), (3, 18))
    clipped_any = unclipped_high = False
    for seed in range(3):
        env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        rng.integers(TEST_SIZE)
        b = budget if np.isscalar(budget) else rng.uniform(*budget)
        spent = 0
        for t in range(18):
            mask = oracle_mask(choices, t, spent, b)
            assert np.array_equal(e.action_masks(), mask), (seed, t)
            a = int(actions[seed, t])
            allowed = [k for k in range(a + 1) if mask[k]]
            expected_bits = choices[max(allowed)]  # the highest bit-width that still fits
            *_, info = env.step(a)
            step_bits = info["bits"]
            assert step_bits == expected_bits and info["clipped"] == (expected_bits != choices[a]), (seed, t)
            clipped_any |= info["clipped"]
            unclipped_high |= not info["clipped"] and a > 0
            spent += expected_bits**2 * MACS[t]
        assert info["bitops"] == spent + 64 * FIXED_MACS <= b * MAX_BITOPS
    assert clipped_any and unclipped_high  # both branches were exercised


def test_masks_without_budget_are_all_true():
    env = gym.make("ABN-ResNet-v0")
    env.reset(seed=0)
    for _ in range(18):
        assert env.unwrapped.action_masks().all()
        *_, info = env.step(6)
        assert "clipped" not in info and info["bitops_step"] == 64 * MACS[info["layer"]]


def test_budget_range_is_drawn_per_episode_within_its_bounds():
    envs = ABNVectorEnv(4, split="test", reward="correct", budget=(0.2, 0.45))
    seen = set()
    for seed in (0, 10):
        obs, _ = envs.reset(seed=seed)
        for i in range(4):
            rng = np.random.default_rng(seed + i)  # sub-env i is seeded with seed + i
            rng.integers(TEST_SIZE)
            assert obs[i, 171] == np.float32(rng.uniform(0.2, 0.45))
        seen |= set(obs[:, 171].tolist())
    assert len(seen) == 8 and all(0.2 <= b <= 0.45 for b in seen)


@pytest.mark.parametrize("cost_coef", [0.04, 0.3])
def test_default_reward_per_step_and_terminal(net, split, cost_coef):
    bits = [int(b) for b in np.random.default_rng(3).integers(2, 9, 18)]
    env = gym.make("ABN-ResNet-v0", split="test", cost_coef=cost_coef)
    env.reset(seed=0, options={"index": 8})
    for t, b in enumerate(bits):
        _, r, _, _, info = env.step(b - 2)
        cost = -cost_coef * b * b * MACS[t] / MAX_BITOPS
        if t < 17:
            assert r == pytest.approx(cost, abs=1e-12)
    correct = plain_logp(net, split, 8, bits).argmax() == int(split.labels[8])
    assert info["correct"] == correct and r == pytest.approx(cost + float(correct), abs=1e-12)


def _wrong_and_right(net, split, bits):
    logits = net(normalize(split.images[:200]), bits)
    right = (logits.argmax(1) == split.labels[:200]).numpy()
    return int(np.flatnonzero(~right)[0]), int(np.flatnonzero(right)[0])


def test_logprob_reward_is_the_true_class_log_probability(net, split):
    bits = [2] * 18
    wrong, right = _wrong_and_right(net, split, bits)
    env = gym.make("ABN-ResNet-v0", split="test", reward="logprob", cost_coef=0.1)
    for index in (wrong, right):
        env.reset(options={"index": index})
        total = sum(env.step(0)[1] for _ in range(18))
        logp = plain_logp(net, split, index, bits)[int(split.labels[index])]
        cost = 0.1 * sum(4 * m for m in MACS) / MAX_BITOPS
        assert -10 < logp < 0 and total == pytest.approx(logp - cost, abs=1e-5)


def test_logprob_reward_is_clipped():
    fn = RewardFn("logprob", cost_coef=0.0, logprob_clip=10.0)
    got = fn.terminal(np.array([False, False, True]), np.array([-25.0, -9.5, -0.1]), np.zeros(3))
    assert got.tolist() == [-10.0, -9.5, -0.1]
    assert RewardFn("logprob", logprob_clip=3.0).terminal(np.array([0]), np.array([-7.0]), np.zeros(1)) == [-3.0]


def test_blockdrop_reward_for_right_and_wrong(net, split):
    bits = [3] * 9 + [5] * 9
    wrong, right = _wrong_and_right(net, split, bits)
    env = gym.make("ABN-ResNet-v0", split="test", reward="blockdrop", gamma=0.7)
    f = (sum(b * b * m for b, m in zip(bits, MACS)) + 64 * FIXED_MACS) / MAX_BITOPS
    for index, expected in ((wrong, -0.7), (right, 1 - f**2)):
        env.reset(options={"index": index})
        rewards = [env.step(b - 2)[1] for b in bits]
        assert rewards[:-1] == [0.0] * 17 and rewards[-1] == pytest.approx(expected, abs=1e-12)


def test_correct_reward_without_budget(net, split):
    bits = [2] * 18
    wrong, right = _wrong_and_right(net, split, bits)
    env = gym.make("ABN-ResNet-v0", split="test", reward="correct")
    for index, expected in ((wrong, 0.0), (right, 1.0)):
        env.reset(options={"index": index})
        rewards = [env.step(0)[1] for _ in range(18)]
        assert rewards == [0.0] * 17 + [expected]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), -0.5])
def test_non_finite_or_negative_cost_coef_is_refused(bad):
    with pytest.raises(ValueError, match="cost_coef"):
        gym.make("ABN-ResNet-v0", cost_coef=bad)
    with pytest.raises(ValueError, match="cost_coef"):
        RewardFn("default", cost_coef=bad)


def _trace(env, episodes: int, actions) -> list:
    out = []
    for k in range(episodes):
        obs, _ = env.reset()
        out.append(obs)
        for a in actions[k]:
            obs, r, *_ = env.step(a)
            out += [obs, r]
    return out


@pytest.mark.parametrize("sampling", ["random", "sequential"])
def test_single_env_snapshot_restores_generator_and_sampler(sampling):
    kw = dict(split="test", sampling=sampling, reward="correct", budget=(0.2, 0.5))
    actions = np.random.default_rng(0).integers(0, 7, (4, 18))
    plain = gym.make("ABN-ResNet-v0", **kw).unwrapped
    plain.reset(seed=3)
    first = [plain.step(a)[0] for a in actions[0, :5]]
    expected = [plain.step(a)[0] for a in actions[0, 5:]] + _trace(plain, 3, actions[1:])
    env = gym.make("ABN-ResNet-v0", **kw).unwrapped
    env.reset(seed=3)
    assert all(np.array_equal(a, env.step(x)[0]) for a, x in zip(first, actions[0, :5]))
    snapshot = env.get_state()
    _trace(env, 3, actions[1:])  # moves the generator and the sampler on
    env.set_state(snapshot)
    got = [env.step(a)[0] for a in actions[0, 5:]] + _trace(env, 3, actions[1:])
    assert len(got) == len(expected)
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))


@pytest.mark.parametrize("sampling", ["random", "sequential"])
def test_vector_snapshot_restores_generators_and_samplers(sampling):
    kw = dict(split="test", sampling=sampling, reward="correct", budget=(0.2, 0.5))
    actions = np.random.default_rng(1).integers(0, 7, (3 * 19, 3))
    plain = ABNVectorEnv(3, **kw)
    plain.reset(seed=5)
    expected = [plain.step(a)[:2] for a in actions]
    envs = ABNVectorEnv(3, **kw)
    envs.reset(seed=5)
    for a in actions[:4]:
        envs.step(a)
    snapshot = envs.get_state()
    for a in actions[4:]:
        envs.step(a)
    envs.set_state(snapshot)
    got = [envs.step(a)[:2] for a in actions[4:]]
    for (o1, r1), (o2, r2) in zip(got, expected[4:]):
        assert np.array_equal(o1, o2) and np.array_equal(r1, r2)


def test_lookahead_error_paths():
    env = gym.make("ABN-ResNet-v0").unwrapped
    with pytest.raises(RuntimeError, match="before reset"):
        env.lookahead([8] * 18)
    envs = ABNVectorEnv(2)
    with pytest.raises(RuntimeError, match="reset"):
        envs.lookahead(np.full((2, 18), 8))
    for e in (env, envs):
        e.reset(seed=0)
        with pytest.raises(ValueError, match=r"rest_bits must have shape \(\d, 18\) at layer 0"):
            e.lookahead(np.full((2, 17), 8) if e is envs else [8] * 17)
        with pytest.raises(ValueError, match=r"bit-widths \[9\] were not trained"):
            e.lookahead(np.full((2, 18), 9) if e is envs else [9] * 18)
        with pytest.raises(ValueError, match=r"bit-widths \[1\] were not trained"):
            e.lookahead(np.full((2, 18), 1) if e is envs else [1] * 18)
        for _ in range(18):
            e.step(0 if e is env else np.zeros(2, dtype=np.int64))
        with pytest.raises(RuntimeError, match="episode has ended"):
            e.lookahead(np.full((2, 0), 8) if e is envs else [])


def test_snapshot_before_reset_restores_an_unstarted_env():
    envs = ABNVectorEnv(3)
    snapshot = envs.get_state()
    envs.reset(seed=0)
    envs.step(np.zeros(3, dtype=np.int64))
    envs.set_state(snapshot)
    assert envs.engine.state is None and envs.engine.t == 0
    with pytest.raises(RuntimeError, match="before reset"):
        envs.step(np.zeros(3, dtype=np.int64))


def test_vector_reset_and_snapshot_error_paths():
    envs = ABNVectorEnv(3)
    with pytest.raises(ValueError, match="got 2 seeds for 3 sub-envs"):
        envs.reset(seed=[1, 2])
    with pytest.raises(ValueError, match=r"needs 3 image indices, got 4"):
        envs.reset(seed=0, options={"index": [0, 1, 2, 3]})
    envs.reset(seed=0)
    snapshot = envs.get_state()
    other = ABNVectorEnv(2)
    other.reset(seed=0)
    with pytest.raises(ValueError, match="snapshot is for 3 episodes, this engine runs 2"):
        other.set_state(snapshot)


@pytest.mark.parametrize("bad", [0, -1, True, 2.5, "3", None])
def test_num_envs_is_validated(bad):
    with pytest.raises(ValueError, match="num_envs must be a positive int"):
        ABNVectorEnv(bad)


def test_num_envs_through_make_vec():
    with pytest.raises(ValueError, match="num_envs must be a positive int"):
        gym.make_vec("ABN-ResNet-v0", num_envs=0, vectorization_mode="vector_entry_point")
    assert ABNVectorEnv(np.int64(2)).num_envs == 2


def test_cheapest_rest_cost_by_hand():
    env = ABNVectorEnv(1, split="test", bit_choices=(3, 5))
    expected = [3 * 3 * sum(MACS[t:]) / MAX_BITOPS for t in range(18)] + [0.0]
    np.testing.assert_allclose(env.engine.min_rest, expected, rtol=1e-12)


def test_a_budget_equal_to_a_configuration_admits_it_to_the_last_layer():
    # The budget is exactly uniform-4's BitOps: every 4-bit step must stay allowed, the last one included.
    u4 = (16 * sum(MACS) + 64 * FIXED_MACS) / MAX_BITOPS
    env = ABNVectorEnv(1, split="test", reward="correct", budget=u4)
    env.reset(seed=0)
    for t in range(18):
        assert env.action_masks()[0, 2], t  # bit_choices[2] = 4 bits
        _, _, _, _, info = env.step(np.array([2]))
        assert not info["clipped"][0], t
    assert info["episode_bits"][0].tolist() == [4] * 18
