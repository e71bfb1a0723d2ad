"""Known Pareto fronts of the multi-objective ids: the static front, as data the env can read.

MO-Gymnasium's envs expose ``pareto_front(gamma)``, their known front, so that IGD and hypervolume
tools can compare a learned front with it. abn-gym's known front is its static one: the
configurations that run one bit-width per layer for every input (``fixed-b``, and the ``static-b``
that ``abn-gym static-search`` found on val under each shipped cost model), each with its exact
number of correct images on the val and test splits. They are stored, per supernet, in
``abn_gym/fronts/<supernet>.json`` with the supernet's sha256; the costs are not stored but
priced here with the env's own cost model, so one file serves BitOps, BitFusion and a user's table.
``python -m agents.app.known_fronts`` writes the files from the shipped static fronts (abn_gym
cannot import agents, so the front is data).

A configuration's vector return is :class:`~abn_gym.multi_objective.MOABNEnv`'s episode return:
``[gamma**(H-1) * accuracy, -sum_k gamma**k * cost_k / cost_all8]`` over the H steps, which is
``[accuracy, -(cost - cost_fixed) / cost_all8]`` at ``gamma=1``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from abn_gym.config import EnvConfig, table_of
from abn_gym.errors import EnvCallError
from supernets.registry import get_entry, read_supernet_card

FRONT_DIR = Path(__file__).resolve().parent / "fronts"
"""Where the known fronts ship: one ``<supernet>.json`` per shipped supernet."""
FRONT_REWARDS = ("default", "correct")
"""The rewards whose terminal term is the correctness, so that a stored accuracy is the first objective."""
HYPERVOLUME_REFERENCE = (0.0, -1.0)
"""A reference point for hypervolume at ``gamma=1``: no accuracy, and the cost of all-8 (both objectives'
worst values: an episode's cost sum is above -1, since the fixed layers are charged to no step)."""


class KnownFrontError(EnvCallError):
    """``pareto_front`` cannot give a known front for this env's arguments."""


def front_path(supernet: str) -> Path:
    """The known front's file of shipped supernet ``supernet``."""
    return FRONT_DIR / f"{supernet}.json"


@lru_cache(maxsize=8)
def _read(path: Path, mtime_ns: int) -> dict[str, Any]:
    return json.loads(path.read_text())


def front_data(supernet: str) -> dict[str, Any]:
    """The stored known front of ``supernet``, checked against its checkpoint's sha256.

    A supernet without one (a user's card), or a checkpoint that changed since the front was
    computed, is refused with what to do instead.
    """
    if not get_entry(supernet).shipped:
        raise KnownFrontError(
            f"no known front for {supernet!r}: fronts ship for the package's own supernets only; compute one with "
            "`abn-gym static-search` and `abn-gym bench` (results.json's front)"
        )
    path = front_path(supernet)
    if not path.is_file():
        raise KnownFrontError(
            f"no known front for {supernet!r} ({path} is missing): regenerate it with python -m agents.app.known_fronts"
        )
    data = _read(path, path.stat().st_mtime_ns)
    sha = read_supernet_card(supernet)["sha256"]
    if data.get("supernet_sha256") != sha:
        raise KnownFrontError(
            f"the known front {path.name} was computed on another {supernet} checkpoint (sha256 "
            f"{str(data.get('supernet_sha256'))[:12]}..., installed {sha[:12]}...): regenerate it with "
            "python -m agents.app.known_fronts"
        )
    return data


def vector_returns(config: EnvConfig, gamma: float = 1.0) -> list[tuple[str, list[int], np.ndarray]]:
    """Every stored configuration this env can run, with its vector return: [(name, bits, return)].

    A configuration runs on the env when its bit-widths are actions of the env and, with
    ``decide_at``, one bit-width covers each step's layers.
    """
    if config.reward not in FRONT_REWARDS or config.group_size != 1:
        raise KnownFrontError(
            f"no known front for reward={config.reward!r}, group_size={config.group_size}: the stored front holds "
            f"accuracies, the first objective of rewards {list(FRONT_REWARDS)} with group_size=1 only"
        )
    if not (isinstance(gamma, (int, float)) and 0.0 <= float(gamma) <= 1.0):
        raise KnownFrontError(f"pareto_front(gamma={gamma!r}): gamma must be a number in [0, 1]")
    data = front_data(config.supernet)
    if config.split not in data["images"]:
        raise KnownFrontError(
            f"no known front on split {config.split!r}: the stored front has {sorted(data['images'])} (the train "
            "split is for training); make the env with split='val' or split='test'"
        )
    assert config.bit_choices is not None, "make_config resolves the bit-widths"
    costs = table_of(config.supernet, config.bit_choices, config.cost_model)
    n = len(costs.layers)
    points = config.decide_at or tuple(range(n))
    spans = list(zip(points, (*points[1:], n)))
    images = data["images"][config.split]
    out = []
    for entry in data["configs"]:
        bits = [int(b) for b in entry["bits"]]
        if not set(bits) <= set(config.bit_choices) or any(len(set(bits[p:e])) > 1 for p, e in spans):
            continue
        cols = [costs.column(b) for b in bits]
        steps = [float(costs.layers[np.arange(p, e), cols[p:e]].sum()) / costs.all8 for p, e in spans]
        accuracy = entry["correct"][config.split] / images
        g = float(gamma)
        vec = np.array([g ** (len(spans) - 1) * accuracy, -sum(g**k * c for k, c in enumerate(steps))])
        out.append((entry["name"], bits, vec))
    return out


def non_dominated(points: list[np.ndarray]) -> list[np.ndarray]:
    """The points no other point dominates (both objectives maximised), cheapest first, duplicates once."""
    unique = sorted({tuple(p) for p in points}, key=lambda p: (-p[1], -p[0]))
    front: list[np.ndarray] = []
    for p in unique:  # by falling second objective (costlier): kept when more accurate than every cheaper one
        if not front or p[0] > front[-1][0]:
            front.append(np.array(p))
    return front


def known_front(config: EnvConfig, gamma: float = 1.0) -> list[np.ndarray]:
    """The known Pareto front of an env with arguments ``config``: its non-dominated static vector returns."""
    return non_dominated([vec for _, _, vec in vector_returns(config, gamma)])
