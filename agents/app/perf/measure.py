"""Throughput of the environments against the network they wrap: the measurements of `abn-gym perf`.

Everything is measured in one run on one machine, warm-up excluded, median of repetitions:

(a) raw: ``net(x, bits)`` at uniform 4-bit, batch N - the physical limit;
(b) native vector env: reset + 18 steps with random bit-widths, N in {1, 16, 256, 1024};
(c) gymnasium's SyncVectorEnv over single envs, same actions;
(d) single env: steps per second, and Python overhead per step beyond the layer's compute;
(e) SB3 PPO training steps per second: native adapter vs DummyVecEnv vs SubprocVecEnv;
(f) optionally, the wall time of ``abn-gym bench`` with its defaults.

Besides these, the time of ``supernet eval`` for one configuration over the test split, and memory.
:mod:`agents.app.perf.report` turns the result into the Markdown report and the goals table.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

import abn_gym  # noqa: F401
from abn_gym.episode_cache import DEFAULT_EPISODE_CACHE_MB
from abn_gym.registration import DEFAULT_ENV_ID
from abn_gym.sb3 import SB3VecEnv
from agents.app.train_args import AgentTrainArgs
from supernets.data import load_split
from supernets.evaluate import accuracy
from supernets.foundation.cliargs import arg
from supernets.registry import load_supernet

ENV_ID = DEFAULT_ENV_ID


@dataclass
class PerfArgs:
    """Options of ``abn-gym perf``."""

    json: bool = arg(False, "print exactly one JSON object on stdout", action="store_true")
    quick: bool = arg(False, "fewer sizes and repetitions (a smoke run)", action="store_true")
    device: str = arg("cpu", "cpu or cuda")
    include_bench: bool = arg(False, "also time `abn-gym bench` with its defaults (f)", action="store_true")
    cache_timesteps: int = arg(
        0, "also train the recipe without and with the episode cache for this many timesteps per run (g); 0 skips"
    )
    cache_mb: float = arg(DEFAULT_EPISODE_CACHE_MB, "the episode cache's size in MB in the cached runs of (g)")
    from_json: str | None = arg(
        None, "instead of measuring, report a perf.json written before (with --out, rewrite only its perf.md)"
    )
    int_kernels: bool = arg(
        False, "also time the integer kernels per layer shape and an env episode with them (h)", action="store_true"
    )
    out: str | None = arg(None, "also write perf.json and perf.md into this directory")
    latency_table: str | None = arg(
        None, "instead, time every layer at every bit-width and write a cost table (CSV, ms) to this .csv path"
    )
    supernet: str = arg("resnet20-quarter-fashionmnist", "supernet whose layers --latency-table times: name or card")
    latency_batch: int = arg(256, "images per timed forward pass of --latency-table")
    latency_repeats: int = arg(9, "timed rounds over every layer and bit-width of --latency-table (median kept)")


def _median_time(fn: Callable[[], object], reps: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    return float(np.median([_timed(fn) for _ in range(reps)]))


def _timed(fn: Callable[[], object]) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def _progress(msg: str) -> None:
    # Progress goes to stderr so that --json output stays one clean object on stdout.
    print(f"[perf {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def hardware() -> dict:
    """What the numbers were measured on."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _episode_runner(envs, actions: np.ndarray) -> Callable[[], None]:
    def run() -> None:
        envs.reset()  # seeded once before timing, as a training loop would
        for a in actions:
            envs.step(a)

    return run


