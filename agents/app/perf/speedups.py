"""The training speed-ups of `abn-gym perf`: (g) the episode cache and (h) the exact integer kernels.

(g) trains the shipped steep recipe and the same recipe on ``ABN-ResNet-v0`` without and with
the episode cache (:mod:`agents.app.perf.episode_cache`); (h) times every layer shape of ResNet-20
and mobilenetv2-tiny in fp32 and with the fastest exact integer kernel
(:mod:`supernets.int_kernels_bench`), then an env episode at N=256 with the kernels off and on
against today's bare fp32 forward (:mod:`agents.app.perf.int_kernel_episode`). Both run at one
torch thread, as training does in parallel jobs; the thread count is restored afterwards.
"""

from __future__ import annotations

from typing import Any

import torch

from agents.app.perf import episode_cache, int_kernel_episode
from agents.app.perf.measure import PerfArgs, hardware
from supernets import int_kernels_bench

CACHE_GOAL = 3.0
"""Training images/s with the cache over without it, once warm (the last quarter of the run)."""
EPISODE_GOAL = 1.3
"""An env episode at N=256 with the integer kernels over one without them."""
MOONSHOT_GOAL = 1.5
"""An env episode at N=256 with the integer kernels over today's bare fp32 forward."""
SHAPE_ARCHS = ("resnet20", "mobilenetv2-tiny")
SHAPE_BITS = (4, 8)


def measure(args: PerfArgs) -> dict[str, Any]:
    """The sections ``args`` asks for (none by default), measured at one torch thread."""
    out: dict[str, Any] = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if args.int_kernels:
            episode_args = int_kernel_episode.EpisodeArgs(num_envs=256, runs=3 if args.quick else 7, threads=1)
            out["int_kernels"] = {
                "hardware": hardware(),
                "tables": int_kernels_bench.shape_tables(
                    list(SHAPE_ARCHS), episode_args.num_envs, list(SHAPE_BITS), 3 if args.quick else 7
                ),
                "num_envs": episode_args.num_envs,
                "runs": episode_args.runs,
                "episode": int_kernel_episode.measure(episode_args),
            }
        if args.cache_timesteps:
            runs = episode_cache.measure(list(episode_cache.ENVS), args.cache_timesteps, args.cache_mb)
            out["episode_cache"] = {"hardware": hardware(), "runs": runs}
    finally:
        torch.set_num_threads(threads)
    return out


def format_sections(report: dict[str, Any]) -> list[str]:
    """Markdown of the sections present in ``report`` (an empty list when there are none)."""
    lines: list[str] = []
    if "episode_cache" in report:
        c = report["episode_cache"]
        lines += ["", "(g) training with the episode cache, " + episode_cache.report(c["runs"], c["hardware"])]
    if "int_kernels" in report:
        k = report["int_kernels"]
        e = k["episode"]
        off, on, fwd = (1e3 * e[m] for m in ("off", "auto", "forward"))
        lines += [
            "",
            "(h) exact integer kernels per layer shape (batch 256; fp32 and the fastest exact integer kernel, "
            "median; `chosen` is what the tuner picks). " + k["tables"][0],
            "",
            "\n\n".join(k["tables"][1:]),
            "",
            f"(h) env episode at N={k['num_envs']} on ABN-ResNet-v0 (test images, seeded random actions, median of "
            f"{k['runs']}, alternating): integer kernels off (today) {off:.1f} ms, on {on:.1f} ms "
            f"({off / on:.2f}x); today's bare fp32 forward at uniform 4 bits {fwd:.1f} ms (the episode with "
            f"the kernels on is {fwd / on:.2f}x faster); observations and rewards bit-identical: {e['identical']}",
        ]
    return lines


def goals(report: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """The speed-up goals, each as (name, target, measured, met)."""
    out = []
    if "episode_cache" in report:
        for env_id, ratio in episode_cache.speed_ups(report["episode_cache"]["runs"]).items():
            name = f"(g) training images/s with the cache, last quarter, {env_id}"
            out.append((name, f">= {CACHE_GOAL:g}x", f"{ratio:.2f}x", ratio >= CACHE_GOAL))
    if "int_kernels" in report:
        e = report["int_kernels"]["episode"]
        episode, moonshot = e["off"] / e["auto"], e["forward"] / e["auto"]
        out.append(
            (
                "(h) env episode at N=256: integer kernels vs today",
                f">= {EPISODE_GOAL:g}x",
                f"{episode:.2f}x",
                episode >= EPISODE_GOAL,
            )
        )
        out.append(
            (
                "(h) moonshot: that episode vs today's bare fp32 forward",
                f">= {MOONSHOT_GOAL:g}x",
                f"{moonshot:.2f}x",
                moonshot >= MOONSHOT_GOAL,
            )
        )
        out.append(("(h) integer kernels bit-identical", "yes", "yes" if e["identical"] else "no", e["identical"]))
    return out
