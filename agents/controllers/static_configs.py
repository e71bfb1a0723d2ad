"""HAQ-like static mixed precision: one layer-wise configuration for all inputs, found on `val`.

Greedy descents: from a uniform configuration, repeatedly lower the layer whose reduction costs
the least val accuracy per unit of cost saved, down to all-lowest. Cost is measured under a cost
model (:func:`supernets.costs.cost_table`: BitOps by default, BitFusion's bricks, or a user's
table). A layer is lowered to the next narrower width that costs strictly less under the model: one
step of ``bit_choices`` under BitOps, and from 8 to 6 (not 7, which costs as many bricks) under
BitFusion. Activations entering every layer are cached for the current configuration, so a
candidate only reruns the layers from the one it changes.

One descent from a single start can lose its way: on a user's small network the descent from
all-8 alone gave a static-4 equal to its static-5, and rows that fixed-2 beat for less. So the
search descends from all-8 and from every narrower uniform width (but the lowest, and a width that
costs what a wider one does), pools every configuration it scored, and picks each target's row
from the pool's front (:mod:`agents.controllers.static_pool`): the rows are distinct, none is
dominated by another or by a fixed-b row, and a target the front holds nothing new for gets no
row (the result's ``unmet`` says why).

The descent from all-8 is the result's ``trace``. It is memoryless given the current
configuration: a saved result's trace can be replayed and the descent continued from its last
configuration (``resume``); the other starts' descents run again, which gives exactly what one
long search gives.

This module finds the configurations of the ``static-<b>`` agents: a saved result that matches the
supernet and action set, else a search now. ``abn-gym static-search`` (:mod:`agents.app.static_search`)
runs and saves a search.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from tqdm import tqdm

from agents.controllers.static_pool import Pool, pick
from supernets.costs import COST_MODELS, DEFAULT_COST_MODEL, CostTable, cost_table
from supernets.data import Split
from supernets.foundation.errors import UsageError
from supernets.foundation.files import sha256
from supernets.registry import get_entry, load_supernet, load_supernet_split, supernet_name
from supernets.supernet import State, Supernet

POLICY_DIR = Path(__file__).resolve().parent.parent / "policies"
"""The trained agents and static fronts shipped with the package (``agents/policies``)."""
DEFAULT_TARGETS: tuple[float, ...] = (3, 4, 5, 6, 7)
"""The ``static-<b>`` rows listed on the default leaderboard: static configurations as cheap as uniform-b."""
FRONT_TARGETS: tuple[float, ...] = (2.25, 2.5, 2.75, 3, 3.25, 3.5, 3.75, 4, 4.25, 4.5, 4.75, 5, 5.5, 6, 6.5, 7, 7.5)
"""Every ``static-<b>`` row the static front holds, a superset of :data:`DEFAULT_TARGETS`.