def raw_vs_native(n: int, reps: int, device: str) -> dict:
    """(a) ``net(x, bits)`` at uniform 4-bit and (b) the native vector env's episode, interleaved.

    Each repetition times one of each back to back, so both see the same machine load; the
    ratio is the median of the per-repetition ratios. A third episode, with one random
    bit-width per step shared by every row, tells what grouping rows by bit-width costs from
    what the env costs anyway (observation statistics, bookkeeping).
    """
    net = load_supernet("resnet20-fashionmnist", device=device)
    x = torch.randn(n, 1, 28, 28, device=device)
    bits = [4] * net.num_switchable
    envs = gym.make_vec(ENV_ID, num_envs=n, vectorization_mode="vector_entry_point", device=device)
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 7, (18, n))
    episode = _episode_runner(envs, actions)
    uniform_episode = _episode_runner(envs, np.repeat(rng.integers(0, 7, (18, 1)), n, axis=1))
    for _ in range(3):  # warm-up: oneDNN builds a primitive for each new group size on first use
        episode(), uniform_episode(), net(x, bits)
    raw, native, uniform = [], [], []
    for _ in range(reps):
        raw.append(_timed(lambda: net(x, bits)))
        native.append(_timed(episode))
        uniform.append(_timed(uniform_episode))
    envs.close()
    return {
        "raw_s": float(np.median(raw)),
        "native_s": float(np.median(native)),
        "native_vs_raw": float(np.median(np.array(raw) / np.array(native))),
        # The spread of the per-repetition ratios: on a shared machine it is wide.
        "native_vs_raw_quartiles": [float(q) for q in np.percentile(np.array(raw) / np.array(native), [25, 75])],
        "uniform_actions_vs_raw": float(np.median(np.array(raw) / np.array(uniform))),
    }


def sync_vector(n: int, reps: int, device: str) -> float:
    """(c) the same episode through gymnasium's SyncVectorEnv over single envs."""
    envs = gym.vector.SyncVectorEnv([lambda: gym.make(ENV_ID, device=device) for _ in range(n)])
    envs.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 7, (18, n))
    t = _median_time(_episode_runner(envs, actions), reps)
    envs.close()
    return t


def single_env_overhead(episodes: int, device: str, rounds: int = 9) -> dict:
    """(d) single-env step time and its overhead beyond the bare layer compute at batch 1."""
    env = gym.make(ENV_ID, device=device).unwrapped
    net = env.engine.net
    actions = np.random.default_rng(0).integers(0, 7, (episodes, 18))
    bits = np.array(env.bit_choices)[actions]

    env.reset(seed=0)

    def run_env() -> None:
        for ep in range(episodes):
            env.reset()
            for a in actions[ep]:
                env.step(int(a))

    x = env.engine.split.inputs(slice(0, 1), device)

    def run_bare() -> None:
        with torch.inference_mode():
            for ep in range(episodes):
                state = net.stem_forward(x)
                for i, b in enumerate(bits[ep]):
                    state = net.step(state, i, int(b))
                net.head(state)

    # Interleave the two: each pair sees the same machine load, and the median of the paired
    # differences resists the slow drifts of a shared machine.
    run_env(), run_bare()  # warm-up
    pairs = np.array([(_timed(run_env), _timed(run_bare)) for _ in range(rounds)])
    t_env, t_bare = np.median(pairs, axis=0)
    steps = episodes * 18
    return {
        "steps_per_s": steps / t_env,
        "step_us": 1e6 * t_env / steps,
        "bare_layer_us": 1e6 * t_bare / steps,
        "overhead_us": 1e6 * float(np.median(pairs[:, 0] - pairs[:, 1])) / steps,
    }


def _single_env_one_thread() -> gym.Env:
    # For SubprocVecEnv workers: one process per core, one torch thread each (more only thrash).
    torch.set_num_threads(1)
    return gym.make(ENV_ID)


