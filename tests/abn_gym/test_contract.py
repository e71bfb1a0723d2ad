"""The env contract RL libraries rely on (issue #19, section 4).

Info keys keep one type and shape, and are the ones the docstring's table lists; the budget's mask
is in info at every step; unknown arguments raise Python's own TypeError wording; the vector env's
three autoreset modes agree with each other step for step.
"""

import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence
from gymnasium.vector import AutoresetMode

import abn_gym
from abn_gym.env import ABNEnv
from abn_gym.errors import EnvArgumentError
from abn_gym.vector import ABNVectorEnv
from supernets.foundation.errors import ABNGymError

IDS = sorted(abn_gym.ENV_IDS)


def documented_keys() -> dict[str, str]:
    """Key -> "when" column of the Info table in ABNEnv's docstring."""
    section = ABNEnv.__doc__.split("## Info", 1)[1].split("##", 1)[0]
    rows = re.findall(r"^\s*\| ``(\w+)`` \| ([^|]+) \|", section, flags=re.M)
    return {key: when.strip() for key, when in rows}


def signature(value):
    """Type and shape of an info value."""
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape)
    return (type(value).__name__,)


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("kwargs", [{}, {"decide_at": (0, 5, 6)}])
def test_single_env_info_keys_have_one_type_and_shape_and_are_documented(env_id, kwargs):
    doc = documented_keys()
    assert set(doc) == {
        "layer", "bits", "bitops_step", "clipped", "action_mask", "correct", "prediction", "label", "index",
        "episode_bits", "bitops", "bitops_fraction", "bitops_fixed", "bitops_all8",
        "cost_step", "cost", "cost_fraction", "cost_fixed", "cost_all8",
    }  # fmt: skip
    env = gym.make(env_id, **kwargs)
    budget = env.unwrapped.config.budget is not None
    seen: dict[str, set] = {}
    for seed in (0, 1):
        _, info = env.reset(seed=seed)
        assert set(info) == ({"action_mask"} if budget else set())
        infos = [info]
        term = False
        while not term:
            *_, term, _, info = env.step(env.action_space.sample())
            infos.append(info)
        for k, info in enumerate(infos):
            every = {key for key, when in doc.items() if "every step" in when}
            if not budget:
                every -= {"clipped", "action_mask"}
            last = {key for key, when in doc.items() if when == "last step"}
            if k > 0:
                assert set(info) == (every | last if k == len(infos) - 1 else every)
            for key, value in info.items():
                seen.setdefault(key, set()).add(signature(value))
    assert all(len(s) == 1 for s in seen.values()), seen
    assert seen["episode_bits"] == {("ndarray", "<i8", (18,))} and seen["bits"] == {("int64",)}
    # NumPy scalars, never Python ones (TorchRL reads every value's dtype).
    assert all(isinstance(v, (np.generic, np.ndarray)) for info in infos for v in info.values())
    if budget:
        assert seen["action_mask"] == {("ndarray", "|b1", (7,))}


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("mode", list(AutoresetMode))
def test_vector_env_info_arrays_keep_their_shape_on_every_step(env_id, mode):
    n = 3
    envs = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", autoreset_mode=mode)
    _, info = envs.reset(seed=0)
    infos = [info]
    for _ in range(2 * 19):
        if mode == AutoresetMode.DISABLED and envs.engine.done:
            _, info = envs.reset()
        else:
            *_, info = envs.step(np.zeros(n, dtype=np.int64))
        infos.append(info)
        if "final_info" in info:
            infos.append(info["final_info"])
    seen: dict[str, set] = {}
    for info in infos:
        for key, value in info.items():
            if key in ("final_obs", "final_info"):
                continue
            assert isinstance(value, np.ndarray) and value.shape[0] == n, key
            if key.startswith("_"):
                assert value.dtype == bool and value.all()
            else:
                assert info["_" + key].shape == (n,)
            seen.setdefault(key, set()).add(signature(value))
    assert all(len(s) == 1 for s in seen.values()), seen
    assert seen["episode_bits"] == {("ndarray", "<i8", (n, 18))} and seen["bits"] == {("ndarray", "<i8", (n,))}
    if "Budget" in env_id:
        assert seen["action_mask"] == {("ndarray", "|b1", (n, 7))}
    else:
        assert "action_mask" not in seen and "clipped" not in seen


@pytest.mark.parametrize("env_id", ["ABN-ResNet-Budget-v0", "ABN-ResNet20Quarter-Budget-v1"])
def test_action_mask_in_info_is_the_mask_at_every_step(env_id):
    env = gym.make(env_id).unwrapped
    _, info = env.reset(seed=3)
    for _ in range(18):
        expected = env.action_masks()
        assert np.array_equal(info["action_mask"], expected)
        allowed = np.flatnonzero(expected)
        _, _, term, _, info = env.step(int(allowed.max()))  # the highest allowed: never clipped
        assert info["clipped"] is np.False_
    assert term and info["action_mask"].all()
    envs = ABNVectorEnv(4, **abn_gym.ENV_IDS[env_id] | {"supernet": env.config.supernet})
    _, info = envs.reset(seed=3)
    refused = 0
    for _ in range(18):
        assert np.array_equal(info["action_mask"], envs.action_masks())
        refused += int((~envs.action_masks()).sum())
        *_, info = envs.step(np.full(4, 6))
    assert refused > 0 and info["action_mask"].all()  # the checks above have teeth


