"""The one check of a ``--device`` option: a torch device this machine has, or one line that says the fix.

Every command that runs a network on a device (``abn-gym train``, ``bench``, ``static-search``,
``train-escalation``, ``supernet train`` and ``supernet eval``) calls :func:`check_device` before
it loads or computes anything, so a request for CUDA on a machine without it is one
``abn-gym: error:`` line (exit status 2), the same for every command.
"""

from __future__ import annotations

import torch

from supernets.foundation.errors import UsageError


def check_device(device: str, option: str = "--device", auto: bool = False) -> None:
    """Refuse a device this machine lacks (or that is no torch device) with a :class:`UsageError`.

    Args:
        device: the device asked for: ``cpu``, ``cuda``, ``cuda:<n>``, ``mps`` (or ``auto`` when allowed).
        option: the option's name in the message.
        auto: also accept ``auto`` (SB3's own choice: CUDA when there is one).
    """
    if auto and device == "auto":
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        also = " or auto" if auto else ""
        raise UsageError(f"{option} {device!r} is not a torch device; use cpu, cuda, cuda:<n>{also}") from None
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not available.get(dev.type, False):
        raise UsageError(f"{option} {device}: this machine has no {dev.type.upper()} device; use {option} cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UsageError(f"{option} {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