def sb3_ppo(n_envs: int, subproc_envs: int, rollouts: int) -> dict:
    """(e) PPO training steps per second (``abn-gym train`` defaults): native adapter vs DummyVecEnv vs SubprocVecEnv.

    Native and DummyVecEnv run ``n_envs`` sub-envs; SubprocVecEnv runs one process per sub-env,
    so it gets ``subproc_envs`` (more processes than cores only thrash; 0 skips it).
    """
    defaults = AgentTrainArgs()

    def rate(env) -> float:
        n = env.num_envs
        model = PPO(
            "MlpPolicy",
            env,
            n_steps=defaults.n_steps,
            batch_size=min(defaults.batch_size, defaults.n_steps * n),
            n_epochs=defaults.n_epochs,
            learning_rate=defaults.learning_rate,
            seed=0,
            device="cpu",
        )
        model.learn(defaults.n_steps * n)  # warm-up: one rollout and one update
        steps = rollouts * defaults.n_steps * n
        t0 = time.perf_counter()
        model.learn(steps, reset_num_timesteps=False)
        dt = time.perf_counter() - t0
        env.close()
        return steps / dt

    native = SB3VecEnv(ENV_ID, num_envs=n_envs, seed=0)
    out = {"native": rate(native)}
    # PPO's own cost per sample (policy forwards, rollout buffer, updates): the same training on
    # an env that costs nothing. What is left of each rate's time per sample is its env's.
    out["ppo_only"] = rate(_FreeVecEnv(native.num_envs, native.observation_space, native.action_space, 18))
    out["dummy"] = rate(DummyVecEnv([lambda: gym.make(ENV_ID) for _ in range(n_envs)]))
    # Spawned, not forked: a fork after OpenMP has started can deadlock the children.
    if subproc_envs:
        spawned = [_single_env_one_thread for _ in range(subproc_envs)]
        out["subproc"] = rate(SubprocVecEnv(spawned, start_method="spawn"))
    out.update(num_envs=n_envs, subproc_envs=subproc_envs, n_steps=defaults.n_steps, n_epochs=defaults.n_epochs)
    ppo_us = 1e6 / out["ppo_only"]
    out["us_per_sample"] = {
        "ppo": ppo_us,
        "native_env": 1e6 / out["native"] - ppo_us,
        "dummy_env": 1e6 / out["dummy"] - ppo_us,
    }
    out["native_vs_dummy"] = out["native"] / out["dummy"]
    # Even an env that cost nothing would beat DummyVecEnv by at most this much.
    out["native_vs_dummy_bound"] = out["ppo_only"] / out["dummy"]
    return out


class _FreeVecEnv(VecEnv):
    """A VecEnv with the given spaces and episode length whose steps cost nothing (zero observations)."""

    render_mode = None

    def __init__(self, num_envs: int, observation_space, action_space, episode_length: int) -> None:
        super().__init__(num_envs, observation_space, action_space)
        self.episode_length, self.t = episode_length, 0
        self.obs = np.zeros((num_envs, *observation_space.shape), dtype=observation_space.dtype)

    def reset(self):
        self.t = 0
        return self.obs.copy()

    def step_async(self, actions) -> None:
        """Nothing to start: the actions change nothing."""

    def step_wait(self):
        self.t += 1
        done = self.t % self.episode_length == 0
        infos = [
            {"terminal_observation": self.obs[i], "TimeLimit.truncated": False} if done else {}
            for i in range(self.num_envs)
        ]
        return self.obs.copy(), np.zeros(self.num_envs, np.float32), np.full(self.num_envs, done), infos

    def close(self) -> None:
        """Nothing to release."""

    def get_attr(self, attr_name, indices=None):
        return [getattr(self, attr_name)] * self.num_envs

    def set_attr(self, attr_name, value, indices=None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name, *args, indices=None, **kwargs):
        return [getattr(self, method_name)(*args, **kwargs)] * self.num_envs

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False] * self.num_envs