Between fixed-2 and fixed-8 (the front's ends), denser at the cheap end where the learned rows
sit, so that the chords of the static mixtures' hull are short. A fractional b is "as cheap as
uniform-b" in the sense of :func:`target_bitops`."""
DEFAULT_LIMIT = 2000


def model_suffix(cost_model: str | Path) -> str:
    """The file-name suffix of a search under ``cost_model``: "" (BitOps), "-bitfusion", "-table-<stem>"."""
    name = str(cost_model)
    if name == DEFAULT_COST_MODEL:
        return ""
    return f"-{name}" if name == "bitfusion" else f"-table-{Path(name).stem}"


def result_model(result: dict) -> dict:
    """The cost model a saved result was searched under (``describe()``); results without one are BitOps."""
    return result.get("cost_model") or {"model": DEFAULT_COST_MODEL, "unit": "BitOps", "sha256": None}


def target_name(b: float) -> str:
    """The name of target ``b`` in results and rows: ``3`` for 3, ``2.25`` for 2.25 (row ``static-2.25``)."""
    return f"{b:g}"


def target_bitops(net: Supernet, b: float) -> float:
    """BitOps "as cheap as uniform-b": the fixed layers' BitOps plus ``b * b`` times the switchable MACs.

    At an integer b that is exactly the BitOps of every layer at b bits (a layer costs
    ``bits * bits * MACs``); a fractional b interpolates quadratically between them.
    """
    if float(b).is_integer():
        return net.bitops([int(b)] * net.num_switchable)
    two, three = net.bitops([2] * net.num_switchable), net.bitops([3] * net.num_switchable)
    macs = (three - two) / 5  # the switchable MACs: uniform-3 costs 9 of them where uniform-2 costs 4
    return two + (b * b - 4) * macs


def target_cost(net: Supernet, table: CostTable, b: float) -> float:
    """The cost target of ``b`` under ``table``'s cost model.

    BitOps: exactly :func:`target_bitops`, "as cheap as uniform-b". Another model: the same place
    between the all-lowest and the all-highest configurations' costs as :func:`target_bitops` has
    between their BitOps. So the front is as dense, at the same spread of cost, under every model:
    "as cheap as uniform-b" would not be (under BitFusion, 3 bits cost what 4 do, so targets 3 to 4
    would be one cost, and 7 to 8 another). Under BitFusion both ends are the same fraction of all-8
    as under BitOps, so a target is the BitOps target's fraction of all-8.
    """
    if table.model == DEFAULT_COST_MODEL:
        return target_bitops(net, b)
    low, high = [min(table.bit_choices)] * net.num_switchable, [max(table.bit_choices)] * net.num_switchable
    place = (target_bitops(net, b) - net.bitops(low)) / (net.bitops(high) - net.bitops(low))
    return table.total(low) + place * (table.total(high) - table.total(low))


def _lower(table: CostTable, layer: int, bits: int) -> int | None:
    """The next narrower width of ``layer`` that costs strictly less than ``bits`` (None: none does)."""
    col = table.column(bits)
    for k in range(col - 1, -1, -1):
        if table.layers[layer, k] < table.layers[layer, col]:
            return table.bit_choices[k]
    return None


def _steps_left(table: CostTable, config: Sequence[int]) -> int:
    """How many lowerings the descent has left from ``config`` (the progress bar's length)."""
    steps = 0
    for i, b in enumerate(config):
        low = _lower(table, i, b)
        while low is not None:
            steps, low = steps + 1, _lower(table, i, low)
    return steps


@torch.inference_mode()
def _prefix_states(net: Supernet, stem: State, config: Sequence[int], start: int, states: list[State]) -> None:
    state = states[start] if start > 0 else stem
    for i in range(start, net.num_switchable):
        if i > 0:
            states[i] = state
        state = net.step(state, i, config[i])
    states[net.num_switchable] = state


@torch.inference_mode()
def _accuracy_from(
    net: Supernet, state: State, config: Sequence[int], start: int, labels: torch.Tensor, chunk: int = 256
) -> float:
    correct = 0
    n = labels.shape[0]
    for s in range(0, n, chunk):
        sub = state.select(slice(s, s + chunk))
        for i in range(start, net.num_switchable):
            sub = net.step(sub, i, config[i])
        correct += int((net.head(sub).argmax(1) == labels[s : s + chunk]).sum())
    return correct / n


def _starts(table: CostTable, layers: int) -> list[int]:
    """The uniform widths below the widest whose descents join the pool, widest first.

    The lowest is left out (nothing is below it), and so is a width that costs no less than the
    next wider start (under BitFusion 7, 5 and 3 cost what 8, 6 and 4 do).
    """
    starts: list[int] = []
    above = table.total([table.bit_choices[-1]] * layers)
    for b in sorted(table.bit_choices[1:-1], reverse=True):
        cost = table.total([b] * layers)
        if cost < above:
            starts.append(b)
            above = cost
    return starts


def _descent(
    net: Supernet,
    stem: State,
    labels: torch.Tensor,
    table: CostTable,
    config: list[int],
    acc: float,
    states: list[State],
) -> Iterator[tuple[list[int], float, int]]:
    """The greedy descent from ``config`` (scoring ``acc``; ``states`` its prefixes) down to all-lowest.

    Each step lowers the layer whose reduction costs the least val accuracy per unit of cost saved,
    and yields (configuration, its accuracy, the layer lowered).
    """
    while True:
        current = table.total(config)
        best = None
        for i in range(net.num_switchable):
            low = _lower(table, i, config[i])
            if low is None:
                continue
            cand = list(config)
            cand[i] = low
            saved = current - table.total(cand)
            cand_acc = _accuracy_from(net, states[i] if i > 0 else stem, cand, i, labels)
            score = (acc - cand_acc) / saved
            if best is None or score < best[0]:
                best = (score, i, cand, cand_acc)
        if best is None:  # no layer can get cheaper (every one at its lowest bit-width): the path's end
            return
        _, i, config, acc = best
        _prefix_states(net, stem, config, i, states)
        yield config, acc, i


def _check_resume(resume: dict, choices: list[int], split: Split, n: int, net: Supernet, model: dict) -> None:
    """Refuse to continue a saved search made on other settings: the continued path would be another search's."""
    theirs = {"bit_choices": resume.get("bit_choices"), "split": resume.get("split"), "images": resume.get("images")}
    mine = {"bit_choices": choices, "split": split.name, "images": n}
    if theirs != mine or not resume.get("trace"):
        raise UsageError(
            f"the saved static search to resume was made with {theirs} and a trace of {len(resume.get('trace') or [])} "
            f"steps, this search runs with {mine}: resume a result made with the same --limit and action set, "
            "or search from all-8 without --resume"
        )
    if result_model(resume) != model:
        raise UsageError(
            f"the saved static search to resume was made under the cost model {result_model(resume)}, this search "
            f"runs under {model}: resume a result of the same --cost-model (and table file), or search without --resume"
        )
    if len(resume["trace"][-1]["bits"]) != net.num_switchable:
        raise UsageError(
            f"the saved static search to resume has {len(resume['trace'][-1]['bits'])} layers, this supernet "
            f"{net.num_switchable}: resume a result of this supernet (its supernet_sha256), or search without --resume"
        )


def static_search(
    net: Supernet,
    split: Split,
    targets: Sequence[float] = FRONT_TARGETS,
    bit_choices: Sequence[int] | None = None,
    limit: int | None = DEFAULT_LIMIT,
    progress: bool = True,
    resume: dict | None = None,
    cost_model: str | Path = DEFAULT_COST_MODEL,
) -> dict:
    """Configurations for cost targets "as cheap as uniform-b" for each b in ``targets``.

    Every descent goes on down to every layer at its lowest bit-width, so that the trace holds the
    whole path from all-8 to all-lowest, whatever the targets. Each target's row is the most
    accurate pooled configuration within its cost that no fixed-b row dominates, unless a cheaper
    target has it already (:func:`agents.controllers.static_pool.pick`).

    Args:
        net: frozen supernet.
        split: the split searched on (``val``: never the test split).
        targets: uniform bit-widths whose costs are the targets (:func:`target_cost`; fractional ones too).
        bit_choices: bit-widths a layer may take (default: all the supernet's).
        limit: use the first ``limit`` images of the split (None: all).
        progress: show a progress bar.
        resume: a saved result of the same search (same supernet, split, ``limit`` and ``bit_choices``)
            to continue: its trace is replayed and the descent goes on from its last configuration
            (the other starts' descents run again), which gives exactly the result of one search.
        cost_model: what a configuration costs: "bitops", "bitfusion" or a cost table's path
            (:func:`supernets.costs.cost_table`).

    Returns a dict ``{"configs": {name: bits}, "val_accuracy": {...}, "bitops": {...}, "trace": [...]}``,
    keyed by :func:`target_name`, with ``cost_model`` (the model's ``describe()``), ``starts`` (the
    uniform widths descended from) and ``unmet`` (target name -> why it has no row); under a model
    other than BitOps, ``cost`` per configuration and per trace step too.
    """
    choices = sorted(bit_choices or net.bit_choices)
    table = cost_table(net, choices, cost_model)
    model = table.describe()
    plain = table.model == DEFAULT_COST_MODEL  # BitOps: the results keep exactly their old keys
    n = len(split) if limit is None else min(limit, len(split))
    device = next(net.parameters()).device  # the search runs where the supernet is
    labels = split.labels[:n].to(device)
    with torch.inference_mode():
        stem = net.stem_forward(split.inputs(slice(0, n), device))
    goal = {target_name(b): target_cost(net, table, b) for b in targets}
    pool = Pool()

    def step_of(config: list[int]) -> dict:
        return {"bits": list(config), "bitops": net.bitops(config), **({} if plain else {"cost": table.total(config)})}

    if resume is None:
        config = [choices[-1]] * net.num_switchable
        trace: list[dict] = [step_of(config)]
    else:
        _check_resume(resume, choices, split, n, net, model)
        trace = [dict(step) for step in resume["trace"]]
        for step in trace[:-1]:  # the path walked already
            pool.add(step["bits"], step["bitops" if plain else "cost"], step["val_accuracy"])
        config = list(trace[-1]["bits"])
    states: list[State] = [stem] * (net.num_switchable + 1)
    _prefix_states(net, stem, config, 0, states)
    acc = _accuracy_from(net, states[net.num_switchable], [], net.num_switchable, labels)
    if resume is not None and acc != trace[-1]["val_accuracy"]:
        raise UsageError(
            f"the saved static search's last configuration scores {trace[-1]['val_accuracy']} on val here "
            f"{acc}: it was made on other images or another supernet; search without --resume"
        )
    trace[-1]["val_accuracy"] = acc
    starts = _starts(table, net.num_switchable)
    steps = _steps_left(table, config) + sum(_steps_left(table, [b] * net.num_switchable) for b in starts)
    bar = tqdm(total=steps, desc="static search", file=sys.stderr, disable=not progress)
    pool.add(config, table.total(config), acc)
    for step, step_acc, i in _descent(net, stem, labels, table, config, acc, states):
        pool.add(step, table.total(step), step_acc)
        trace.append({**step_of(step), "val_accuracy": step_acc, "lowered": i})
        bar.update(1)
    for b in starts:  # the other uniform starting points: their paths join the pool, not the trace
        start = [b] * net.num_switchable
        _prefix_states(net, stem, start, 0, states)
        acc = _accuracy_from(net, states[net.num_switchable], [], net.num_switchable, labels)
        pool.add(start, table.total(start), acc)
        for step, step_acc, _ in _descent(net, stem, labels, table, start, acc, states):
            pool.add(step, table.total(step), step_acc)
            bar.update(1)
    bar.close()
    found, unmet = pick(pool.front(), goal)
    order = [b for b in goal if b in found]
    result = {
        "configs": {b: list(found[b]) for b in order},
        "val_accuracy": {b: pool.scores[found[b]][1] for b in order},
        "bitops": {b: net.bitops(found[b]) for b in order},
        **({} if plain else {"cost": {b: table.total(found[b]) for b in order}}),
        "targets": goal,
        "cost_model": model,
        "bit_choices": choices,
        "split": split.name,
        "images": n,
        "starts": [choices[-1], *starts],
        "unmet": {b: unmet[b] for b in goal if b in unmet},
        "trace": trace,
    }
    if resume is not None:
        result["resumed_at_step"] = len(resume["trace"]) - 1
    return result


def read_resume(path: str | Path, supernet_sha256: str) -> dict:
    """A saved search result to continue (``static-search --resume``), refused unless made on this supernet."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--resume {path}: no such file; give a static-<name>.json that static-search wrote")
    data = json.loads(path.read_text())
    if data.get("supernet_sha256") != supernet_sha256:
        raise UsageError(
            f"--resume {path} was searched on supernet sha256 {str(data.get('supernet_sha256'))[:12]}..., not this "
            f"one ({supernet_sha256[:12]}...): resume a result of this supernet, or search without --resume"
        )
    return data


def model_key(cost_model: str | Path) -> tuple[str, str | None]:
    """What identifies a cost model in saved results: (model, table sha256), as ``CostTable.describe()`` has them."""
    name = str(cost_model)
    if name in COST_MODELS:
        return name, None
    path = Path(name)
    if not path.is_file():
        raise UsageError(f"cost model {name!r}: no such cost table file; give bitops, bitfusion or a table's path")
    return f"table:{path.name}", sha256(path)


def shipped_path(supernet: str, cost_model: str | Path = DEFAULT_COST_MODEL) -> Path:
    """Where the shipped search result for ``supernet`` under ``cost_model`` lives (a card path: its name's file)."""
    return POLICY_DIR / f"static-{supernet_name(supernet)}{model_suffix(cost_model)}.json"


def _matching(
    path: Path, supernet_sha256: str, bit_choices: Sequence[int], cost_model: str | Path = DEFAULT_COST_MODEL
) -> dict | None:
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    if data.get("supernet_sha256") != supernet_sha256 or data.get("bit_choices") != sorted(bit_choices):
        return None
    model = result_model(data)
    if (model.get("model"), model.get("sha256")) != model_key(cost_model):
        return None
    # A target the search found no row for (``unmet``) is answered too: searching again finds none either.
    if not {target_name(b) for b in DEFAULT_TARGETS} <= set(data.get("configs", {})) | set(data.get("unmet", {})):
        return None
    return data


def front_static_rows(result: dict | None) -> list[str]:
    """The ``static-<b>`` rows a search result gives the front: each of :data:`FRONT_TARGETS` it holds.

    None (no result at hand) gives all of them.
    """
    names = [target_name(b) for b in FRONT_TARGETS]
    return [f"static-{b}" for b in names if result is None or b in result.get("configs", {})]


def load_shipped(
    supernet: str, supernet_sha256: str, bit_choices: Sequence[int], cost_model: str | Path = DEFAULT_COST_MODEL
) -> dict | None:
    """The shipped search result, if it was made for this exact supernet, action set and cost model."""
    return _matching(shipped_path(supernet, cost_model), supernet_sha256, bit_choices, cost_model)


def find_result(
    supernet: str,
    supernet_sha256: str,
    bit_choices: Sequence[int],
    static_from: str | Path | None = None,
    cost_model: str | Path = DEFAULT_COST_MODEL,
) -> dict | None:
    """A saved search result for this exact supernet (sha256), action set and cost model, or None.

    Looked for in ``static_from`` when given (a clear error when it holds none that matches),
    else beside the supernet's card, then among the shipped ones. The file is
    ``static-<name><suffix>.json``, the suffix naming the cost model (:func:`model_suffix`).
    """
    name = supernet_name(supernet) + model_suffix(cost_model)
    if static_from is not None:
        path = Path(static_from) / f"static-{name}.json"
        found = _matching(path, supernet_sha256, bit_choices, cost_model)
        if found is None:
            why = (
                "does not exist"
                if not path.is_file()
                else "was searched on another supernet sha256, action set or cost model (table)"
            )
            raise UsageError(
                f"--static-from {static_from}: {path} {why}; run `abn-gym static-search --supernet {supernet} "
                f"--cost-model {cost_model} --out {static_from}` first, or leave --static-from out to search now"
            )
        return found
    beside = get_entry(supernet).card.parent / f"static-{name}.json"
    return _matching(beside, supernet_sha256, bit_choices, cost_model) or load_shipped(
        supernet, supernet_sha256, bit_choices, cost_model
    )


def search_for_bench(
    supernet: str, bit_choices: Sequence[int], progress: bool = True, cost_model: str | Path = DEFAULT_COST_MODEL
) -> dict:
    """Search the static front on val because no saved result matches; says so, and records its seconds."""
    name = supernet_name(supernet)
    print(
        f"bench: no saved static search for {name} with bit_choices {list(bit_choices)} under cost model "
        f"{cost_model}: searching the static front on val now (its time counts in the first static-<b> row's wall "
        f"s). To search once: abn-gym static-search --supernet {supernet} --cost-model {cost_model} --out DIR, then "
        "bench --static-from DIR",
        file=sys.stderr,
    )
    t0 = time.perf_counter()
    net = load_supernet(supernet)
    split = load_supernet_split(supernet, "val")
    result = static_search(net, split, FRONT_TARGETS, bit_choices, progress=progress, cost_model=cost_model)
    return {**result, "search_seconds": time.perf_counter() - t0}
