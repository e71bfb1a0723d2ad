"""The environments' own errors: bad keyword arguments, and bad values given to an env's methods.

They derive from the project's base :class:`~supernets.foundation.errors.ABNGymError`, and from the
builtin Gymnasium expects of environment arguments (``ValueError``, ``TypeError``).
"""

from __future__ import annotations

from supernets.foundation.errors import ABNGymError, UsageError


class EnvArgumentError(UsageError):
    """An environment keyword argument has a value it cannot take."""


class UnknownEnvArgumentError(ABNGymError, TypeError):
    """An environment was given a keyword argument it does not have."""


class EnvCallError(UsageError):
    """An env method (``reset``'s seed or options, ``lookahead``, ``set_attr``...) got a value it cannot take."""


class InvalidActionError(EnvCallError):
    """``step`` got an action that is not in the action space."""


__all__ = ["EnvArgumentError", "EnvCallError", "InvalidActionError", "UnknownEnvArgumentError"]
