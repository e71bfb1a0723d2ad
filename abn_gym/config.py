"""Keyword arguments of every abn-gym environment: defaults, validation, and building the engine."""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from abn_gym.engine import EpisodeEngine
from abn_gym.episode_cache import check_episode_cache, episode_cache_mb, forget_reference_predictions
from abn_gym.errors import EnvArgumentError, EnvCallError, UnknownEnvArgumentError
from abn_gym.observations import OBS_MODES
from abn_gym.rewards import REWARDS, RewardFn
from supernets.costs import DEFAULT_COST_MODEL, CostModelError, CostTable, cost_table
from supernets.data import SPLITS
from supernets.families import build_supernet
from supernets.foundation.errors import UnknownNameError
from supernets.registry import (
    DEFAULT_SUPERNET,
    available_supernets,
    config_of,
    forget_loaded_supernets,
    get_entry,
    load_supernet,
    load_supernet_split,
    verify_checkpoint,
)
from supernets.supernet import Supernet

SAMPLING = ("random", "sequential")
DEFAULT_COST_COEF = 0.04


@dataclass(frozen=True)
class EnvConfig:
    """Validated environment arguments (see the env docstring for their meaning)."""

    supernet: str = DEFAULT_SUPERNET
    split: str = "train"
    sampling: str = "random"
    bit_choices: tuple[int, ...] | None = None
    reward: str = "default"
    cost_coef: float = DEFAULT_COST_COEF
    gamma: float = 0.5
    budget: float | tuple[float, float] | None = None
    obs_mode: str = "vector"
    device: str = "cpu"
    data_dir: str | None = None
    decide_at: tuple[int, ...] | None = None
    group_size: int = 1
    cost_model: str = DEFAULT_COST_MODEL
    episode_cache: str | float = "auto"

    def kwargs(self) -> dict[str, Any]:
        """The arguments as a plain dict (what pickling and the vector env pass on)."""
        return dataclasses.asdict(self)


ENV_KWARGS = tuple(f.name for f in dataclasses.fields(EnvConfig))


def architecture(name: str) -> Supernet:
    """The supernet's architecture (untrained weights) from its model card: spaces without loading.

    ``name`` is a shipped supernet's name or a published card's path (``DIR/NAME.json``).
    """
    try:
        get_entry(name)
    except UnknownNameError as exc:
        raise EnvArgumentError(str(exc)) from None
    return _architecture(name, get_entry(name).card.stat().st_mtime_ns)


def forget_supernets() -> None:
    """Start as a fresh process does: no supernet, architecture or reference prediction cached.

    Building a supernet draws its blank initial weights (overwritten by the checkpoint) from
    torch's global random stream. A seeded training run loads the supernet after it is seeded, so
    in a fresh process those draws are part of its random stream; with the supernet cached by an
    earlier run they would not be, and the run would depend on what ran before it. Runs that share
    a process (the zoo, the levers) call this first, so each is the run its card's command gives.
    """
    forget_loaded_supernets()
    _architecture.cache_clear()
    _table.cache_clear()
    forget_reference_predictions()


@lru_cache(maxsize=8)
def _architecture(name: str, card_mtime_ns: int) -> Supernet:
    return build_supernet(config_of(name))


def _fail(name: str, value: Any, expected: str) -> None:
    raise EnvArgumentError(f"invalid {name}={value!r}: expected {expected}")


