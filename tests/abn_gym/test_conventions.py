"""Gymnasium conventions (issue #28, section 5): masks through wrappers, copies, time limits, the
vector env's attribute API, make_vec with wrappers, NumPy info values and dict observations."""

import copy
import pickle
import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence
from gymnasium.wrappers import TimeAwareObservation

import abn_gym
from abn_gym.env import ABNEnv
from abn_gym.errors import EnvCallError
from abn_gym.vector import ABNVectorEnv

ENV = "ABN-ResNet20Quarter-v1"
BUDGET = "ABN-ResNet20Quarter-Budget-v1"
DOC = Path(__file__).resolve().parents[2] / "docs" / "guides" / "compatibility.md"


def test_the_documented_maskable_ppo_snippet_runs_as_written():
    section = DOC.read_text().split("## Gymnasium conventions", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    snippet = "\n".join(line[2:] for line in snippet.splitlines())  # the block is indented in its list item
    assert "ActionMasker" in snippet and "MaskablePPO" in snippet
    scope: dict = {}
    exec(compile(snippet, str(DOC), "exec"), scope)
    model, env = scope["model"], scope["env"]
    assert model.num_timesteps == 72
    # The mask the wrapper hands MaskablePPO is the budget's, which does forbid actions.
    env.reset(seed=0)
    masks = []
    for _ in range(18):
        masks.append(env.action_masks())
        assert np.array_equal(masks[-1], env.unwrapped.engine.action_masks()[0])
        *_, info = env.step(int(np.flatnonzero(masks[-1]).max()))
        assert not info["clipped"]
    assert not np.all(masks)


def test_masks_reach_through_wrappers_as_documented():
    env = gym.make(BUDGET)
    with pytest.raises(AttributeError):
        env.action_masks()  # Gymnasium 1.x wrappers do not forward attributes
    env.reset(seed=0)
    assert np.array_equal(env.get_wrapper_attr("action_masks")(), env.unwrapped.action_masks())


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda e: pickle.loads(pickle.dumps(e))], ids=["deepcopy", "pickle"])
@pytest.mark.parametrize("env_id", [ENV, BUDGET])
def test_copies_keep_the_episode_and_the_generator(clone, env_id):
    env = gym.make(env_id, split="val")
    env.reset(seed=5)
    for a in (6, 0, 3):
        env.step(a)
    twin = clone(env)
    assert twin.unwrapped is not env.unwrapped and twin.unwrapped.spec.id == env_id
    assert twin.unwrapped.layer == env.unwrapped.layer == 3
    rng = np.random.default_rng(1)
    for _ in range(2):  # the rest of this episode, then a whole unseeded one: same images, same results
        done = False
        while not done:
            a = int(rng.integers(7))
            out, twin_out = env.step(a), twin.step(a)
            assert data_equivalence(out, twin_out)
            done = out[2]
        assert data_equivalence(env.reset(), twin.reset())
    assert env.unwrapped.np_random_seed == twin.unwrapped.np_random_seed == 5


def test_copy_of_a_finished_episode_stays_finished_and_a_fresh_env_copies_its_arguments():
    env = ABNEnv(supernet="resnet20-quarter-fashionmnist", split="val", cost_coef=0.3)
    clone = pickle.loads(pickle.dumps(env))  # never reset: the arguments only
    assert clone.config == env.config and clone._engine is None
    env.reset(seed=0)
    for _ in range(18):
        env.step(0)
    clone = copy.deepcopy(env)
    with pytest.raises(RuntimeError, match="after the episode terminated"):
        clone.step(0)


@pytest.mark.parametrize("env_id", sorted(abn_gym.ENV_IDS))
def test_ids_register_no_time_limit_and_one_above_the_horizon_changes_nothing(env_id):
    assert gym.spec(env_id).max_episode_steps is None  # see the compatibility guide for why
    for kwargs in ({}, {"decide_at": (0, 7, 13)}):
        plain = gym.make(env_id, split="val", **kwargs)
        horizon = plain.unwrapped.horizon
        limited = gym.make(env_id, split="val", max_episode_steps=horizon + 1, **kwargs)
        assert isinstance(limited, gym.wrappers.TimeLimit) and not isinstance(plain, gym.wrappers.TimeLimit)
        aware = TimeAwareObservation(gym.make(env_id, split="val", max_episode_steps=horizon + 1, **kwargs))
        for env in (plain, limited, aware):
            env.reset(seed=2)
        for episode in range(2):
            for t in range(horizon):
                a = (t + episode) % 7
                out, lim, aw = plain.step(a), limited.step(a), aware.step(a)
                assert data_equivalence(out, lim)
                assert data_equivalence(out[1:], aw[1:]) and aw[0][-1] == t + 1  # the elapsed steps appended
                assert np.array_equal(aw[0][:-1], out[0])
            assert out[2] and not lim[3] and not aw[3]  # terminated, never truncated
            for env in (plain, limited, aware):
                env.reset()


