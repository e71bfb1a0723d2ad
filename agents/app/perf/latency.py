"""A per-layer latency table measured on this machine: ``abn-gym perf --latency-table PATH``.

Each switchable layer of the frozen supernet runs at each bit-width on its own input (the previous
layers at 8 bits, on a batch of val images), and the fixed layers (stem conv, classifier) run at 8;
the median over rounds that each time every layer and width once, in milliseconds per batch, is
written as a cost table (:func:`supernets.costs.write_cost_file`, unit ``ms``) that
``cost_model=PATH`` loads. A step is timed as the env runs it (``ResNetSupernet.step``: the
quantised conv with its ReLU and, at a block's end, the shortcut add), so a layer tied to a
switchable one (ResNet's "B" downsample) is inside its layer's time and costs 0 on its own row.

Today's kernels are float kernels with fake quantisation: a layer's weights and activations are
rounded to the bit-width but multiplied in float32, so the time does not fall with the bits. The
summary says so with numbers: what uniform-b costs against all-8, beside what BitOps says.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch

from supernets.bitops import REFERENCE_BITS
from supernets.costs import cost_table, layer_names, write_cost_file
from supernets.foundation.errors import UsageError
from supernets.registry import load_supernet, load_supernet_split


def _now() -> float:
    # A CUDA kernel runs asynchronously: drain its queue before reading the clock.
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter()


@torch.inference_mode()
def measure_latencies(
    supernet: str, batch: int = 256, repeats: int = 9, device: str = "cpu"
) -> dict[str, dict[int, float]]:
    """{layer name: {bits: median ms per batch}}: every switchable layer at every trained width, fixed at 8.

    Args:
        supernet: a shipped supernet's name or a published card's path.
        batch: images per forward pass (the first ``batch`` of the val split).
        repeats: timed rounds over every layer and width (after one warm-up round); the median is kept.
        device: "cpu" or "cuda".
    """
    if batch < 1 or repeats < 1:
        raise UsageError(f"--latency-batch={batch} and --latency-repeats={repeats} must both be at least 1")
    net = load_supernet(supernet, device=device)
    split = load_supernet_split(supernet, "val")
    x = split.inputs(torch.arange(min(batch, len(split))), device)
    names = layer_names(net)
    # Every timed call: (layer, bits, the call). Layer t runs on its input, the earlier layers at 8 bits.
    calls: list[tuple[str, int, Callable[[], object]]] = [("stem", REFERENCE_BITS, partial(net.stem_forward, x))]
    state = net.stem_forward(x)
    for t, name in enumerate(names["switchable"]):
        calls += [(name, b, partial(net.step, state, t, b)) for b in net.bit_choices]
        state = net.step(state, t, REFERENCE_BITS)
    calls.append(("fc", REFERENCE_BITS, partial(net.head, state)))
    for _, _, call in calls:  # warm-up: oneDNN builds its primitive for a new shape on first use
        call()
    # Rounds over every call, so that a change in the machine's load reaches every width alike.
    times: dict[tuple[str, int], list[float]] = {(name, b): [] for name, b, _ in calls}
    for _ in range(repeats):
        for name, b, call in calls:
            t0 = _now()
            call()
            times[name, b].append(1e3 * (_now() - t0))
    costs: dict[str, dict[int, float]] = {}
    for (name, b), ms in times.items():
        costs.setdefault(name, {})[b] = float(np.median(ms))
    for name in names["tied"]:  # timed inside the switchable layer they follow
        costs[name] = {b: 0.0 for b in net.bit_choices}
    return costs


def summary(supernet: str, path: str | Path) -> str:
    """Markdown: uniform-b's measured time against all-8's, beside its BitOps fraction, from the written table."""
    net = load_supernet(supernet)
    measured = cost_table(net, net.bit_choices, str(path))
    bitops = cost_table(net, net.bit_choices)
    bits = list(net.bit_choices)
    ms = [measured.total([b] * net.num_switchable) for b in bits]
    lines = [
        f"| uniform bits | {' | '.join(map(str, bits))} |",
        "| --- |" + " --- |" * len(bits),
        "| measured ms per batch | " + " | ".join(f"{v:.2f}" for v in ms) + " |",
        "| measured / all-8 | " + " | ".join(f"{v / measured.all8:.3f}" for v in ms) + " |",
        "| BitOps / all-8 | " + " | ".join(f"{bitops.fraction([b] * net.num_switchable):.3f}" for b in bits) + " |",
    ]
    return "\n".join(lines)


def write_latency_table(
    path: str | Path, supernet: str, batch: int = 256, repeats: int = 9, device: str = "cpu"
) -> str:
    """Measure (:func:`measure_latencies`), write the CSV cost table to ``path``, and return the summary."""
    if Path(path).suffix.lower() != ".csv":
        raise UsageError(f"--latency-table {path}: the table is written as CSV; give a path ending in .csv")
    costs = measure_latencies(supernet, batch, repeats, device)
    write_cost_file(path, costs, "ms")
    return summary(supernet, path)