def make_config(**kwargs: Any) -> EnvConfig:
    """Validate environment keyword arguments; every mistake gets a message that says the fix."""
    unknown = sorted(set(kwargs) - set(ENV_KWARGS))
    if unknown:
        # Python's own wording: libraries such as TorchRL retry without an argument (frameskip)
        # only when the TypeError says exactly this.
        more = f" (and {', '.join(map(repr, unknown[1:]))})" if len(unknown) > 1 else ""
        raise UnknownEnvArgumentError(
            f"ABNEnv.__init__() got an unexpected keyword argument {unknown[0]!r}{more}: an unknown environment "
            f"argument; valid arguments are {[*ENV_KWARGS, 'render_mode']}"
        )
    cfg = EnvConfig(**kwargs)
    if not isinstance(cfg.supernet, str | os.PathLike):
        # A module's repr would fill the message: name its type, and the way in for a network of one's own.
        raise EnvArgumentError(
            f"invalid supernet: a {type(cfg.supernet).__name__} object; supernet= takes a shipped supernet's name "
            f"({', '.join(available_supernets())}) or a published card's path (DIR/NAME.json). A network of your "
            "own goes in as a card: train and publish it (docs/guides/bring-your-own-network.md)"
        )
    if not isinstance(cfg.supernet, str):
        cfg = dataclasses.replace(cfg, supernet=os.fspath(cfg.supernet))  # a pathlib.Path to a card
    arch = architecture(cfg.supernet)
    # A missing or changed checkpoint is reported by make(), not by the first reset().
    verify_checkpoint(cfg.supernet)
    if cfg.split not in SPLITS:
        _fail("split", cfg.split, f"one of {list(SPLITS)}")
    if cfg.sampling not in SAMPLING:
        _fail("sampling", cfg.sampling, f"one of {list(SAMPLING)}")
    if cfg.reward not in REWARDS:
        _fail("reward", cfg.reward, f"one of {list(REWARDS)}")
    if cfg.obs_mode not in OBS_MODES:
        _fail("obs_mode", cfg.obs_mode, f"one of {list(OBS_MODES)}")
    bits = arch.bit_choices if cfg.bit_choices is None else cfg.bit_choices
    if isinstance(bits, (int, str)) or not isinstance(bits, Sequence) or len(bits) == 0:
        _fail("bit_choices", cfg.bit_choices, f"a non-empty sequence of ints from {list(arch.bit_choices)}")
    if any(isinstance(b, bool) or int(b) != b or int(b) not in arch.bit_choices for b in bits):
        _fail("bit_choices", cfg.bit_choices, f"a subset of the trained bit-widths {list(arch.bit_choices)}")
    if len({int(b) for b in bits}) != len(bits):
        _fail("bit_choices", cfg.bit_choices, "distinct bit-widths (each at most once)")
    bits = tuple(sorted({int(b) for b in bits}))
    for name in ("cost_coef", "gamma"):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            _fail(name, value, "a number (int or float)")
    try:
        RewardFn.for_actions(cfg.reward, float(cfg.cost_coef), float(cfg.gamma), bits, arch.bit_choices)
    except (TypeError, ValueError) as exc:
        raise EnvArgumentError(f"invalid reward settings: {exc}") from None
    decide_at = _decision_points(cfg.decide_at, arch.num_switchable)
    model = cfg.cost_model
    if isinstance(model, os.PathLike):
        model = os.fspath(model)  # a pathlib.Path to a cost table
    if not isinstance(model, str):
        _fail("cost_model", model, "'bitops', 'bitfusion' or the path of a cost table (.csv or .json)")
    costs = table_of(cfg.supernet, bits, model)
    budget = _budget(cfg.budget, cheapest_fraction(costs, decide_at), costs.unit)
    group = cfg.group_size
    if isinstance(group, bool) or not isinstance(group, (int, np.integer)) or group < 1:
        _fail(
            "group_size", group, "an int >= 1: the number of consecutive sub-envs of the vector env that share an image"
        )
    episode_cache = check_episode_cache(cfg.episode_cache)
    if not isinstance(cfg.device, str) or not (cfg.device == "cpu" or cfg.device.startswith("cuda")):
        _fail("device", cfg.device, "'cpu' or 'cuda' (or 'cuda:N')")
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        _fail("device", cfg.device, "'cpu': torch sees no CUDA GPU on this machine")
    return dataclasses.replace(
        cfg,
        bit_choices=bits,
        budget=budget,
        cost_coef=float(cfg.cost_coef),
        gamma=float(cfg.gamma),
        decide_at=decide_at,
        group_size=int(group),
        cost_model=model,
        episode_cache=episode_cache,
    )


def table_of(supernet: str, bit_choices: Sequence[int], cost_model: str) -> CostTable:
    """The cost table of ``cost_model`` on ``supernet`` at ``bit_choices``, or a :class:`CostModelError`.

    The error names the argument and what to give instead: an unknown model's name, or a table
    that does not fit the supernet's layers (a missing or unknown layer or bit-width, a negative
    cost, a bad header or bad JSON).
    """
    path = Path(cost_model)
    # A table file is read again when it changes (a user's edit, a new `abn-gym perf` run).
    stamp = (path.stat().st_mtime_ns, path.stat().st_size) if path.is_file() else None
    try:
        return _table(supernet, get_entry(supernet).card.stat().st_mtime_ns, tuple(bit_choices), cost_model, stamp)
    except CostModelError as exc:
        raise CostModelError(f"invalid cost_model={cost_model!r}: {exc}") from None


@lru_cache(maxsize=32)
def _table(
    supernet: str, card_mtime_ns: int, bit_choices: tuple[int, ...], cost_model: str, stamp: tuple[int, int] | None
) -> CostTable:
    costs = cost_table(architecture(supernet), bit_choices, cost_model)
    costs.layers.flags.writeable = False  # shared by every env of the process
    return costs


def cheapest_fraction(costs: CostTable, decide_at: tuple[int, ...] | None) -> float:
    """The cheapest configuration's cost as a fraction of all-8: the lowest budget that can be met.

    A step's layers share one width (``decide_at``), so each step's cheapest action prices them together.
    """
    points = decide_at or tuple(range(len(costs.layers)))
    ends = (*points[1:], len(costs.layers))
    if costs.layers.dtype.kind == "i":  # exact integers, as the uniform cheapest configuration's BitOps
        cheapest = sum(int(costs.layers[p:end].sum(axis=0).min()) for p, end in zip(points, ends))
        return float(cheapest + int(costs.fixed)) / costs.all8
    cheapest_float = sum(float(costs.layers[p:end].sum(axis=0).min()) for p, end in zip(points, ends))
    return (cheapest_float + costs.fixed) / costs.all8