def test_equal_limit_would_mark_the_last_step_truncated():
    # Why the specs carry no max_episode_steps: a TimeLimit of exactly the horizon truncates the last step.
    env = gym.make(ENV, split="val", max_episode_steps=18)
    env.reset(seed=0)
    for _ in range(18):
        *_, terminated, truncated, _ = env.step(0)
    assert terminated and truncated


def test_vector_env_call_get_attr_and_set_attr():
    envs = gym.make_vec(BUDGET, num_envs=3, vectorization_mode="vector_entry_point", split="val")
    envs.reset(seed=0)
    envs.step(np.array([6, 6, 0]))
    masks = envs.call("action_masks")
    assert isinstance(masks, tuple) and len(masks) == 3
    assert all(np.array_equal(m, row) for m, row in zip(masks, envs.unwrapped.action_masks()))
    assert envs.get_attr("bit_choices") == ((2, 3, 4, 5, 6, 7, 8),) * 3
    assert envs.get_attr("layer") == (1, 1, 1) and envs.get_attr("horizon") == (18,) * 3
    assert envs.get_attr("observation_space") == (envs.single_observation_space,) * 3
    # A SyncVectorEnv of single envs answers the same.
    sync = gym.make_vec(BUDGET, num_envs=3, vectorization_mode="sync", split="val")
    sync.reset(seed=0)
    sync.step(np.array([6, 6, 0]))
    assert data_equivalence(sync.call("action_masks"), masks)
    assert sync.get_attr("bit_choices") == envs.get_attr("bit_choices")
    envs.set_attr("curriculum_level", 2)
    envs.set_attr("curriculum_level", [3, 3, 3])
    assert envs.get_attr("curriculum_level") == (3, 3, 3)
    with pytest.raises(EnvCallError, match="share one engine"):
        envs.set_attr("curriculum_level", [1, 2, 3])
    with pytest.raises(EnvCallError, match="got 2 values for 3 sub-envs"):
        envs.set_attr("curriculum_level", [1, 1])
    with pytest.raises(EnvCallError, match="env's own attribute"):
        envs.set_attr("horizon", 5)
    with pytest.raises(EnvCallError, match=r"call envs\.reset\(\.\.\.\) on the vector env"):
        envs.call("reset")
    with pytest.raises(EnvCallError, match="no public attribute 'engine_'"):
        envs.get_attr("engine_")


def test_render_through_call_is_one_frame_per_sub_env():
    envs = ABNVectorEnv(2, supernet="resnet20-quarter-fashionmnist", split="val", render_mode="ansi")
    envs.reset(seed=0)
    assert envs.call("render") == envs.render() and len(envs.call("render")) == 2


def test_make_vec_with_wrappers_uses_sync_mode_or_native_vector_wrappers():
    with pytest.raises(gym.error.Error, match="Cannot use `vector_entry_point` vectorization mode with the wrappers"):
        gym.make_vec(ENV, num_envs=2, wrappers=[gym.wrappers.FlattenObservation])
    sync = gym.make_vec(
        ENV, num_envs=2, vectorization_mode="sync", wrappers=[gym.wrappers.FlattenObservation], split="val"
    )
    native = gym.wrappers.vector.RecordEpisodeStatistics(gym.make_vec(ENV, num_envs=2, split="val"))
    for envs in (sync, native):
        envs.reset(seed=0)
        for _ in range(18):
            envs.step(np.zeros(2, dtype=np.int64))
    assert native.return_queue and len(native.length_queue) == 2 and native.length_queue[0] == 18


