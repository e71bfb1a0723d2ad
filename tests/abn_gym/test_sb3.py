"""SB3 on the native adapter, and subprocess vectorisation of the picklable single env."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
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
        assert info["terminal_observation"].shape == (172,) and info["episode_bits"].shape == (18,)
        assert info["TimeLimit.truncated"] is False
    # The returned observation is already the next episode's first one.
    assert (obs[:, 128 + 6] == 1.0).all()  # one-hot of layer 0


def test_adapter_refuses_an_autoreset_mode():
    from abn_gym.errors import EnvArgumentError

    with pytest.raises(EnvArgumentError, match="SB3VecEnv does not take autoreset_mode"):
        SB3VecEnv("ABN-ResNet-v0", num_envs=2, autoreset_mode="SAME_STEP")


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
    sizes = {"act_mean": 64, "act_std": 64, "layer": 6, "layer_onehot": 18, "bits_so_far": 18, "bitops_spent": 1}
    extractor = model.policy.features_extractor
    assert {k: extractor.extractors[k](th.zeros(1, n)).shape[1] for k, n in sizes.items()} == sizes
    assert extractor.features_dim == 172
    # What PPO stored and trained on: rollout step k is layer k of every episode.
    # SB3 flattens the buffer env by env after training: (envs, steps, part).
    stored = {k: v.reshape(4, 18, -1).swapaxes(0, 1) for k, v in model.rollout_buffer.observations.items()}
    assert stored["layer_onehot"].shape == (18, 4, 18)
    assert np.array_equal(stored["layer_onehot"].argmax(-1), np.repeat(np.arange(18)[:, None], 4, 1))
    assert np.array_equal((stored["bits_so_far"] > 0).sum(-1), np.repeat(np.arange(18)[:, None], 4, 1))
    assert (np.diff(stored["bitops_spent"][..., 0], axis=0) > 0).all() and (stored["budget"] == 1).all()
    # The dict observation is the vector observation cut into its parts.
    dict_obs = make_sb3_env("ABN-ResNet-v0", num_envs=2, seed=5, obs_mode="dict").reset()
    vec_obs = make_sb3_env("ABN-ResNet-v0", num_envs=2, seed=5).reset()
    assert np.array_equal(np.concatenate([dict_obs[k] for k in [*sizes, "budget"]], axis=1), vec_obs)
    actions, _ = model.predict(dict_obs)
    assert actions.shape == (2,) and ((actions >= 0) & (actions < 7)).all()


def test_maskable_ppo_actions_are_never_clipped():
    # An untrained MaskablePPO asks for every bit-width; with masks no step is clipped: every layer runs at
    # the bit-width the policy chose (the adapter reports the executed bits at the end of the episode).
    from sb3_contrib import MaskablePPO
    from sb3_contrib.common.maskable.utils import get_action_masks

    env = make_sb3_env("ABN-ResNet-Budget-v0", num_envs=16, seed=1)
    model = MaskablePPO("MlpPolicy", env, n_steps=18, batch_size=48, seed=0, device="cpu")
    for use_masks in (True, False):
        obs = env.reset()
        asked, asked_high = [], 0
        for _ in range(18):
            masks = get_action_masks(env)
            action, _ = model.predict(obs, action_masks=masks if use_masks else None)
            if use_masks:
                assert masks[np.arange(16), action].all()
            asked_high += int((action == 6).sum())
            asked.append(np.array(env.get_attr("bit_choices")[0])[action])
            obs, _, done, infos = env.step(action)
        assert done.all() and asked_high > 0
        ran = np.array([i["episode_bits"] for i in infos]).T
        clipped = ran != np.array(asked)
        assert clipped.shape == (18, 16)
        assert max(i["bitops_fraction"] for i in infos) <= abn_gym.DEFAULT_BUDGET + 1e-9
        # Without masks the same policy does get clipped: the check above has teeth.
        assert not clipped.any() if use_masks else clipped.any()


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
