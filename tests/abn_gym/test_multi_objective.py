"""The multi-objective ids without MO-Gymnasium: vector rewards, their space, and the scalar reward they weigh back to.

tests/clients/test_mo_gymnasium.py runs the same ids through MO-Gymnasium's own make and wrappers.
"""

import pickle
import warnings
from fractions import Fraction

import gymnasium as gym
import numpy as np
import pytest

import abn_gym
from abn_gym.errors import EnvArgumentError
from abn_gym.multi_objective import MOABNEnv, MOABNVectorEnv
from abn_gym.registration import env_kwargs
from abn_gym.vector import ABNVectorEnv
from supernets.foundation.errors import UnknownNameError

MO_IDS = sorted(abn_gym.MO_ENV_IDS)
STEEP = "mo-ABN-ResNet20Quarter-v1"


def play(env, actions, seed):
    """Rewards of one seeded episode (the actions repeat if it is longer), and its last info."""
    env.reset(seed=seed)
    rewards, term, k = [], False, 0
    while not term:
        _, r, term, _, info = env.step(int(actions[k % len(actions)]))
        rewards.append(r)
        k += 1
    return rewards, info


def test_every_scalar_id_has_a_twin_with_its_arguments():
    assert {f"mo-{i}": i for i in abn_gym.ENV_IDS} == abn_gym.MO_ENV_IDS
    for mo_id, scalar in abn_gym.MO_ENV_IDS.items():
        assert gym.spec(mo_id).kwargs == gym.spec(scalar).kwargs
        assert isinstance(gym.make(f"abn_gym:{mo_id}").unwrapped, MOABNEnv)
    # The commands and agents score scalar rewards: a mo- id is refused with its scalar twin named.
    with pytest.raises(UnknownNameError, match=r"multi-objective.*'ABN-ResNet20Quarter-v1'"):
        env_kwargs(STEEP)


@pytest.mark.parametrize("mo_id", MO_IDS)
def test_vector_reward_parts_space_and_weights(mo_id):
    env = gym.make(mo_id, split="val")
    u = env.unwrapped
    scalar_kwargs = abn_gym.ENV_IDS[abn_gym.MO_ENV_IDS[mo_id]]
    has_cost = scalar_kwargs.get("reward", "default") == "default"
    cost_coef = scalar_kwargs.get("cost_coef", abn_gym.DEFAULT_COST_COEF)
    assert u.reward_dim == 2 and u.reward_space.shape == (2,) and u.reward_space.dtype == np.float64
    assert u.scalar_weights.tolist() == [1.0, cost_coef if has_cost else 0.0]
    assert u.reward_space.low[0] == 0.0 and u.reward_space.high[0] == 1.0
    for seed in range(3):
        rewards, info = play(env, np.random.default_rng(seed).integers(0, 7, 18), seed)
        vectors = np.array(rewards)
        assert vectors.shape == (18, 2) and vectors.dtype == np.float64
        assert all(u.reward_space.contains(r) for r in rewards)
        assert vectors[:-1, 0].tolist() == [0.0] * 17 and vectors[-1, 0] == float(info["correct"])
        # The cost objective sums to the episode's switchable cost (BitOps, or the id's cost_model): the
        # fixed 8-bit layers are charged to no step, as the scalar reward charges them to none.
        switchable = (info["cost"] - info["cost_fixed"]) / info["cost_all8"]
        assert np.isclose(-vectors[:, 1].sum(), switchable, rtol=1e-13, atol=0)
    # The cost bound is the costliest step, reached exactly (8 bits at the costliest layer); 0 is the
    # vector env's autoreset call's.
    net = u.engine.net
    costs = [net.layer_bitops(t, 8) / net.max_bitops for t in range(net.num_switchable)]
    assert u.reward_space.low[1] == -max(costs) and u.reward_space.high[1] == 0.0
    worst, _ = play(env, [6], 0)
    assert min(r[1] for r in worst) == -max(costs) or scalar_kwargs.get("budget")


@pytest.mark.parametrize("mo_id", MO_IDS)
def test_weighted_vector_is_the_scalar_reward_bit_for_bit(mo_id):
    """``w @ r`` (MO-Gymnasium's LinearReward does np.dot) equals the scalar id's reward at every step."""
    scalar_id = abn_gym.MO_ENV_IDS[mo_id]
    mo, scalar = gym.make(mo_id, split="val"), gym.make(scalar_id, split="val")
    w = mo.unwrapped.scalar_weights
    for seed in range(4):
        actions = np.random.default_rng(seed).integers(0, 7, 18)
        vectors, _ = play(mo, actions, seed)
        rewards, _ = play(scalar, actions, seed)
        weighted = [float(np.dot(r, w)) for r in vectors]
        assert weighted == rewards
        assert sum(weighted) == sum(rewards)  # the episode's return, summed in the same order


@pytest.mark.parametrize("mo_id", MO_IDS)
def test_every_possible_step_weighs_back_exactly_with_and_without_fused_multiply_add(mo_id):
    """Over every step cost of the table and every terminal value, not only the sampled ones.

    A BLAS dot product may fuse the last multiply with the add (one rounding instead of two):
    the scalar reward must come out either way, so LinearReward is exact on any machine.
    """
    u = gym.make(mo_id).unwrapped
    engine, w = u.engine, u.scalar_weights
    for t in range(engine.horizon):
        for a in range(len(u.bit_choices)):
            cost = engine.span_units[t][a].astype(np.float64) / engine.cost_all8
            for term in (0.0, 1.0) if t == engine.horizon - 1 else (0.0,):
                scalar = engine._step_reward[t][a] + term
                vector = np.array([term, -cost])
                assert np.dot(vector, w) == scalar
                fused = float(Fraction(term) * Fraction(w[0]) + Fraction(-cost) * Fraction(w[1]))
                assert fused == scalar, (t, a, term)


