"""The integer kernels' effect on whole env episodes: ``python -m agents.app.perf.int_kernel_episode``.

Times, in one run and alternating so that other load hits both alike, an ``ABNVectorEnv`` episode of
N sub-envs (every layer, seeded random actions) with the integer kernels off ("today") and on
(``auto``), and today's bare frozen fp32 forward of the same N images at uniform 4 bits. It checks
that both episodes give the same observations and rewards bit for bit, and prints a markdown table.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from abn_gym.registration import DEFAULT_ENV_ID, env_kwargs
from abn_gym.vector import ABNVectorEnv
from supernets import int_kernels as ik
from supernets.foundation.cliargs import arg, dataclass_from_args, dataclass_parser


@dataclass
class EpisodeArgs:
    """Arguments of ``python -m agents.app.perf.int_kernel_episode``."""

    env: str = arg(DEFAULT_ENV_ID, "env id whose episodes are timed")
    num_envs: int = arg(256, "sub-envs: episodes run together")
    runs: int = arg(7, "timed episodes per mode (median)")
    threads: int = arg(1, "torch intra-op threads")


def _episode(env: ABNVectorEnv, actions: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    t = time.perf_counter()
    obs, _ = env.reset(seed=0)
    seen, rewards = [obs], []
    for a in actions:
        obs, r, _, _, _ = env.step(a)
        seen.append(obs)
        rewards.append(r)
    return time.perf_counter() - t, np.stack(seen), np.stack(rewards)


def measure(args: EpisodeArgs) -> dict:
    """Median seconds of an episode (kernels off, auto) and of the bare fp32 forward, and bit-identity."""
    torch.set_num_threads(args.threads)
    env = ABNVectorEnv(args.num_envs, **env_kwargs(args.env, split="test", autoreset_mode="SameStep"))
    net = env.engine.net
    layers = env.single_action_space.n
    actions = np.random.default_rng(0).integers(0, layers, (env.engine.horizon, args.num_envs))
    x = env.engine.split.inputs(slice(0, args.num_envs))
    config = [4] * net.num_switchable
    times: dict[str, list[float]] = {"off": [], "auto": [], "forward": []}
    results = {}
    for m in ("off", "auto"):  # warm-up: oneDNN primitives, and the tuner's timing of new shapes
        with ik.using(m):
            results[m] = _episode(env, actions)[1:]
    with ik.using("off"):
        net(x, config)
    for _ in range(args.runs):
        for m in ("off", "auto"):
            with ik.using(m):
                times[m].append(_episode(env, actions)[0])
        with ik.using("off"), torch.inference_mode():
            t = time.perf_counter()
            net(x, config)
            times["forward"].append(time.perf_counter() - t)
    same = all(np.array_equal(a, b) for a, b in zip(results["off"], results["auto"]))
    return {**{k: statistics.median(v) for k, v in times.items()}, "identical": same}


def report(args: EpisodeArgs, result: dict) -> str:
    """The markdown table of :func:`measure`."""
    off, on, fwd = result["off"] * 1e3, result["auto"] * 1e3, result["forward"] * 1e3
    return "\n".join(
        [
            f"{args.env}, N={args.num_envs}, test images, seeded random actions; CPU: {ik.cpu_model()}; "
            f"torch {torch.__version__}; {args.threads} thread(s); median of {args.runs}, alternating.",
            "",
            "| | ms | episode (kernels off) / this |",
            "| --- | ---: | ---: |",
            f"| env episode, integer kernels off (today) | {off:.1f} | 1.00 |",
            f"| env episode, integer kernels on (`auto`) | {on:.1f} | {off / on:.2f} |",
            f"| bare frozen fp32 forward, uniform 4 bits (today) | {fwd:.1f} | {off / fwd:.2f} |",
            "",
            f"Episode with the kernels on against today's bare fp32 forward: {fwd / on:.2f}x faster. Observations "
            f"and rewards bit-identical with the kernels on and off: {result['identical']}.",
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Print the markdown table."""
    parser = dataclass_parser(EpisodeArgs, description=(__doc__ or "").split("\n\n")[0])
    args = dataclass_from_args(EpisodeArgs, parser.parse_args(argv))
    print(report(args, measure(args)))


if __name__ == "__main__":
    main()
