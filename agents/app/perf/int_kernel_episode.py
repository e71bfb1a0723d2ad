"""The integer kernels' effect on whole env episodes: ``python -m agents.app.perf.int_kernel_episode``.

``--verify-split ID,...`` instead checks, per env id, that episodes over the whole test split and
the logits of every test image at each uniform bit-width are bit-identical with the kernels off and on.

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
from typing import Any

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
    verify_split: str | None = arg(
        None, "instead, check these env ids (comma-separated) over their whole test split, kernels off vs on"
    )


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
    choices = len(env.engine.bit_choices)
    actions = np.random.default_rng(0).integers(0, choices, (env.engine.horizon, args.num_envs))
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


def verify_split(env_id: str, num_envs: int = 250, limit: int | None = None, seed: int = 0, mode: str = "auto") -> dict:
    """Episodes over a test split, integer kernels off and in ``mode``: are they identical bit for bit?

    ``sampling="sequential"`` visits each test image once (the first ``limit``, or all); every layer
    takes a seeded random action, the same in both modes. Compared: every observation, reward,
    termination and info of every step, and the logits of every image at each uniform bit-width.
    """
    results = {}
    for kernels in ("off", mode):
        with ik.using(kernels):
            env = ABNVectorEnv(
                num_envs, **env_kwargs(env_id, split="test", sampling="sequential", autoreset_mode="SameStep")
            )
            engine = env.engine
            size = len(engine.split) if limit is None else min(limit, len(engine.split))
            episodes = -(-size // num_envs)
            rng = np.random.default_rng(seed)
            seen, images = [env.reset(seed=seed)], []
            for _ in range(episodes):
                images.append(engine.indices.copy())
                for a in rng.integers(0, len(engine.bit_choices), (engine.horizon, num_envs)):
                    seen.append(env.step(a))
            logits = []
            with torch.inference_mode():
                for b in engine.bit_choices.tolist():
                    for start in range(0, size, num_envs):
                        x = engine.split.inputs(slice(start, min(start + num_envs, size)))
                        logits.append(engine.net(x, [b] * engine.net.num_switchable).view(torch.int32).numpy())
            results[kernels] = (seen, logits, np.unique(np.concatenate(images)))
            env.close()
    (seen_off, logits_off, covered), (seen_on, logits_on, _) = results["off"], results[mode]
    same_steps = all(_equal(a, b) for a, b in zip(seen_off, seen_on)) and len(seen_off) == len(seen_on)
    same_logits = all(np.array_equal(a, b) for a, b in zip(logits_off, logits_on))
    return {
        "env": env_id,
        "images": len(covered),
        "steps": len(seen_off) - 1,
        "identical_steps": same_steps,
        "identical_logits": same_logits,
    }


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return isinstance(b, (tuple, list)) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) and a.dtype == object:
        return a.shape == b.shape and all(_equal(x, y) for x, y in zip(a, b))
    return bool(np.array_equal(a, b))


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
    torch.set_num_threads(args.threads)
    if args.verify_split:
        print("| env | test images | steps | every step identical | logits identical (each uniform bit-width) |")
        print("| --- | ---: | ---: | --- | --- |")
        for env_id in args.verify_split.split(","):
            r = verify_split(env_id)
            print(f"| {env_id} | {r['images']} | {r['steps']} | {r['identical_steps']} | {r['identical_logits']} |")
        return
    print(report(args, measure(args)))


if __name__ == "__main__":
    main()