def _budget(value: Any, lowest: float, unit: str = "BitOps") -> float | tuple[float, float] | None:
    """``budget`` validated: None, one fraction in [lowest, 1], or a (low, high) range with low <= high."""
    if value is None:
        return None
    what = "BitOps" if unit == "BitOps" else f"cost ({unit})"
    expected = (
        f"a {what} fraction of the all-8 configuration in [{lowest:.4f}, 1] (the cheapest configuration's "
        "fraction up to 1), or a (low, high) range of them with low <= high"
    )

    def fraction(v: Any) -> bool:
        number = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
        return number and lowest <= v <= 1

    array = isinstance(value, np.ndarray) and value.ndim == 1
    if isinstance(value, (str, bytes)) or not (np.isscalar(value) or isinstance(value, Sequence) or array):
        _fail("budget", value, expected)
    if np.isscalar(value):
        if not fraction(value):
            _fail("budget", value, expected)
        return float(value)  # type: ignore[arg-type]  # fraction() checked it is a real number
    vals = tuple(value.tolist() if isinstance(value, np.ndarray) else value)
    if len(vals) != 2 or not all(fraction(v) for v in vals):
        _fail("budget", value, expected)
    if vals[0] > vals[1]:
        _fail("budget", value, f"low <= high in a (low, high) range: did you mean ({vals[1]}, {vals[0]})?")
    return float(vals[0]), float(vals[1])


def _decision_points(value: Any, num_layers: int) -> tuple[int, ...] | None:
    """``decide_at`` validated: None, or layer indices from 0, strictly increasing, below ``num_layers``."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        value = value.tolist() if value.ndim == 1 else value
    expected = (
        f"None (decide at every layer) or a sequence of layer indices that starts at 0 and increases strictly, "
        f"each in [0, {num_layers - 1}], e.g. (0, 7, 13)"
    )
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        _fail("decide_at", value, expected)
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in value):
        _fail("decide_at", value, expected)
    points = tuple(int(v) for v in value)
    if points[0] != 0 or points[-1] >= num_layers or any(b <= a for a, b in itertools.pairwise(points)):
        _fail("decide_at", value, expected)
    return points


def reward_fn(cfg: EnvConfig, net: Supernet) -> RewardFn:
    """The reward function of validated arguments ``cfg`` on supernet ``net``."""
    assert cfg.bit_choices is not None, "make_config resolves the bit-widths"
    return RewardFn.for_actions(
        cfg.reward, cfg.cost_coef, cfg.gamma, cfg.bit_choices, net.bit_choices, group_size=cfg.group_size
    )


def build_engine(cfg: EnvConfig, num_envs: int) -> EpisodeEngine:
    """Load the supernet and the split (both shared within a process) and build an engine."""
    net = load_supernet(cfg.supernet, device=cfg.device)
    split = load_supernet_split(cfg.supernet, cfg.split, cfg.data_dir)
    reward = reward_fn(cfg, net)
    assert cfg.bit_choices is not None, "make_config resolves the bit-widths"
    costs = table_of(cfg.supernet, cfg.bit_choices, cfg.cost_model)
    decisions = len(cfg.decide_at) if cfg.decide_at is not None else net.num_switchable
    return EpisodeEngine(
        net,
        split,
        cfg.bit_choices,
        reward,
        num_envs,
        cfg.device,
        decide_at=cfg.decide_at,
        costs=costs,
        episode_cache=episode_cache_mb(cfg.episode_cache, decisions, cfg.sampling),
    )


class EpisodeSampler:
    """Chooses each episode's input (and budget) for one env or one sub-env of a vector env.

    Random mode draws the image index, then the budget when it is a range, from ``rng``: the
    single env passes its ``np_random``, sub-env i of a vector env a generator seeded with
    ``seed + i``, so both draw identical sequences. Sequential mode visits images
    ``start, start + stride, ...`` (stride = number of sub-envs), covering the split once.

    Args:
        cfg: the validated environment arguments.
        size: number of images in the split.
        start: first image of the sequential order.
        stride: step between consecutive sequential images.
    """

    def __init__(self, cfg: EnvConfig, size: int, start: int = 0, stride: int = 1) -> None:
        self.cfg, self.size, self.start, self.stride = cfg, size, start, stride
        self.position = start

    def restart(self) -> None:
        """Go back to the beginning of the sequential order (on reset with a seed)."""
        self.position = self.start

    def draw(self, rng: np.random.Generator, index: int | None = None) -> tuple[int, float | None]:
        """(image index, budget) for the next episode; ``index`` overrides the image."""
        if index is None:
            if self.cfg.sampling == "sequential":
                index = self.position % self.size
                self.position += self.stride
            else:
                index = int(rng.integers(self.size))
        elif isinstance(index, (bool, np.bool_)) or not (
            isinstance(index, (int, np.integer)) and 0 <= index < self.size
        ):
            raise EnvCallError(
                f"options['index']={index!r} is not an image of the {self.cfg.split!r} split: "
                f"expected an int in [0, {self.size}) (not a bool)"
            )
        budget = self.cfg.budget
        if isinstance(budget, tuple):
            budget = float(rng.uniform(*budget))
        return int(index), budget
