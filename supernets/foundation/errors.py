"""The project's own errors: one base class, so that a mistake can be told from a bug.

Every error abn-gym raises on purpose, because of something the user gave it (an argument,
a file, a name), derives from :class:`ABNGymError`; its message says what to do. The
``abn-gym`` command prints such errors as one line and exits with 2; any other exception is
a bug and shows its traceback. Each class also derives from the builtin that callers caught
before (``ValueError``, ``TypeError``, ``KeyError``, ``FileNotFoundError``, ...), so existing
``except`` clauses keep working, as Gymnasium expects ``ValueError``/``TypeError`` from
environment arguments. The errors of ``supernets``, ``abn_gym`` and ``agents`` derive from the same
base; each package keeps its own subclasses (``abn_gym.errors``, ``supernets.data``).
"""

from __future__ import annotations


class ABNGymError(Exception):
    """Base class of every error abn-gym raises on purpose; the message says the fix."""

    def __str__(self) -> str:
        # One plain message for every subclass (KeyError would otherwise quote it).
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class UsageError(ABNGymError, ValueError):
    """A value the user gave (an option, a name, a path) cannot be used."""


class UnknownNameError(ABNGymError, KeyError, ValueError):
    """A name (supernet, env id, agent) is not known; the message lists the known ones.

    A ``KeyError`` for registry lookups, and a ``ValueError`` for callers that caught those before.
    """


class CheckpointError(ABNGymError, RuntimeError):
    """A checkpoint is missing, corrupt, tampered with, or for a different architecture."""


class OutputNotWritableError(ABNGymError, PermissionError):
    """An output directory cannot be written."""


class OutputWriteError(ABNGymError, OSError):
    """Writing an output file failed in the operating system (disk full, permission lost, file too large)."""


class OutputInUseError(ABNGymError, RuntimeError):
    """Another run is writing into the same output folder."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type name when the message is empty)."""
    lines = str(exc).strip().splitlines()
    return lines[0][:limit] if lines else type(exc).__name__


__all__ = [
    "ABNGymError",
    "CheckpointError",
    "OutputInUseError",
    "OutputNotWritableError",
    "OutputWriteError",
    "UnknownNameError",
    "UsageError",
    "first_line",
]