@pytest.mark.parametrize("make", [gym.make, ABNEnv, lambda **kw: ABNVectorEnv(2, **kw)])
def test_unknown_argument_uses_pythons_type_error_wording(make):
    with pytest.raises(TypeError, match=r"got an unexpected keyword argument 'frameskip'.*valid arguments are \[") as e:
        make(**({"id": "ABN-ResNet-v0"} if make is gym.make else {}), frameskip=1)
    assert isinstance(e.value, ABNGymError)
    assert "'decide_at'" in str(e.value) and "'render_mode'" in str(e.value)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'aa' \(and 'zz'\)"):
        ABNEnv(zz=1, aa=2)


def test_autoreset_mode_is_an_attribute_set_through_make_vec():
    for value, mode in [
        (AutoresetMode.SAME_STEP, AutoresetMode.SAME_STEP),
        ("SameStep", AutoresetMode.SAME_STEP),
        ("disabled", AutoresetMode.DISABLED),
        ("NEXT_STEP", AutoresetMode.NEXT_STEP),
    ]:
        envs = gym.make_vec("ABN-ResNet-v0", num_envs=2, vectorization_mode="vector_entry_point", autoreset_mode=value)
        assert envs.autoreset_mode is mode and envs.metadata["autoreset_mode"] is mode
    assert ABNVectorEnv(2).autoreset_mode is AutoresetMode.NEXT_STEP
    assert ABNVectorEnv.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP  # the class keeps its default
    with pytest.raises(EnvArgumentError, match=r"invalid autoreset_mode='sometimes': expected one of .*SAME_STEP"):
        ABNVectorEnv(2, autoreset_mode="sometimes")


def _run(mode, actions, n=3, **kwargs):
    envs = ABNVectorEnv(n, split="val", autoreset_mode=mode, **kwargs)
    out = [envs.reset(seed=4)]
    for a in actions:
        if mode == AutoresetMode.DISABLED and envs.engine.done:
            out.append(envs.reset())
        out.append(envs.step(a))
    return envs, out


@pytest.mark.parametrize("kwargs", [{}, {"obs_mode": "dict", "reward": "correct", "budget": (0.2, 0.5)}])
def test_same_step_and_disabled_agree_with_next_step(kwargs):
    actions = np.random.default_rng(0).integers(0, 7, (3 * 18, 3))
    with_autoreset = []  # NEXT_STEP needs one more call after each episode: its actions are ignored
    for k, a in enumerate(actions):
        with_autoreset += [a, a] if k in (18, 36) else [a]
    with_autoreset.append(actions[-1])  # and the autoreset after the last episode
    _, nxt = _run(AutoresetMode.NEXT_STEP, with_autoreset, **kwargs)
    _, same = _run(AutoresetMode.SAME_STEP, actions, **kwargs)
    _, off = _run(AutoresetMode.DISABLED, actions, **kwargs)
    # NEXT_STEP: reset, 18 steps, an autoreset call, 18 steps, ...; DISABLED: the same with reset() calls.
    assert len(nxt) - 1 == len(off) == 1 + 3 * 18 + 2
    for a, b in zip(nxt, off):  # observations and infos (a reset returns no reward)
        assert data_equivalence(a[0], b[0]) and data_equivalence(a[-1], b[-1])
        if len(b) == 5:
            assert data_equivalence(a[1:4], b[1:4])
    # SAME_STEP: the terminating call returns the next reset's observation and keeps the finished one apart.
    assert len(same) == 1 + 3 * 18
    skip = 0
    for k in range(1, len(same)):
        obs, rew, term, _, info = same[k]
        ref = nxt[k + skip]
        assert data_equivalence(rew, ref[1]) and data_equivalence(term, ref[2])
        if term.all():
            reset_obs, _, _, _, reset_info = nxt[k + skip + 1]
            assert data_equivalence(obs, reset_obs)
            final_obs = ref[0]
            for r in range(3):
                row = {p: v[r] for p, v in final_obs.items()} if isinstance(final_obs, dict) else final_obs[r]
                assert data_equivalence(info["final_obs"][r], row)
            assert data_equivalence(info["final_info"], ref[4])
            assert data_equivalence(
                {k: v for k, v in info.items() if not k.startswith(("final", "_final"))}, reset_info
            )
            skip += 1
        else:
            assert data_equivalence(obs, ref[0]) and data_equivalence(info, ref[4])


def test_disabled_needs_an_explicit_reset_of_every_sub_env():
    envs = ABNVectorEnv(3, autoreset_mode="DISABLED")
    envs.reset(seed=0)
    for _ in range(18):
        envs.step(np.zeros(3, dtype=np.int64))
    with pytest.raises(RuntimeError, match=r"autoreset_mode=DISABLED: call envs\.reset"):
        envs.step(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="must select all 3 sub-envs"):
        envs.reset(options={"reset_mask": np.array([True, False, True])})
    obs, _ = envs.reset(options={"reset_mask": np.ones(3, dtype=bool)})
    assert obs.shape == (3, 172) and envs.engine.t == 0
    envs.step(np.zeros(3, dtype=np.int64))
