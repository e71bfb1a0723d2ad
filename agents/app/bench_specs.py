"""What ``abn-gym bench --agents`` lists: the entries, each agent named once, and the env they run on."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from abn_gym.registration import DEFAULT_ENV_ID
from agents.controllers.model_agents import is_model_path, model_env
from supernets.foundation.errors import UsageError


def parse_agents(text: str) -> list[str]:
    """``--agents`` as a list of names; a list that names no agent is refused (leave the option out instead)."""
    agents = [a.strip() for a in text.split(",") if a.strip()]
    if not agents:
        raise UsageError(
            f"--agents {text!r} names no agent; list agents separated by commas (e.g. --agents fixed-4,greedy), "
            "or leave out --agents for the default leaderboard"
        )
    return agents


def resolve_env(env: str | None, specs: Sequence[str], trust_card_env: bool = False) -> tuple[str, dict[str, Any]]:
    """The env id and argument overrides the bench runs: ``env`` if given, else the listed models' card env.

    Models of different envs are refused without ``--env``; with it, each loader refuses a disagreeing card.
    """
    if env is not None:
        return env, {}
    found: dict[str, tuple[str, dict[str, Any]]] = {s: model_env(s, trust_card_env) for s in specs if is_model_path(s)}
    envs = {json.dumps([e, o], sort_keys=True, default=str) for e, o in found.values()}
    if len(envs) > 1:
        listing = "; ".join(f"{s}: {e}" + (f" {o}" if o else "") for s, (e, o) in found.items())
        raise UsageError(
            f"the listed models belong on different envs ({listing}); one bench runs one env: "
            "benchmark them separately, each on its own env"
        )
    return next(iter(found.values()), (DEFAULT_ENV_ID, {}))


def _spec_key(spec: str) -> str:
    """What identifies an ``--agents`` entry: a model path by its file, anything else by its text."""
    return str(Path(spec).resolve()) if is_model_path(spec) else spec


def check_specs(specs: Sequence[str]) -> None:
    """Refuse an ``--agents`` list that names one agent twice (a model file under two paths included)."""
    seen: dict[str, str] = {}
    for spec in specs:
        key = _spec_key(spec)
        if key in seen:
            also = "" if seen[key] == spec else f" (as {seen[key]!r} and {spec!r})"
            raise UsageError(
                f"--agents lists {spec!r} twice{also}; one name, one row: list each agent once "
                "(--seeds gives more episodes per image)"
            )
        seen[key] = spec
