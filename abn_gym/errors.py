"""The environments' own errors: bad keyword arguments to an env id, a config or the SB3 adapter.

They derive from the project's base :class:`~supernets.foundation.errors.ABNGymError`, and from the
builtin Gymnasium expects of environment arguments (``ValueError``, ``TypeError``).
"""

from __future__ import annotations

from supernets.foundation.errors import ABNGymError, UsageError


class EnvArgumentError(UsageError):
    """An environment keyword argument has a value it cannot take."""


class UnknownEnvArgumentError(ABNGymError, TypeError):
    """An environment was given a keyword argument it does not have."""


__all__ = ["EnvArgumentError", "UnknownEnvArgumentError"]
