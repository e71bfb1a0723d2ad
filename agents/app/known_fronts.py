"""Developer step: write the known fronts the multi-objective ids read (:mod:`abn_gym.fronts`).

``python -m agents.app.known_fronts [--supernets NAME,...]`` runs every static configuration of a
shipped supernet (``fixed-b`` for each of its bit-widths, and each ``static-b`` of its shipped
static fronts: ``agents/policies/static-<name>.json`` under BitOps, ``static-<name>-bitfusion.json``
under BitFusion) on the whole val and test splits, and writes the number of correct images of
each into ``abn_gym/fronts/<name>.json``, with the supernet's sha256. The costs are not written:
the env prices each configuration with its own cost model. Like ``static-search --publish``, it
writes into the source checkout, never into an installed package.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from abn_gym.fronts import front_path
from agents.controllers.static_configs import POLICY_DIR, model_suffix
from supernets.costs import COST_MODELS
from supernets.foundation.cliargs import arg, comma_list, dataclass_from_args, dataclass_parser
from supernets.foundation.files import atomic_write_json, check_source_checkout
from supernets.registry import SUPERNETS, load_supernet, load_supernet_split, read_supernet_card
from supernets.supernet import Supernet

SPLITS = ("val", "test")
"""The splits a known front holds (the train split is for training)."""
CHUNK = 1000


def front_configs(supernet: str, bit_choices: Sequence[int]) -> list[dict]:
    """Every static configuration of ``supernet``: fixed-b, then each shipped static front's static-b.

    A configuration found by more than one search is kept once, under its first name, with the
    others in ``also``. A static-b found under BitFusion is named ``static-b@bitfusion``.
    """
    n = load_supernet(supernet).num_switchable
    configs: dict[tuple[int, ...], dict] = {}

    def add(name: str, bits: Sequence[int]) -> None:
        key = tuple(int(b) for b in bits)
        if key in configs:
            configs[key]["also"].append(name)
        else:
            configs[key] = {"name": name, "bits": list(key), "also": []}

    for b in bit_choices:
        add(f"fixed-{b}", [b] * n)
    for model in COST_MODELS:
        path = POLICY_DIR / f"static-{supernet}{model_suffix(model)}.json"
        if path.is_file():
            tag = "" if model == "bitops" else f"@{model}"
            for b, bits in json.loads(path.read_text())["configs"].items():
                add(f"static-{b}{tag}", bits)
    return list(configs.values())


@torch.inference_mode()
def count_correct(net: Supernet, supernet: str, split: str, configs: Sequence[Sequence[int]]) -> list[int]:
    """The number of correctly classified images of ``split`` under each configuration."""
    data = load_supernet_split(supernet, split)
    counts = [0] * len(configs)
    for start in range(0, len(data), CHUNK):
        stop = min(start + CHUNK, len(data))
        stem = net.stem_forward(data.inputs(slice(start, stop)))
        labels = data.labels[start:stop]
        for k, bits in enumerate(configs):
            state = stem
            for i, b in enumerate(bits):
                state = net.step(state, i, int(b))
            counts[k] += int((net.head(state).argmax(1) == labels).sum())
    return counts


def write_front(supernet: str, command: str) -> dict:
    """Compute and write ``abn_gym/fronts/<supernet>.json``; returns what was written."""
    target = front_path(supernet)
    check_source_checkout(target, __file__)
    net = load_supernet(supernet)
    configs = front_configs(supernet, net.bit_choices)
    correct = {s: count_correct(net, supernet, s, [c["bits"] for c in configs]) for s in SPLITS}
    doc = {
        "supernet": supernet,
        "supernet_sha256": read_supernet_card(supernet)["sha256"],
        "bit_choices": list(net.bit_choices),
        "images": {s: len(load_supernet_split(supernet, s)) for s in SPLITS},
        "command": command,
        "configs": [{**c, "correct": {s: correct[s][k] for s in SPLITS}} for k, c in enumerate(configs)],
    }
    atomic_write_json(target, doc)
    return doc


@dataclass
class KnownFrontsArgs:
    """Arguments of ``python -m agents.app.known_fronts``."""

    supernets: list[str] = arg(
        [],
        "comma-separated shipped supernets (default: every one with a shipped static front)",
        parse=comma_list(str, "supernet names"),
    )


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m agents.app.known_fronts``, generated from :class:`KnownFrontsArgs`."""
    return dataclass_parser(KnownFrontsArgs, prog="python -m agents.app.known_fronts", description=__doc__)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: write the known front of each supernet listed (default: every shipped one with a static front)."""
    args = dataclass_from_args(KnownFrontsArgs, build_parser().parse_args(argv))
    names = args.supernets or [s for s in SUPERNETS if (POLICY_DIR / f"static-{s}.json").is_file()]
    command = "python -m agents.app.known_fronts --supernets " + ",".join(names)
    for name in names:
        t0 = time.perf_counter()
        doc = write_front(name, command)
        print(f"{front_path(name)}: {len(doc['configs'])} configurations, {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