@pytest.mark.parametrize("autoreset_mode", ["NEXT_STEP", "SAME_STEP"])
def test_native_vector_env_rewards_are_the_single_envs(autoreset_mode):
    n, seed = 4, 7
    envs = gym.make_vec(STEEP, num_envs=n, vectorization_mode="vector_entry_point", split="val")
    assert isinstance(envs.unwrapped, MOABNVectorEnv)
    envs = MOABNVectorEnv(n, split="val", supernet=abn_gym.QUARTER, autoreset_mode=autoreset_mode)
    assert envs.reward_dim == 2 and envs.reward_space == gym.make(STEEP).unwrapped.reward_space
    actions = np.random.default_rng(3).integers(0, 7, (19, n))
    envs.reset(seed=seed)
    batch = [envs.step(a)[1] for a in actions]
    assert all(r.shape == (n, 2) and r.dtype == np.float64 for r in batch)
    if autoreset_mode == "NEXT_STEP":
        assert not batch[-1].any()  # the autoreset call's rewards: zeros of the same shape
    for i in range(n):
        single = MOABNEnv(split="val", supernet=abn_gym.QUARTER)
        rewards, _ = play(single, actions[:18, i], seed + i)
        assert np.array_equal(np.array(rewards), np.stack(batch[:18])[:, i])


@pytest.mark.parametrize(
    "kwargs", [{"reward": "logprob"}, {"reward": "baseline"}, {"reward": "agreement"}, {"decide_at": (0, 7, 13)}]
)
def test_reward_options_weigh_back_to_the_scalar_vector_env(kwargs):
    n = 4
    actions = np.random.default_rng(2).integers(0, 7, (19, n))
    common = {"split": "val", "supernet": abn_gym.QUARTER, "cost_coef": 0.1, **kwargs}
    mo, scalar = MOABNVectorEnv(n, **common), ABNVectorEnv(n, **common)
    mo.reset(seed=1)
    scalar.reset(seed=1)
    for a in actions:
        vectors, rewards = mo.step(a)[1], scalar.step(a)[1]
        assert all(mo.reward_space.contains(r) for r in vectors)
        assert [float(np.dot(r, mo.scalar_weights)) for r in vectors] == rewards.tolist()
    if kwargs.get("reward") in ("baseline", "logprob"):
        assert mo.reward_space.low[0] == {"baseline": -1.0, "logprob": -10.0}[kwargs["reward"]]


def test_group_relative_first_objective():
    n, k = 4, 2
    common = {"split": "val", "supernet": abn_gym.QUARTER, "group_size": k}
    mo, scalar = MOABNVectorEnv(n, **common), ABNVectorEnv(n, **common)
    mo.reset(seed=2)
    scalar.reset(seed=2)
    for a in np.random.default_rng(4).integers(0, 7, (18, n)):
        _, vectors, _, _, info = mo.step(a)
        assert [float(np.dot(r, mo.scalar_weights)) for r in vectors] == scalar.step(a)[1].tolist()
    correct = info["correct"].astype(float)
    assert vectors[:, 0].tolist() == (correct - np.repeat(correct.reshape(-1, k).mean(1), k)).tolist()
    assert mo.reward_space.low[0] == -1.0 and mo.reward_space.high[0] == 1.0


def test_blockdrop_is_refused_with_the_fix():
    with pytest.raises(EnvArgumentError, match=r"blockdrop.*use reward='default'"):
        gym.make(STEEP, reward="blockdrop")
    with pytest.raises(EnvArgumentError, match="blockdrop"):
        MOABNVectorEnv(2, reward="blockdrop")


def test_budget_twin_keeps_the_mask_and_charges_nothing_in_the_scalar():
    env = gym.make("mo-ABN-ResNet20Quarter-Budget-v1", split="val")
    u = env.unwrapped
    u.reset(seed=0)
    vectors, info = play(env, [6], 0)  # always asks for 8 bits: the budget lowers it
    assert np.dot(np.array(vectors), u.scalar_weights).tolist() == [0.0] * 17 + [float(info["correct"])]
    assert info["bitops_fraction"] <= 0.25 + 1e-12 and u.action_masks().all()


def test_copies_keep_the_class_and_the_episode():
    env = MOABNEnv(split="val", supernet=abn_gym.QUARTER)
    env.reset(seed=3)
    env.step(2)
    for copy in (env.fork(), pickle.loads(pickle.dumps(env))):
        assert isinstance(copy, MOABNEnv)
        assert np.array_equal(copy.step(4)[1], env.fork().step(4)[1])
    vec = MOABNVectorEnv(2, split="val", supernet=abn_gym.QUARTER)
    vec.reset(seed=0)
    assert isinstance(pickle.loads(pickle.dumps(vec)), MOABNVectorEnv)


@pytest.mark.parametrize("mo_id", MO_IDS)
def test_gymnasium_check_env_passes_with_only_the_reward_type_warning(mo_id):
    """Gymnasium's checker expects a scalar reward and warns (nothing else) about the vector one.

    MO-Gymnasium's own make turns the checker off for that reason. SB3's checker asserts a float
    reward, so it is not run here: SB3 trains on the scalar ids, or on LinearReward of these.
    """
    from gymnasium.utils.env_checker import check_env

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(gym.make(mo_id).unwrapped, skip_render_check=True)
    messages = {str(w.message) for w in caught}
    assert messages and all("The reward returned by `step()` must be a float" in m for m in messages), messages
