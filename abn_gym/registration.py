"""Looking up the registered abn-gym ids: what each id fixes, with clear errors for other ids."""

from __future__ import annotations

from typing import Any

import gymnasium

from supernets.errors import UnknownNameError

VECTOR_ENTRY_POINT = "abn_gym.vector:ABNVectorEnv"


def env_kwargs(env_id: str, **overrides: Any) -> dict[str, Any]:
    """The registered kwargs of ``env_id`` updated with ``overrides`` (clear error on unknown ids).

    Accepts ``"ABN-ResNet-v0"`` and ``"abn_gym:ABN-ResNet-v0"`` alike.
    """
    import abn_gym  # registers the ids

    try:
        spec = gymnasium.spec(env_id.split(":", 1)[-1])
    except gymnasium.error.Error as exc:
        reason = str(exc).rstrip(".")
        raise UnknownNameError(f"unknown env id {env_id!r}: {reason}. abn-gym ids: {sorted(abn_gym.ENV_IDS)}") from None
    if spec.vector_entry_point != VECTOR_ENTRY_POINT:
        raise UnknownNameError(f"{env_id!r} is not an abn-gym environment; use one of {sorted(abn_gym.ENV_IDS)}")
    return {**spec.kwargs, **overrides}
