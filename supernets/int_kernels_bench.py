"""Benchmark of :mod:`supernets.int_kernels`: float32 against int8 per layer shape, and a whole forward.

``python -m supernets.int_kernels_bench --batch 256`` prints, as markdown, one table per
architecture and bit-width (the layer shapes of ResNet-20 and mobilenetv2-tiny by default): the
float32 kernel's time, the fastest exact integer kernel's, their ratio and the tuner's choice,
on random codes at each layer's code range. It then times a frozen ResNet-20 forward
(``load_supernet("resnet20-fashionmnist")``, test images, uniform bits) with the kernels off and
in mode ``auto`` (using the choices just timed), and checks that the logits are bit-identical.
The tables' timings are held in memory only; a shape the forward needs that no table timed
is tuned as usual (and written to the tuner's cache file).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from supernets import int_kernels as ik
from supernets.bitops import conv_out
from supernets.data import normalize
from supernets.families import architecture, build_supernet
from supernets.foundation.cliargs import arg, dataclass_from_args, dataclass_parser
from supernets.quant import signed_range, unsigned_range
from supernets.registry import load_supernet, load_supernet_split

Shape = tuple[str, int, int, int, int, int, int, int, tuple[int, int]]


def layer_shapes(arch: str, bits: int) -> list[Shape]:
    """(layer names, c_in, c_out, h_in, w_in, kernel, stride, groups, code range) per distinct layer shape."""
    net = build_supernet(architecture(arch))
    stem, size = net.fixed_specs[0], net.config.input_size
    # The stem is fixed at 8 bits, its input (the image) signed.
    seen: dict[tuple, list[str]] = {
        (stem.c_in, stem.c_out, size, size, stem.kernel, stem.stride, 1, signed_range(8)): ["stem"]
    }
    size = stem.h_out
    if net.plan.stem.pool:
        size = conv_out(size, 3, 2, 1)
    for spec, conv, layer in zip(net.layer_specs, net.convs, net.plan.layers):
        act = signed_range(bits) if conv.signed_input else unsigned_range(bits)
        key = (spec.c_in, spec.c_out, size, size, spec.kernel, spec.stride, spec.groups, act)
        seen.setdefault(key, []).append(spec.name)
        size = conv_out(spec.h_out, layer.pool, layer.pool, 0) if layer.pool else spec.h_out
    return [(names[0] if len(names) == 1 else f"{names[0]} (+{len(names) - 1})", *key) for key, names in seen.items()]


def table(arch: str, batch: int, bits: int, reps: int) -> list[str]:
    """Markdown lines: one row per distinct layer shape of ``arch`` at ``bits``-bit codes."""
    rows = [
        f"**{arch}**, batch {batch}, {bits}-bit codes (u7: unsigned <= 127, u8: unsigned <= 255, s8: signed):",
        "",
        "| layer (+ same shape) | C_in>C_out HxW k/s/groups | codes | fp32 ms | int ms (kernel) | fp32/int | chosen |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    gen = torch.Generator().manual_seed(1)
    for name, c_in, c_out, h, w, k, s, g, act in layer_shapes(arch, bits):
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        weight = torch.randint(lo, hi + 1, (c_out, c_in // g, k, k), generator=gen, dtype=torch.float32)
        weight = weight.contiguous(memory_format=torch.channels_last)
        rec = ik.time_shape(batch, h, w, weight, s, k // 2, g, act, reps)
        ik.remember(ik.shape_key(1 << (batch - 1).bit_length(), h, w, weight, s, k // 2, g, act), rec)
        ints = {n: t for n, t in rec["ms"].items() if n != "fp32" and n not in rec["inexact"]}
        best = min(ints, key=ints.__getitem__) if ints else None
        fp32 = rec["ms"]["fp32"]
        int_ms = f"{ints[best]:.2f} ({best})" if best else "n/a"
        ratio = f"{fp32 / ints[best]:.2f}" if best else "n/a"
        inexact = f" (inexact: {', '.join(rec['inexact'])})" if rec["inexact"] else ""
        rows.append(
            f"| {name} | {c_in}>{c_out} {h}x{w} {k}/{s}/{g} | {ik.code_kind(act)} | {fp32:.2f} | {int_ms} | "
            f"{ratio} | {rec['choice']}{inexact} |"
        )
    return rows


def forward(batch: int, runs: int, bits: int, name: str = "resnet20-fashionmnist") -> list[str]:
    """Markdown lines: a frozen forward of ``batch`` test images at uniform ``bits``, kernels off vs auto."""
    net = load_supernet(name)
    split = load_supernet_split(name, "test")
    x = normalize(split.images[:batch], split.mean, split.std)
    config = [bits] * net.num_switchable
    times: dict[str, list[float]] = {"off": [], "auto": []}
    logits = {}
    for m in times:  # warm up: oneDNN primitives (and tuning of any shape no table timed)
        with ik.using(m):
            logits[m] = net(x, config)
    for _ in range(runs):
        for m in times:  # alternate, so drift from other load hits both alike
            with ik.using(m), torch.inference_mode():
                t = time.perf_counter()
                net(x, config)
                times[m].append(time.perf_counter() - t)
    off, on = (statistics.median(times[m]) * 1e3 for m in ("off", "auto"))
    same = torch.equal(logits["off"].view(torch.int32), logits["auto"].view(torch.int32))
    return [
        f"Whole frozen forward, `load_supernet({name!r})`, {batch} test images, uniform {bits} bits "
        f"(`net(x, [{bits}] * {net.num_switchable})`), median of {runs}: kernels off {off:.1f} ms, "
        f"on (auto) {on:.1f} ms, ratio {off / on:.2f}; logits bit-identical: {same}.",
    ]


def shape_tables(archs: list[str], batch: int, bits_list: list[int], reps: int) -> list[str]:
    """The CPU line, then one markdown table per architecture and bit-width, timed afresh (no cached choices)."""
    ik.reset_choices()
    table(archs[0], batch, bits_list[0], 2)  # warm-up, untimed: the first large buffers page-fault
    head = f"CPU: {ik.cpu_model()} ({ik.cpu_flags()}); torch {torch.__version__}; {torch.get_num_threads()} thread(s)."
    return [head] + ["\n".join(table(arch, batch, bits, reps)) for arch in archs for bits in bits_list]


@dataclass
class IntKernelBenchArgs:
    """Arguments of ``python -m supernets.int_kernels_bench``."""

    batch: int = arg(256, "rows per convolution (the env's num_envs)")
    threads: int = arg(1, "torch intra-op threads")
    bits: str = arg("4,8", "code bit-widths to tabulate, comma-separated")
    reps: int = arg(7, "timed calls per kernel and shape (median)")
    forward_runs: int = arg(7, "timed forwards per mode (median); 0 skips the whole forward")
    forward_bits: int = arg(4, "uniform bit-width of the whole forward")
    forward_net: str = arg("resnet20-fashionmnist", "shipped supernets whose forward is timed, comma-separated")
    arch: str = arg("resnet20,mobilenetv2-tiny", "architectures whose layer shapes are tabulated, comma-separated")


def _items(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def main(argv: Sequence[str] | None = None) -> None:
    """Print the per-shape tables and the whole-forward timing as markdown."""
    parser = dataclass_parser(IntKernelBenchArgs, description=(__doc__ or "").split("\n\n")[0])
    args = dataclass_from_args(IntKernelBenchArgs, parser.parse_args(argv))
    torch.set_num_threads(args.threads)
    print("\n\n".join(shape_tables(_items(args.arch), args.batch, [int(b) for b in _items(args.bits)], args.reps)))
    print()
    if args.forward_runs > 0:
        for name in _items(args.forward_net):
            print("\n".join(forward(args.batch, args.forward_runs, args.forward_bits, name)))
            print()


if __name__ == "__main__":
    main()
