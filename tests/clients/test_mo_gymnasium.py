"""MO-Gymnasium runs the multi-objective ids: its make, wrappers and vector env, and LinearReward's exact scalar.

Skipped when MO-Gymnasium is not installed; ``make clients`` installs it beside the project and runs these.
"""

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

mo_gym = pytest.importorskip("mo_gymnasium")
from mo_gymnasium.wrappers import LinearReward, MONormalizeReward, MORecordEpisodeStatistics  # noqa: E402
from mo_gymnasium.wrappers.vector import MORecordEpisodeStatistics as MOVectorRecord  # noqa: E402
from mo_gymnasium.wrappers.vector import MOSyncVectorEnv  # noqa: E402

import abn_gym  # noqa: E402  (registers the ids: MO-Gymnasium's make is Gymnasium's)
from abn_gym.multi_objective import MOABNEnv, MOABNVectorEnv  # noqa: E402
from tests.abn_gym.test_multi_objective import play  # noqa: E402

STEEP = "mo-ABN-ResNet20Quarter-v1"
episode = play  # one seeded episode: (per-step rewards, last info)


def test_make_after_import_and_with_the_module_prefix():
    env = mo_gym.make(STEEP, split="val")
    assert isinstance(env.unwrapped, MOABNEnv)
    assert env.unwrapped.reward_dim == 2 and env.unwrapped.reward_space.shape == (2,)
    # Without `import abn_gym`, the "abn_gym:" prefix imports it (Gymnasium's make does the import).
    code = f"import mo_gymnasium as m; e = m.make('abn_gym:{STEEP}'); print(e.unwrapped.reward_dim)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "2"


@pytest.mark.parametrize("mo_id", ["mo-ABN-ResNet20Quarter-v1", "mo-ABN-ResNet20Quarter-Budget-v1"])
def test_linear_reward_with_the_scalar_ids_weights_reproduces_its_return_exactly(mo_id):
    scalar_id = abn_gym.MO_ENV_IDS[mo_id]
    kwargs = abn_gym.ENV_IDS[scalar_id]
    # The scalar id's weights, written from its registered arguments: 1 for correctness, cost_coef
    # for the cost ("correct" charges no cost).
    weights = np.array([1.0, kwargs.get("cost_coef", 0.0) if kwargs.get("reward") != "correct" else 0.0])
    assert weights.tolist() == (
        [1.0, abn_gym.QUARTER_COST_COEF] if mo_id == "mo-ABN-ResNet20Quarter-v1" else [1.0, 0.0]
    )
    linear = LinearReward(mo_gym.make(mo_id, split="val"), weight=weights)
    scalar = gym.make(scalar_id, split="val")
    returns = []
    for seed in range(6):
        actions = np.random.default_rng(seed).integers(0, 7, 18)
        weighted, info = episode(linear, actions, seed)
        rewards, _ = episode(scalar, actions, seed)
        assert weighted == rewards  # every step, bit for bit
        assert sum(weighted) == sum(rewards)
        assert info["vector_reward"].shape == (2,)
        returns.append(sum(rewards))
    assert len(set(returns)) > 1  # the episodes differ: not a constant compared with itself


def test_record_episode_statistics_and_normalize_reward():
    env = MORecordEpisodeStatistics(mo_gym.make(STEEP, split="val"), gamma=1.0)
    raw = mo_gym.make(STEEP, split="val")
    actions = np.random.default_rng(0).integers(0, 7, 18)
    rewards, info = episode(env, actions, 4)
    expected, _ = episode(raw, actions, 4)
    assert info["episode"]["l"] == 18
    assert np.allclose(info["episode"]["r"], np.sum(expected, axis=0), rtol=1e-6)  # float32 sums
    assert np.array_equal(np.array(rewards), np.array(expected))
    # MONormalizeReward scales one objective and leaves the other alone.
    for idx in (0, 1):
        normalized, _ = episode(MONormalizeReward(mo_gym.make(STEEP, split="val"), idx=idx), actions, 4)
        other = 1 - idx
        assert [r[other] for r in normalized] == [r[other] for r in expected]
        assert np.all(np.sign([r[idx] for r in normalized]) == np.sign([r[idx] for r in expected]))
        assert [r[idx] for r in normalized] != [r[idx] for r in expected]


def test_mo_sync_vector_env_equals_the_native_vector_env():
    n, seed = 3, 9
    sync = MOSyncVectorEnv([lambda: mo_gym.make(STEEP, split="val") for _ in range(n)])
    native = gym.make_vec(STEEP, num_envs=n, vectorization_mode="vector_entry_point", split="val")
    assert isinstance(native, MOABNVectorEnv)
    assert sync.reward_space == native.reward_space  # MO-Gymnasium's convention: one sub-env's space
    actions = np.random.default_rng(1).integers(0, 7, (2 * 19, n))
    sync.reset(seed=seed)
    native.reset(seed=seed)
    for a in actions:  # two episodes and the autoreset calls between them
        r_sync, r_native = sync.step(a)[1], native.step(a)[1]
        assert r_sync.shape == r_native.shape == (n, 2)
        assert np.array_equal(r_sync, r_native.astype(np.float32))  # MOSyncVectorEnv stores float32


def test_vector_episode_statistics_on_the_native_vector_env():
    n = 4
    envs = MOVectorRecord(MOABNVectorEnv(n, split="val", supernet=abn_gym.QUARTER), gamma=1.0)
    envs.reset(seed=0)
    total = np.zeros((n, 2))
    for a in np.random.default_rng(2).integers(0, 7, (18, n)):
        _, rewards, terminated, _, info = envs.step(a)
        total += rewards
    assert terminated.all()
    assert np.allclose(info["episode"]["r"], total, rtol=1e-6) and info["episode"]["l"].tolist() == [18] * n
