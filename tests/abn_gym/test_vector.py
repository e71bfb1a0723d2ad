"""The native vector env: equivalence with single envs, autoreset, errors, adapters."""

import gymnasium as gym
import numpy as np
import pytest

import abn_gym
from abn_gym.vector import ABNVectorEnv


@pytest.mark.parametrize("env_id", sorted(abn_gym.ENV_IDS))
def test_vector_matches_single_envs_bit_for_bit(env_id):
    n, seed = 5, 11
    envs = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point")
    assert isinstance(envs, ABNVectorEnv)
    assert envs.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    actions = np.random.default_rng(0).integers(0, 7, (2 * 19, n))
    obs, _ = envs.reset(seed=seed)
    v_obs, v_rew, v_info = [obs], [], []
    for a in actions:
        obs, r, _, _, info = envs.step(a)
        v_obs.append(obs)
        v_rew.append(r)
        v_info.append(info)
    for i in range(n):
        env = gym.make(env_id)
        o, _ = env.reset(seed=seed + i)
        assert np.array_equal(o, v_obs[0][i])
        for k, a in enumerate(actions[:, i]):
            if k % 19 == 18:  # the vector env's autoreset step
                o, r = env.reset()[0], 0.0
                assert set(v_info[k]) <= {"action_mask", "_action_mask"}  # the reset info
            else:
                o, r, term, _, info = env.step(a)
                if term:
                    assert v_info[k]["episode_bits"][i].tolist() == info["episode_bits"].tolist()
                    assert v_info[k]["correct"][i] == info["correct"]
            assert np.array_equal(o, v_obs[k + 1][i]), (i, k)
            assert r == v_rew[k][i]


def test_sequential_vector_covers_split_once():
    n = 7
    envs = ABNVectorEnv(n, split="val", sampling="sequential")
    envs.reset(seed=0)
    seen = []
    for _ in range(3):
        seen.extend(envs.engine.indices.tolist())
        for _ in range(18):
            envs.step(np.zeros(n, dtype=np.int64))
        envs.step(np.zeros(n, dtype=np.int64))  # autoreset
    assert sorted(seen) == list(range(21))


def test_vector_bad_actions():
    envs = ABNVectorEnv(3)
    with pytest.raises(RuntimeError, match="before reset"):
        envs.step(np.zeros(3, dtype=np.int64))
    envs.reset(seed=0)
    with pytest.raises(ValueError, match="shape \\(3,\\)"):
        envs.step(np.zeros(2, dtype=np.int64))
    with pytest.raises(ValueError, match=r"invalid action 9"):
        envs.step(np.array([0, 9, 1]))
    with pytest.raises(ValueError, match="expected an int array"):
        envs.step(np.array([0.0, 1.0, 2.0]))


def test_dict_obs_mode_batches_parts():
    envs = ABNVectorEnv(4, obs_mode="dict")
    obs, _ = envs.reset(seed=0)
    assert set(obs) == set(envs.layout.slices) and obs["act_mean"].shape == (4, 64)
    assert envs.observation_space.contains(obs)


def test_vector_lookahead_counts_decision_macs():
    envs = ABNVectorEnv(3, split="test")
    envs.reset(seed=0)
    logits = envs.lookahead(np.full((6, 18), 8), rows=np.array([0, 0, 1, 1, 2, 2]))
    assert logits.shape == (6, 10)
    assert np.array_equal(logits[0], logits[1])
    assert (envs.engine.lookahead_macs == 2 * envs.engine.rest_macs[0]).all()


def test_vector_snapshot_and_lookahead_mid_block_match_single_envs():
    # After mixed actions the engine's activations are grouped by bit-width, not in row
    # order: snapshots, look-ahead and observations must still be per row.
    n, seed = 6, 3
    envs = ABNVectorEnv(n, split="test")
    actions = np.random.default_rng(5).integers(0, 7, (18, n))
    envs.reset(seed=seed)
    for a in actions[:3]:
        envs.step(a)
    snapshot = envs.get_state()
    rest = np.random.default_rng(6).choice(envs.engine.net.bit_choices, (n, 15))
    logits = envs.lookahead(rest)
    first = [envs.step(a)[:2] for a in actions[3:]]
    envs.set_state(snapshot)
    again = [envs.step(a)[:2] for a in actions[3:]]
    for (o1, r1), (o2, r2) in zip(first, again):
        assert np.array_equal(o1, o2) and np.array_equal(r1, r2)
    for i in range(n):
        env = gym.make("ABN-ResNet-v0", split="test").unwrapped
        env.reset(seed=seed + i)
        for a in actions[:3, i]:
            env.step(a)
        assert np.array_equal(env.lookahead(rest[i]), logits[i])
        for k, a in enumerate(actions[3:, i]):
            o, r, *_ = env.step(a)
            assert np.array_equal(o, first[k][0][i]) and r == first[k][1][i]


def test_lookahead_macs_are_the_remaining_layers_by_hand():
    from tests.abn_gym.test_observation_oracle import MACS

    fc_macs = 64 * 10  # the classifier runs after every look-ahead; the stem has already run
    envs = ABNVectorEnv(2, split="test")
    envs.reset(seed=0)
    for t in range(4):  # look ahead from layers 0..3, once per row each time
        envs.lookahead(np.full((2, 18 - t), 2), rows=np.array([0, 1]))
        envs.step(np.zeros(2, dtype=np.int64))
    expected = sum(sum(MACS[t:]) + fc_macs for t in range(4))
    assert envs.engine.lookahead_macs.tolist() == [expected, expected]
