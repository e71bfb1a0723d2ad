"""The report of `abn-gym perf`: Markdown tables, the project's throughput goals, and the files in ``--out``."""

from __future__ import annotations

import json
import os

from agents.app.perf import speedups
from agents.app.perf.latency import write_latency_table
from agents.app.perf.measure import PerfArgs, hardware, run
from supernets.foundation.errors import UsageError
from supernets.foundation.files import atomic_write_json, atomic_write_text


def format_report(report: dict) -> str:
    """Markdown tables of a perf report."""
    hw = report["hardware"]
    lines = [
        f"hardware: {hw['cpu']}, {hw['cores']} cores, torch {hw['torch']} with {hw['torch_threads']} threads"
        + (f", GPU {hw['gpu']}" if hw["gpu"] else ""),
        "",
        "| N | (a) raw forward ms | (b) native env episode ms | (b)/(a) | (b)/(a), one bit-width per step "
        "| native samples/s | (c) Sync samples/s | native/Sync | raw batching gain |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["rows"]:
        sync = f"{r['sync_samples_per_s']:.0f} | {r['native_vs_sync']:.1f}x" if "sync_s" in r else "- | -"
        gain = f"{r['raw_batching_gain']:.1f}x" if "raw_batching_gain" in r else "-"
        lines.append(
            f"| {r['num_envs']} | {1e3 * r['raw_s']:.2f} | {1e3 * r['native_s']:.2f} | "
            f"{r['native_vs_raw']:.2f}{_quartiles(r)} | {r.get('uniform_actions_vs_raw', float('nan')):.2f} | "
            f"{r['native_samples_per_s']:.0f} | {sync} | {gain} |"
        )
    lines += [
        "",
        "(b)/(a): time of the bare forward over time of the env episode (1 = no env cost); median of the "
        "repetitions' ratios, their quartiles in brackets. One bit-width per step: the same with every row "
        "at the same random bit-width, so no grouping; the rest of the env's cost is its observation and "
        "bookkeeping. raw batching gain: "
        "N batch-1 forwards over one batch-N forward, the most any batching can gain over N single envs.",
    ]
    s = report["single_env"]
    lines += [
        "",
        f"- (d) single env: {s['steps_per_s']:.0f} steps/s, {s['step_us']:.0f} us/step, of which "
        f"{s['bare_layer_us']:.0f} us is the layer's compute: overhead {s['overhead_us']:.0f} us/step",
    ]
    for key in ("sb3_ppo", "sb3_ppo_256"):
        if key in report:
            lines += [f"- {line}" for line in _sb3_lines(report[key])]
    lines.append(f"- supernet eval, one configuration over the 10,000 test images: {report['supernet_eval_s']:.1f} s")
    m = report["memory"]
    lines.append(
        f"- memory: N={m['num_envs']} native env {m['rss_mb_after_warmup']:.0f} MB resident after warm-up "
        f"(peak {m['rss_mb_peak']:.0f} MB); over {m['env_steps']:,} more env steps the median resident size "
        f"went from {m['rss_mb_first_quarter']:.0f} MB (first quarter) to {m['rss_mb_last_quarter']:.0f} MB "
        f"(last quarter): {m['growth_mb']:+.0f} MB"
    )
    if "memory_small_caches" in report:
        c = report["memory_small_caches"]
        lines.append(
            f"- memory with oneDNN's and PyTorch's convolution-primitive caches capped at 16 entries: peak "
            f"{c['rss_mb_peak']:.0f} MB, {c['growth_mb']:+.0f} MB between the quarters (the default caches hold up "
            "to 1,024 entries each, one per distinct group size; this run shows the growth without them)"
        )
    if "bench_wall_s" in report:
        lines.append(f"- (f) abn-gym bench with defaults: {report['bench_wall_s']:.0f} s")
    lines += speedups.format_sections(report)
    lines += ["", "| goal (CPU) | target | measured | met |", "| --- | ---: | ---: | :---: |"]
    for name, target, value, met in goals(report) + speedups.goals(report):
        lines.append(f"| {name} | {target} | {value} | {'yes' if met else 'no'} |")
    return "\n".join(lines)


def _sb3_lines(p: dict) -> list[str]:
    subproc = (
        f", SubprocVecEnv {p['subproc']:.0f} with {p['subproc_envs']} worker processes of 1 thread"
        if "subproc" in p
        else ""
    )
    lines = [
        f"(e) SB3 PPO training steps/s (`abn-gym train`'s PPO settings), {p['num_envs']} sub-envs: native adapter "
        f"{p['native']:.0f}, DummyVecEnv {p['dummy']:.0f}{subproc} (native/Dummy {p['native'] / p['dummy']:.1f}x)"
    ]
    if "us_per_sample" in p:
        u = p["us_per_sample"]
        lines.append(
            f"(e) per training sample: PPO itself {u['ppo']:.0f} us (the same training on a free env: "
            f"{p['ppo_only']:.0f} steps/s), native env {u['native_env']:.0f} us, DummyVecEnv's envs "
            f"{u['dummy_env']:.0f} us; a free env would beat DummyVecEnv by at most "
            f"{p['native_vs_dummy_bound']:.1f}x"
        )
    return lines


def _quartiles(row: dict) -> str:
    q = row.get("native_vs_raw_quartiles")
    return f" ({q[0]:.2f}-{q[1]:.2f})" if q else ""


GROWTH_TOLERANCE_MB = 50.0
"""Resident-size drift below this counts as "no growth" (allocator arenas fluctuate by about this much)."""


def goals(report: dict) -> list[tuple[str, str, str, bool]]:
    """The throughput goals of the project, each as (name, target, measured, met)."""
    r, s, m = report["ratios"], report["single_env"], report["memory"]
    out = []
    if "native_vs_raw_at_256" in r:
        v = r["native_vs_raw_at_256"]
        out.append(("(b)/(a) at N=256: env episode vs bare forward", ">= 0.70", f"{v:.3f}", v >= 0.7))
    if "native_vs_sync_at_256" in r:
        v = r["native_vs_sync_at_256"]
        out.append(("(b)/(c) at N=256: native vs SyncVectorEnv, samples/s", ">= 20x", f"{v:.1f}x", v >= 20))
    out.append(("(d) single-env overhead per step", "<= 60 us", f"{s['overhead_us']:.0f} us", s["overhead_us"] <= 60))
    for key, ratio in (("sb3_ppo", "sb3_native_vs_dummy"), ("sb3_ppo_256", "sb3_native_vs_dummy_at_256")):
        if ratio in r:
            name = f"(e) SB3 PPO: native adapter vs DummyVecEnv, {report[key]['num_envs']} sub-envs"
            out.append((name, ">= 3x", f"{r[ratio]:.1f}x", r[ratio] >= 3))
    n = m["num_envs"]
    peak = m.get("rss_mb_peak", m["rss_mb_after_warmup"])
    out.append((f"memory: N={n} resident", "<= 2048 MB", f"{peak:.0f} MB", peak <= 2048))
    out.append(
        (
            f"memory: growth over {m['env_steps']:,} env steps",
            f"< {GROWTH_TOLERANCE_MB:.0f} MB",
            f"{m['growth_mb']:+.0f} MB",
            m["growth_mb"] < GROWTH_TOLERANCE_MB,
        )
    )
    return out


def _read_report(path: str) -> dict:
    try:
        with open(path) as f:
            report = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise UsageError(
            f"--from-json {path}: cannot read a perf report there ({e}); give the perf.json "
            "that `abn-gym perf --out DIR` wrote"
        ) from e
    if not isinstance(report, dict) or not {"hardware", "rows", "ratios"} <= report.keys():
        raise UsageError(
            f"--from-json {path}: not a perf report; give the perf.json that `abn-gym perf --out DIR` wrote"
        )
    return report


def main(args: PerfArgs) -> int:
    """Run and print (a table, or one JSON object with ``json``); with ``out``, also write perf.json and perf.md."""
    if args.latency_table is not None:
        text = write_latency_table(
            args.latency_table, args.supernet, args.latency_batch, args.latency_repeats, args.device
        )
        hw = hardware()
        print(
            f"wrote {args.latency_table}: {args.supernet}, batch {args.latency_batch}, median of "
            f"{args.latency_repeats} rounds, on {hw['cpu']}, {hw['cores']} cores, torch {hw['torch']} with "
            f"{hw['torch_threads']} threads\n{text}"
        )
        return 0
    if args.from_json is not None:
        report = _read_report(args.from_json)
    else:
        report = run(args)
        report.update(speedups.measure(args))
    table = format_report(report)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        if args.from_json is None:
            atomic_write_json(os.path.join(args.out, "perf.json"), report)
        atomic_write_text(os.path.join(args.out, "perf.md"), table + "\n")
    print(json.dumps(report) if args.json else table)
    return 0