def memory(n: int, vector_steps: int, device: str) -> dict:
    """Resident memory of an N-env native vector env, and its growth over many steps.

    The resident size of a process that allocates and frees large tensors fluctuates by a
    few hundred MB (allocator arenas), so growth is the median of the last quarter of the
    samples against the median of the first quarter, not one reading against another.
    """
    gc.collect()
    before = _rss_mb()
    envs = gym.make_vec(ENV_ID, num_envs=n, vectorization_mode="vector_entry_point", device=device)
    rng = np.random.default_rng(0)
    envs.reset(seed=0)
    for _ in range(38):
        envs.step(rng.integers(0, 7, n))
    samples = []
    every = max(1, vector_steps // 40)
    for k in range(vector_steps):
        envs.step(rng.integers(0, 7, n))
        if k % every == 0:
            samples.append(_rss_mb())
    quarter = max(1, len(samples) // 4)
    first, last = float(np.median(samples[:quarter])), float(np.median(samples[-quarter:]))
    return {
        "num_envs": n,
        "env_steps": vector_steps * n,
        "rss_mb_after_warmup": samples[0],
        "rss_mb_peak": max(samples),
        "rss_mb_first_quarter": first,
        "rss_mb_last_quarter": last,
        "growth_mb": last - first,
        "process_rss_before_mb": before,
    }


SMALL_PRIMITIVE_CACHES = {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "16", "LRU_CACHE_CAPACITY": "16"}
"""Environment that caps oneDNN's and PyTorch's convolution-primitive caches (default 1024 entries each)."""


def memory_in_fresh_process(n: int, vector_steps: int, device: str, env: dict[str, str] | None = None) -> dict:
    """:func:`memory` in a new interpreter (plus environment variables ``env``): the env's resident size alone."""
    call = f"memory({n}, {vector_steps}, {device!r})"
    code = f"import json; from agents.app.perf.measure import memory; print(json.dumps({call}))"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def supernet_eval_time(device: str) -> float:
    """Seconds to evaluate one configuration (uniform-4) over the whole test split, data loading excluded."""
    net = load_supernet("resnet20-fashionmnist", device=device)
    split = load_split("test")
    return _median_time(lambda: accuracy(net, split, [4] * net.num_switchable, device=device), 3)


def bench_wall_time() -> float:
    """(f) wall seconds of `abn-gym bench` with its defaults, in a fresh process."""
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "agents.app.cli", "bench", "--no-progress", "--out", "results/perf-bench"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def run(args: PerfArgs) -> dict:
    """Measure everything; returns the JSON report."""
    reps = 3 if args.quick else 9
    sizes = (1, 16, 256) if args.quick else (1, 16, 256, 1024)
    report: dict = {"hardware": hardware(), "quick": args.quick, "rows": [], "ratios": {}}
    for n in sizes:
        _progress(f"(a)/(b) raw forward vs native vector env, N={n}")
        row = {"num_envs": n, **raw_vs_native(n, reps, args.device)}
        row["native_samples_per_s"] = 18 * n / row["native_s"]
        if n <= 256:
            _progress(f"(c) SyncVectorEnv over {n} single envs")
            t_sync = sync_vector(n, 1 if n == 256 else max(1, reps // 2), args.device)
            row.update(sync_s=t_sync, sync_samples_per_s=18 * n / t_sync, native_vs_sync=t_sync / row["native_s"])
        report["rows"].append(row)
    by_n = {r["num_envs"]: r for r in report["rows"]}
    for r in report["rows"]:
        # What batching alone buys the bare network: N batch-1 forwards against one batch-N
        # forward. A vector env over single envs can be beaten by at most about this much.
        r["raw_batching_gain"] = r["num_envs"] * by_n[1]["raw_s"] / r["raw_s"]
    report["ratios"]["native_vs_raw_at_256"] = by_n[256]["native_vs_raw"]
    report["ratios"]["native_vs_sync_at_256"] = by_n[256]["native_vs_sync"]
    _progress("(d) single env overhead")
    report["single_env"] = single_env_overhead(30 if args.quick else 100, args.device)
    _progress("(e) SB3 PPO: native adapter, DummyVecEnv, SubprocVecEnv")
    report["sb3_ppo"] = sb3_ppo(16 if args.quick else 64, os.cpu_count() or 2, 1 if args.quick else 2)
    report["ratios"]["sb3_native_vs_dummy"] = report["sb3_ppo"]["native_vs_dummy"]
    if not args.quick:
        # The same at the N of the vector-env goals: batching pays more with more sub-envs.
        _progress("(e) again with 256 sub-envs: native adapter, DummyVecEnv")
        report["sb3_ppo_256"] = sb3_ppo(256, 0, 2)
        report["ratios"]["sb3_native_vs_dummy_at_256"] = report["sb3_ppo_256"]["native_vs_dummy"]
    _progress("supernet eval, one configuration over the test split")
    report["supernet_eval_s"] = supernet_eval_time(args.device)
    n_mem, vector_steps = (256, 50) if args.quick else (1024, 977)  # 977 x 1024 = 1.0 M env steps
    _progress(f"memory: N={n_mem}, {vector_steps * n_mem:,} env steps, in a fresh process")
    report["memory"] = memory_in_fresh_process(n_mem, vector_steps, args.device)
    # Each distinct group size is a new convolution shape, and oneDNN caches a primitive per
    # shape: the same run with capped caches tells that bounded cache from a leak.
    _progress("memory again, with the convolution-primitive caches capped at 16 entries")
    report["memory_small_caches"] = memory_in_fresh_process(n_mem, vector_steps, args.device, SMALL_PRIMITIVE_CACHES)
    if args.include_bench:
        _progress("(f) abn-gym bench with its defaults")
        report["bench_wall_s"] = bench_wall_time()
    return report
