"""HAQ-like static mixed precision: one layer-wise configuration for all inputs, found on `val`.

Search from all-8: repeatedly lower (by one step of ``bit_choices``) the layer whose reduction
costs the least val accuracy per BitOps saved, and record the first configuration that fits
each BitOps target. Activations entering every layer are cached for the current
configuration, so a candidate only reruns the layers from the one it changes.

This module finds the configurations of the ``static-<b>`` agents: a saved result that matches the
supernet and action set, else a search now. ``abn-gym static-search`` (:mod:`agents.app.static_search`)
runs and saves a search.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm import tqdm

from supernets.data import Split
from supernets.foundation.errors import UsageError
from supernets.registry import get_entry, load_supernet, load_supernet_split, supernet_name
from supernets.resnet import ResNetSupernet, State

POLICY_DIR = Path(__file__).resolve().parent.parent / "policies"
"""The trained agents and static fronts shipped with the package (``agents/policies``)."""
DEFAULT_TARGETS = (3, 4, 5, 6, 7)
"""The ``static-<b>`` rows: static configurations as cheap as uniform-b, for each b here."""
DEFAULT_LIMIT = 2000


@torch.inference_mode()
def _prefix_states(net: ResNetSupernet, stem: State, config: Sequence[int], start: int, states: list[State]) -> None:
    state = states[start] if start > 0 else stem
    for i in range(start, net.num_switchable):
        if i > 0:
            states[i] = state
        state = net.step(state, i, config[i])
    states[net.num_switchable] = state


@torch.inference_mode()
def _accuracy_from(
    net: ResNetSupernet, state: State, config: Sequence[int], start: int, labels: torch.Tensor, chunk: int = 256
) -> float:
    correct = 0
    n = labels.shape[0]
    for s in range(0, n, chunk):
        sub = state.select(slice(s, s + chunk))
        for i in range(start, net.num_switchable):
            sub = net.step(sub, i, config[i])
        correct += int((net.head(sub).argmax(1) == labels[s : s + chunk]).sum())
    return correct / n


def static_search(
    net: ResNetSupernet,
    split: Split,
    targets: Sequence[int] = DEFAULT_TARGETS,
    bit_choices: Sequence[int] | None = None,
    limit: int | None = DEFAULT_LIMIT,
    progress: bool = True,
) -> dict:
    """Configurations for BitOps targets "as cheap as uniform-b" for each b in ``targets``.

    Args:
        net: frozen supernet.
        split: the split searched on (``val``: never the test split).
        targets: uniform bit-widths whose BitOps are the targets.
        bit_choices: bit-widths a layer may take (default: all the supernet's).
        limit: use the first ``limit`` images of the split (None: all).
        progress: show a progress bar.

    Returns a dict ``{"configs": {str(b): bits}, "val_accuracy": {...}, "bitops": {...}, "trace": [...]}``.
    """
    choices = sorted(bit_choices or net.bit_choices)
    n = len(split) if limit is None else min(limit, len(split))
    labels = split.labels[:n]
    with torch.inference_mode():
        stem = net.stem_forward(split.inputs(slice(0, n)))
    config = [choices[-1]] * net.num_switchable
    goal = {b: net.bitops([b] * net.num_switchable) for b in targets}
    states: list[State] = [stem] * (net.num_switchable + 1)
    _prefix_states(net, stem, config, 0, states)
    acc = _accuracy_from(net, states[net.num_switchable], [], net.num_switchable, labels)
    found: dict[str, list[int]] = {}
    found_acc: dict[str, float] = {}
    trace = [{"bits": list(config), "bitops": net.bitops(config), "val_accuracy": acc}]
    total_steps = (len(choices) - 1) * net.num_switchable
    bar = tqdm(total=total_steps, desc="static search", file=sys.stderr, disable=not progress)
    while True:
        current = net.bitops(config)
        for b, g in goal.items():
            if str(b) not in found and current <= g:
                found[str(b)], found_acc[str(b)] = list(config), acc
        if len(found) == len(goal):
            break
        best = None
        for i in range(net.num_switchable):
            k = choices.index(config[i])
            if k == 0:
                continue
            cand = list(config)
            cand[i] = choices[k - 1]
            saved = current - net.bitops(cand)
            cand_acc = _accuracy_from(net, states[i] if i > 0 else stem, cand, i, labels)
            score = (acc - cand_acc) / saved
            if best is None or score < best[0]:
                best = (score, i, cand, cand_acc)
        if best is None:  # everything is at the lowest bit-width already
            break
        _, i, config, acc = best
        _prefix_states(net, stem, config, i, states)
        trace.append({"bits": list(config), "bitops": net.bitops(config), "val_accuracy": acc, "lowered": i})
        bar.update(1)
    bar.close()
    return {
        "configs": found,
        "val_accuracy": found_acc,
        "bitops": {b: net.bitops(c) for b, c in found.items()},
        "targets": {str(b): g for b, g in goal.items()},
        "bit_choices": choices,
        "split": split.name,
        "images": n,
        "trace": trace,
    }


def shipped_path(supernet: str) -> Path:
    """Where the shipped search result for ``supernet`` lives (a card path: its name's file)."""
    return POLICY_DIR / f"static-{supernet_name(supernet)}.json"


def _matching(path: Path, supernet_sha256: str, bit_choices: Sequence[int]) -> dict | None:
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    if data.get("supernet_sha256") != supernet_sha256 or data.get("bit_choices") != sorted(bit_choices):
        return None
    if not {str(b) for b in DEFAULT_TARGETS} <= set(data.get("configs", {})):
        return None
    return data


def load_shipped(supernet: str, supernet_sha256: str, bit_choices: Sequence[int]) -> dict | None:
    """The shipped search result, if it was made for this exact supernet and action set."""
    return _matching(shipped_path(supernet), supernet_sha256, bit_choices)


def find_result(
    supernet: str, supernet_sha256: str, bit_choices: Sequence[int], static_from: str | Path | None = None
) -> dict | None:
    """A saved search result for this exact supernet (sha256) and action set, or None.

    Looked for in ``static_from`` when given (a clear error when it holds none that matches),
    else beside the supernet's card, then among the shipped ones.
    """
    name = supernet_name(supernet)
    if static_from is not None:
        path = Path(static_from) / f"static-{name}.json"
        found = _matching(path, supernet_sha256, bit_choices)
        if found is None:
            why = "does not exist" if not path.is_file() else "was searched on another supernet sha256 or action set"
            raise UsageError(
                f"--static-from {static_from}: {path} {why}; run `abn-gym static-search --supernet {supernet} "
                f"--out {static_from}` first, or leave --static-from out to search now"
            )
        return found
    beside = get_entry(supernet).card.parent / f"static-{name}.json"
    return _matching(beside, supernet_sha256, bit_choices) or load_shipped(supernet, supernet_sha256, bit_choices)


def search_for_bench(supernet: str, bit_choices: Sequence[int], progress: bool = True) -> dict:
    """Search the static front on val because no saved result matches; says so, and records its seconds."""
    name = supernet_name(supernet)
    print(
        f"bench: no saved static search for {name} with bit_choices {list(bit_choices)}: searching the static front "
        f"on val now (its time counts in the first static-<b> row's wall s). To search once: abn-gym static-search "
        f"--supernet {supernet} --out DIR, then bench --static-from DIR",
        file=sys.stderr,
    )
    t0 = time.perf_counter()
    net = load_supernet(supernet)
    result = static_search(net, load_supernet_split(supernet, "val"), DEFAULT_TARGETS, bit_choices, progress=progress)
    return {**result, "search_seconds": time.perf_counter() - t0}
