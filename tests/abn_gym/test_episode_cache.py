"""The engine's remembered episodes (``episode_cache``): exact, bounded, on only where it pays."""

import gymnasium as gym
import numpy as np
import pytest

from abn_gym.episode_cache import DEFAULT_EPISODE_CACHE_MB, EpisodeCache
from abn_gym.errors import EnvArgumentError
from abn_gym.vector import ABNVectorEnv

QUARTER, BUDGET = "ABN-ResNet20Quarter-v1", "ABN-ResNet20Quarter-Budget-v1"
IMAGES = 6  # sampled images: few, so episodes revisit them as training does over the whole split


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) and a.dtype == object:
        return a.shape == b.shape and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and np.array_equal(a, b)


def _actions(rng: np.random.Generator, n: int) -> np.ndarray:
    # Half the steps from three actions only, so that (image, actions) prefixes repeat.
    return rng.integers(0, 3 if rng.random() < 0.5 else 7, size=n)


def _vector_run(env_id, cache, episodes=3 * 64, n=16, seed=0, autoreset_mode="NEXT_STEP", **kwargs):
    envs = ABNVectorEnv(n, autoreset_mode=autoreset_mode, **{**_registered(env_id), **kwargs, "episode_cache": cache})
    _ = envs.engine
    for sampler in envs._samplers:
        sampler.size = IMAGES
    rng = np.random.default_rng(seed)
    out = [envs.reset(seed=seed)]
    steps = episodes // n * (envs.horizon + (autoreset_mode == "NEXT_STEP"))
    for _ in range(steps):
        out.append(envs.step(_actions(rng, n)))
    return out, envs


def _registered(env_id):
    return gym.spec(env_id).kwargs


@pytest.mark.parametrize(
    ("env_id", "decide_at", "extra"),
    [
        (QUARTER, (0,), {}),
        (QUARTER, (0, 7), {}),
        (QUARTER, (0, 7), {"autoreset_mode": "SAME_STEP"}),
        (BUDGET, (0,), {}),
        (BUDGET, (0, 7), {"budget": (0.15, 0.5)}),
    ],
)
def test_vector_env_with_cache_equals_without_bit_for_bit(env_id, decide_at, extra):
    plain, _ = _vector_run(env_id, 0, decide_at=decide_at, **extra)
    cached, envs = _vector_run(env_id, 8, decide_at=decide_at, **extra)
    assert len(plain) == len(cached)
    for k, (a, b) in enumerate(zip(plain, cached)):
        assert _same(a, b), k  # obs, rewards, terminated, truncated and every info key
    cache = envs.engine.episode_cache
    assert cache is not None and cache.hits > cache.misses > 0  # it hit, and what it missed it computed
    if env_id == BUDGET:  # the budget lowered actions: the key holds the applied ones
        infos = [step[-1].get("final_info", step[-1]) for step in plain[1:]]
        assert any(info["clipped"].any() for info in infos if "clipped" in info)


@pytest.mark.parametrize(("env_id", "decide_at"), [(QUARTER, (0,)), (BUDGET, (0, 7))])
def test_single_env_with_cache_equals_without_bit_for_bit(env_id, decide_at):
    def run(cache):
        env = gym.make(env_id, decide_at=decide_at, episode_cache=cache)
        _ = env.unwrapped.engine
        env.unwrapped._sampler.size = IMAGES
        rng = np.random.default_rng(1)
        out = [env.reset(seed=3)]
        for _ in range(64):
            done = False
            while not done:
                step = env.step(int(rng.integers(0, 7)))
                out.append(step)
                done = step[2]
            out.append(env.reset())
        return out, env.unwrapped.engine.episode_cache

    plain, _ = run(0)
    cached, cache = run(1)
    assert all(_same(a, b) for a, b in zip(plain, cached)) and len(plain) == len(cached)
    assert cache.hits > cache.misses


def test_snapshots_and_lookahead_with_cache_equal_without():
    # Mid-episode after hits the cache holds no activations for some rows: look-ahead and
    # snapshots recompute them from the stem, exactly.
    def run(cache):
        out, envs = _vector_run(QUARTER, cache, episodes=64, decide_at=(0, 7, 13))
        rng = np.random.default_rng(5)
        out.append(envs.step(_actions(rng, 16)))  # layers 0-6 (the run ended on an autoreset)
        assert envs.engine.t == 7
        if cache:  # some rows hit: their activations are not held, and must be recomputed
            assert len(envs.engine._cached.live) < 16
        out.append(envs.lookahead(np.full(11, 4)))
        snapshot = envs.get_state()
        actions = [_actions(rng, 16) for _ in range(2)]
        out += [envs.step(a) for a in actions]
        envs.set_state(snapshot)
        out += [envs.step(a) for a in actions]
        assert _same(out[-1], out[-3])  # the rewound episodes ran again as before
        return out

    plain, cached = run(0), run(8)
    assert all(_same(a, b) for a, b in zip(plain, cached)) and len(plain) == len(cached)


def test_the_bound_evicts_and_stays_exact():
    plain, _ = _vector_run(QUARTER, 0, episodes=64, decide_at=(0, 7))
    cached, envs = _vector_run(QUARTER, 0.02, episodes=64, decide_at=(0, 7))
    assert all(_same(a, b) for a, b in zip(plain, cached))
    cache = envs.engine.episode_cache
    assert cache.evictions > 0 and cache.nbytes <= cache.limit_bytes == int(0.02 * 2**20)


def test_least_recently_used_goes_first():
    cache = EpisodeCache(1)
    row = np.zeros(2**16 // 4, dtype=np.float32)  # 64 KiB: 15 fit under 1 MB with their overhead
    cache.insert(list(range(15)), np.stack([row] * 15))
    assert cache.lookup([0])[0] is not None  # key 0 is now the most recent
    cache.insert([15], row[None])
    assert len(cache) == 15 and cache.evictions == 1 and cache.lookup([1]) == [None]
    assert cache.lookup([0])[0] is not None


def test_auto_is_on_only_for_a_few_decisions_and_random_sampling():
    def size(**kwargs):
        cache = ABNVectorEnv(2, **{**_registered(QUARTER), **kwargs}).engine.episode_cache
        return None if cache is None else cache.limit_bytes / 2**20

    assert size() is None  # deciding at every layer: the default path, unchanged
    assert size(decide_at=(0,)) == size(decide_at=(0, 7, 13)) == DEFAULT_EPISODE_CACHE_MB
    assert size(decide_at=(0, 5, 9, 13)) is None
    assert size(decide_at=(0,), sampling="sequential") is None  # each image once: nothing to remember
    assert size(decide_at=(0,), episode_cache=0) is None
    assert size(episode_cache=64) == 64  # asked for, on at every layer too


@pytest.mark.parametrize("value", [True, -1, float("nan"), "on", None])
def test_invalid_episode_cache_is_refused_with_the_fix(value):
    with pytest.raises(EnvArgumentError, match=r"episode_cache=.*expected 'auto'"):
        gym.make(QUARTER, episode_cache=value)
