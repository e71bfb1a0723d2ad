"""Looking up the registered abn-gym ids: what each id fixes, with clear errors for other ids."""

from __future__ import annotations

from typing import Any

import gymnasium

from supernets.foundation.errors import UnknownNameError

VECTOR_ENTRY_POINT = "abn_gym.vector:ABNVectorEnv"

DEFAULT_ENV_ID = "ABN-ResNet-v0"
"""The env id every command and helper uses when none is given."""


def _import_env_module(module: str, env_id: str) -> None:
    import importlib
    import os
    import sys

    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        # A console script does not put the current folder on sys.path; a user's mymodule.py lives there.
        if exc.name == module.split(".")[0] and os.getcwd() not in {os.path.abspath(p) for p in sys.path}:
            sys.path.append(os.getcwd())
            return _import_env_module(module, env_id)
        raise UnknownNameError(
            f"env id {env_id!r}: cannot import module {module!r} ({exc}); it should register the id with "
            "gymnasium.register"
        ) from None


def env_kwargs(env_id: str, **overrides: Any) -> dict[str, Any]:
    """The registered kwargs of ``env_id`` updated with ``overrides`` (clear error on unknown ids).

    Accepts ``"ABN-ResNet-v0"`` and ``"abn_gym:ABN-ResNet-v0"`` alike; like ``gymnasium.make``,
    ``"mymodule:ABN-Mine-v0"`` imports ``mymodule`` first (the current folder is searched too), so
    an id it registers is found.
    """
    import abn_gym  # registers the ids

    if ":" in env_id:
        _import_env_module(env_id.split(":", 1)[0], env_id)
    try:
        spec = gymnasium.spec(env_id.split(":", 1)[-1])
    except gymnasium.error.Error as exc:
        reason = str(exc).rstrip(".")
        raise UnknownNameError(f"unknown env id {env_id!r}: {reason}. abn-gym ids: {sorted(abn_gym.ENV_IDS)}") from None
    if spec.vector_entry_point != VECTOR_ENTRY_POINT:
        raise UnknownNameError(f"{env_id!r} is not an abn-gym environment; use one of {sorted(abn_gym.ENV_IDS)}")
    return {**spec.kwargs, **overrides}
