"""Agent names accepted by ``abn-gym bench --agents``: baselines, shipped policies, user classes."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.base import Agent, check_agent
from agents.baselines import FixedAgent, GreedyAgent, OracleAgent, RandomAgent, StaticAgent
from agents.static_search import DEFAULT_TARGETS, load_shipped, static_search
from supernets.checkpoint import CheckpointError, sha256
from supernets.data import load_split
from supernets.registry import load_supernet, read_card

POLICY_DIR = Path(__file__).resolve().parent / "policies"
FIXED_BITS = (2, 3, 4, 5, 6, 7, 8)
SHIPPED_POLICIES = {"ppo": ("ppo", "ppo-ABN-ResNet-v0")}
"""Leaderboard name -> (algo, file stem in agents/policies) of shipped trained agents."""


@dataclass(frozen=True)
class BenchContext:
    """What agent factories may need to know about the benchmarked environment."""

    env_id: str
    supernet: str
    bit_choices: tuple[int, ...]


def default_agent_names() -> list[str]:
    """The default leaderboard: every baseline plus the shipped PPO policy."""
    names = [
        "random",
        *(f"fixed-{b}" for b in FIXED_BITS),
        *(f"static-{b}" for b in DEFAULT_TARGETS),
        "greedy",
        "oracle",
    ]
    names += [n for n, (_, stem) in SHIPPED_POLICIES.items() if (POLICY_DIR / f"{stem}.zip").is_file()]
    return names


def known_agent_names() -> list[str]:
    """Every built-in name (user classes are given as ``module:Class``)."""
    return [
        "random",
        *(f"fixed-{b}" for b in FIXED_BITS),
        *(f"static-{b}" for b in DEFAULT_TARGETS),
        "greedy",
        "greedy@<tau>",
        "oracle",
        *SHIPPED_POLICIES,
    ]


_STATIC_CACHE: dict[tuple, dict] = {}


def static_configs(ctx: BenchContext, progress: bool = True) -> dict:
    """Static search result for the env's supernet and action set: shipped if it matches, else searched."""
    sha = read_card(ctx.supernet)["sha256"]
    key = (ctx.supernet, sha, ctx.bit_choices)
    if key not in _STATIC_CACHE:
        shipped = load_shipped(ctx.supernet, sha, ctx.bit_choices)
        if shipped is None:
            net = load_supernet(ctx.supernet)
            shipped = static_search(net, load_split("val"), DEFAULT_TARGETS, ctx.bit_choices, progress=progress)
        _STATIC_CACHE[key] = shipped
    return _STATIC_CACHE[key]


def verify_policy(path: Path, ctx: BenchContext) -> dict:
    """Check a shipped policy against its model card: checksum, and the supernet it was trained on."""
    card_path = path.with_suffix(".json")
    if not card_path.is_file():
        raise CheckpointError(f"policy {path} has no model card {card_path.name}; refusing to load it")
    card = json.loads(card_path.read_text())
    if sha256(path) != card.get("sha256"):
        raise CheckpointError(f"policy {path} does not match the sha256 in {card_path.name}: corrupt or replaced")
    trained_on = card.get("supernet_sha256")
    current = read_card(ctx.supernet)["sha256"]
    if trained_on is not None and trained_on != current:
        raise CheckpointError(
            f"policy {path} was trained on another version of {ctx.supernet}; retrain it with "
            f"`{card.get('command') or 'abn-gym train'}`"
        )
    return card


def load_user_agent(spec: str) -> Agent:
    """Instantiate ``package.module:ClassName`` (no arguments) and check it follows the protocol."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(f"cannot import agent module {module_name!r} from {spec!r}: {exc}") from None
    if not hasattr(module, attr):
        raise ValueError(f"module {module_name!r} has no attribute {attr!r} (from agent spec {spec!r})")
    obj = getattr(module, attr)
    agent = obj() if isinstance(obj, type) else obj
    return check_agent(agent)


def make_agent(name: str, ctx: BenchContext, progress: bool = True) -> Any:
    """An agent from its leaderboard name or a ``module:Class`` spec."""
    if ":" in name:
        return load_user_agent(name)
    if name == "random":
        return RandomAgent()
    if name.startswith("fixed-") and name[6:].isdigit():
        bits = int(name[6:])
        if bits not in ctx.bit_choices:
            raise ValueError(f"{name}: {bits} bits is not an action of {ctx.env_id} (bit_choices={ctx.bit_choices})")
        return FixedAgent(bits)
    if name.startswith("static-") and name[7:] in {str(b) for b in DEFAULT_TARGETS}:
        return StaticAgent(static_configs(ctx, progress)["configs"][name[7:]], name)
    if name == "greedy" or name.startswith("greedy@"):
        agent = GreedyAgent(float(name.split("@", 1)[1])) if "@" in name else GreedyAgent()
        agent.name = name
        return agent
    if name == "oracle":
        return OracleAgent()
    if name in SHIPPED_POLICIES:
        from agents.sb3_agent import SB3Agent

        algo, stem = SHIPPED_POLICIES[name]
        path = POLICY_DIR / f"{stem}.zip"
        if not path.is_file():
            raise ValueError(f"the shipped policy {path} is missing; train one with `abn-gym train` first")
        verify_policy(path, ctx)
        return SB3Agent.load(path, algo, name)
    raise ValueError(
        f"unknown agent {name!r}; known agents: {', '.join(known_agent_names())}, "
        "or a class given as package.module:ClassName"
    )