def test_vector_info_values_are_numpy_and_match_the_single_env():
    envs = ABNVectorEnv(2, supernet="resnet20-quarter-fashionmnist", split="val", reward="correct", budget=0.3)
    single = ABNEnv(supernet="resnet20-quarter-fashionmnist", split="val", reward="correct", budget=0.3)
    envs.reset(seed=0)
    single.reset(seed=0)
    for t in range(18):
        *_, info = envs.step(np.full(2, t % 7))
        *_, single_info = single.step(t % 7)
        assert set(single_info) <= set(info)
        for key, value in single_info.items():
            assert isinstance(value, (np.generic, np.ndarray)), key
            assert data_equivalence(value, info[key][0]), key
            assert value.dtype == info[key].dtype, key


@pytest.mark.parametrize("supernet", ["resnet20-quarter-fashionmnist", "resnet20-fashionmnist"])
def test_dict_parts_flatten_in_the_spaces_order_and_concatenate_to_the_vector(supernet):
    vec = ABNEnv(supernet=supernet, split="val")
    dct = ABNEnv(supernet=supernet, split="val", obs_mode="dict")
    o_vec, _ = vec.reset(seed=0)
    o_dict, _ = dct.reset(seed=0)
    order = list(dct.layout.slices)
    assert order[0] == "act_mean" and order[-1] == "budget"  # the vector's order
    assert list(dct.observation_space.spaces) == sorted(order)  # the Dict's: alphabetical, as documented
    assert np.array_equal(np.concatenate([o_dict[k] for k in order]), o_vec)
    flat = gym.spaces.flatten(dct.observation_space, o_dict)
    assert np.array_equal(flat, np.concatenate([o_dict[k] for k in sorted(order)]))


@pytest.mark.parametrize("kwargs", [{}, {"decide_at": (0, 5, 6)}, {"reward": "correct", "budget": 0.3}])
@pytest.mark.parametrize("supernet", ["resnet20-quarter-fashionmnist", "resnet20-fashionmnist"])
def test_step_costs_and_the_fixed_layers_add_up_to_the_episode_exactly(supernet, kwargs):
    env = ABNEnv(supernet=supernet, split="val", cost_coef=0.1, **kwargs)
    net = env.engine.net
    rng = np.random.default_rng(0)
    env.reset(seed=1)
    steps, rewards, done = [], [], False
    while not done:
        _, reward, done, _, info = env.step(int(rng.integers(7)))
        steps.append(info["bitops_step"])
        rewards.append(reward)
    # The configuration's BitOps counted by the supernet, and its fixed part, by another route.
    total = net.bitops([int(b) for b in info["episode_bits"]])
    assert info["bitops"] == total and info["bitops_all8"] == net.max_bitops == net.bitops([8] * net.num_switchable)
    assert info["bitops_fixed"] == net.bitops([8] * net.num_switchable) - sum(
        net.layer_bitops(t, 8) for t in range(net.num_switchable)
    )
    assert sum(steps) + info["bitops_fixed"] == info["bitops"]  # exactly: whole numbers in float64
    assert info["bitops_fraction"] == info["bitops"] / info["bitops_all8"]
    if "reward" not in kwargs:  # the default reward's step cost uses the same normaliser
        assert np.allclose(rewards[:-1], [-0.1 * s / info["bitops_all8"] for s in steps[:-1]], rtol=1e-12)


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda e: pickle.loads(pickle.dumps(e))], ids=["deepcopy", "pickle"])
@pytest.mark.parametrize("kwargs", [{}, {"reward": "correct", "budget": (0.2, 0.5), "autoreset_mode": "SAME_STEP"}])
def test_vector_copies_keep_the_episodes_and_the_generators(clone, kwargs):
    envs = gym.make_vec(ENV, num_envs=3, vectorization_mode="vector_entry_point", split="val", **kwargs)
    envs.reset(seed=7)
    for a in (6, 0, 3):
        envs.step(np.full(3, a))
    envs.set_attr("curriculum_level", 2)
    twin = clone(envs)
    assert twin.engine is not envs.engine and twin.get_attr("curriculum_level") == (2, 2, 2)
    assert twin.spec.id == ENV and twin.autoreset_mode == envs.autoreset_mode
    rng = np.random.default_rng(1)
    for _ in range(2 * 18 + 1):  # across two autoresets: the next images come from the copied generators
        a = rng.integers(0, 7, 3)
        assert data_equivalence(envs.step(a), twin.step(a))
    assert len(pickle.dumps(envs)) < 400_000  # the episodes' activations, not the supernet's weights
