"""Render modes, the env's visible arguments and its doctest."""

import doctest
import inspect
import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import abn_gym
from abn_gym.config import ENV_KWARGS
from abn_gym.env import ABNEnv
from abn_gym.errors import EnvArgumentError


@pytest.mark.parametrize("render_mode", ["ansi", "rgb_array"])
def test_render_modes_pass_gymnasiums_and_sb3s_checkers(render_mode):
    env = gym.make("ABN-ResNet-v0", render_mode=render_mode)
    check_env(env.unwrapped)  # render checks included, for every declared mode
    sb3_check_env(env, warn=True, skip_render_check=False)


def test_ansi_lists_bits_and_bitops_layer_by_layer():
    env = gym.make("ABN-ResNet-v0", render_mode="ansi")
    assert "call reset()" in env.unwrapped.render()
    env.reset(seed=0, options={"index": 3})
    for a in (0, 6, 2):
        env.step(a)
    text = env.render()
    lines = text.splitlines()
    assert lines[0].startswith("image 3 of the train split, 3/18 layers run; layer 3 is next")
    assert [line.split()[:2] for line in lines[2:5]] == [["0", "2"], ["1", "8"], ["2", "4"]]
    engine = env.unwrapped.engine
    assert f"spent {engine.spent_ops[0] / 1e6:.3f} MBitOps" in text
    for _ in range(15):
        *_, info = env.step(1)
    assert "18/18 layers run; every layer has run" in env.render()
    assert [int(line.split()[1]) for line in env.render().splitlines()[2:20]] == info["episode_bits"].tolist()


def test_rgb_array_draws_the_image_beside_one_bar_per_layer():
    env = gym.make("ABN-ResNet-v0", render_mode="rgb_array")
    env.reset(seed=0)
    blank = env.render()
    env.step(6)  # layer 0 at 8 bits: a full-height bar
    env.step(0)  # layer 1 at 2 bits: a quarter of it
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3 and frame.shape == blank.shape
    image = env.unwrapped.engine.split.images[int(env.unwrapped.engine.indices[0]), 0].numpy()
    assert np.array_equal(frame[4 : 4 + 112 : 4, 4 : 4 + 112 : 4, 0], image)  # the image, scaled 4x
    left, base = 4 + 112 + 8, 4 + 112
    bar0 = (frame[:base, left + 2] != 255).any(axis=1) & (frame[:base, left + 2] != 230).any(axis=1)
    bar1 = (frame[:base, left + 10] != 255).any(axis=1) & (frame[:base, left + 10] != 230).any(axis=1)
    assert bar0.sum() == 112 and bar1.sum() == 28


def test_vector_env_renders_one_frame_per_sub_env():
    envs = gym.make_vec("ABN-ResNet-v0", num_envs=3, vectorization_mode="vector_entry_point", render_mode="ansi")
    envs.reset(seed=0)
    envs.step(np.array([0, 1, 2]))
    frames = envs.render()
    assert len(frames) == 3 and [f.splitlines()[2].split()[1] for f in frames] == ["2", "3", "4"]


def test_render_mode_is_validated_kept_and_warned_about():
    with pytest.raises(EnvArgumentError, match="invalid render_mode='human'"):
        ABNEnv(render_mode="human")
    env = ABNEnv(render_mode="ansi")
    assert pickle.loads(pickle.dumps(env)).render_mode == "ansi"
    env.reset(seed=0)
    assert env.fork().render_mode == "ansi"
    plain = ABNEnv()
    plain.reset(seed=0)
    # Gymnasium's logger wraps the message as "WARN: <message>" in colour codes.
    message = r"WARN: render\(\) was called without a render mode: make the env with render_mode='ansi' or 'rgb_array'"
    with pytest.warns(UserWarning, match=message + r"(\x1b\[0m)?$"):
        assert plain.render() is None


def test_sb3_make_vec_env_makes_the_env_without_warnings():
    from stable_baselines3.common.env_util import make_vec_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        venv = make_vec_env("ABN-ResNet-v0", n_envs=1)
    assert venv.render_mode == "rgb_array"
    venv.close()


def test_arguments_are_keyword_only_and_visible():
    params = inspect.signature(ABNEnv).parameters
    assert list(params) == [*ENV_KWARGS, "render_mode"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())
    assert params["cost_coef"].default == abn_gym.DEFAULT_COST_COEF
    with pytest.raises(TypeError):
        ABNEnv("resnet20-fashionmnist")


def test_docstring_example_runs():
    import abn_gym.env

    result = doctest.testmod(abn_gym.env)
    assert result.attempted >= 5 and result.failed == 0
