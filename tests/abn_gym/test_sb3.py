"""SB3 on the native adapter, and subprocess vectorisation of the picklable single env."""

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import SubprocVecEnv

import abn_gym
from abn_gym.sb3 import SB3VecEnv, make_sb3_env


def test_adapter_semantics_same_step_reset():
    env = SB3VecEnv("ABN-ResNet-v0", num_envs=4, seed=3)
    obs = env.reset()
    assert obs.shape == (4, 172)
    for _ in range(18):
        env.step_async(np.full(4, 2))
        obs, rew, done, infos = env.step_wait()
        assert rew.dtype == np.float32
    assert done.all()
    for info in infos:
        assert info["terminal_observation"].shape == (172,) and len(info["bits"]) == 18
        assert info["TimeLimit.truncated"] is False
    # The returned observation is already the next episode's first one.
    assert (obs[:, 128 + 6] == 1.0).all()  # one-hot of layer 0


def test_ppo_trains_and_evaluates_on_the_adapter():
    env = make_sb3_env("ABN-ResNet-v0", num_envs=8, seed=0)
    model = PPO("MlpPolicy", env, n_steps=18, batch_size=48, n_epochs=1, seed=0, verbose=0, device="cpu")
    model.learn(18 * 8 * 2)
    mean, _ = evaluate_policy(model, env, n_eval_episodes=8)
    assert np.isfinite(mean) and -1.0 <= mean <= 1.0


def test_maskable_ppo_on_budget_env():
    from sb3_contrib import MaskablePPO
    from sb3_contrib.common.maskable.utils import get_action_masks

    env = make_sb3_env("ABN-ResNet-Budget-v0", num_envs=8, seed=0)
    masks = get_action_masks(env)
    assert masks.shape == (8, 7) and masks[:, 0].all()
    model = MaskablePPO("MlpPolicy", env, n_steps=18, batch_size=48, n_epochs=1, seed=0, device="cpu")
    model.learn(18 * 8)
    obs = env.reset()
    for _ in range(18):
        action, _ = model.predict(obs, action_masks=get_action_masks(env))
        obs, _, done, infos = env.step(action)
    assert done.all()
    assert max(i["bitops_fraction"] for i in infos) <= abn_gym.DEFAULT_BUDGET + 1e-9
    assert not any(i["clipped"] for i in infos)


def test_dict_obs_with_multi_input_policy():
    env = make_sb3_env("ABN-ResNet-v0", num_envs=4, seed=0, obs_mode="dict")
    model = PPO("MultiInputPolicy", env, n_steps=18, batch_size=36, n_epochs=1, seed=0, device="cpu")
    model.learn(18 * 4)


def _make():
    return gym.make("ABN-ResNet-v0")


@pytest.mark.slow
def test_subprocess_vectorisation_matches_native():
    sub = SubprocVecEnv([_make, _make], start_method="spawn")
    sub.seed(7)
    native = SB3VecEnv("ABN-ResNet-v0", num_envs=2, seed=7)
    try:
        o1, o2 = sub.reset(), native.reset()
        assert np.array_equal(o1, o2)
        for a in np.random.default_rng(0).integers(0, 7, (18, 2)):
            o1, r1, d1, _ = sub.step(a)
            o2, r2, d2, _ = native.step(a)
            assert np.array_equal(o1, o2) and np.allclose(r1, r2) and np.array_equal(d1, d2)
    finally:
        sub.close()
    async_env = gym.vector.AsyncVectorEnv([_make, _make], context="spawn")
    try:
        obs, _ = async_env.reset(seed=7)
        assert obs.shape == (2, 172)
    finally:
        async_env.close()
