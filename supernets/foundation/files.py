"""Safe files: atomic writes, sha256 checksums, and ``weights_only`` loading of checkpoints."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from supernets.foundation.errors import CheckpointError, UsageError, first_line


def sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file 0600; a published file should be readable like any other.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Atomic text write (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomic JSON write, indented, with a trailing newline."""
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def torch_bytes(obj: Any) -> bytes:
    """``torch.save`` of ``obj`` as bytes: the same object always gives the same bytes.

    Saved to a file, torch names the archive's inner folder after the file, so saving through a
    randomly named temporary file gave other bytes (and another sha256) for the same weights.
    In memory the folder is always ``archive``.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through a temporary file and an atomic rename; byte-reproducible."""
    atomic_write_bytes(path, torch_bytes(obj))


TOP_LEVEL_PACKAGES = ("supernets", "abn_gym", "agents")
"""The wheel's top-level import names."""

RESTORE_FIX = "Restore it with `git checkout -- <path>`, or write it again with the command that made it."
"""What a sha256 mismatch tells the user to do, unless the caller knows the file's command."""


def safe_load(path: str | os.PathLike, expected_sha256: str | None = None, fix: str = RESTORE_FIX) -> Any:
    """Load a checkpoint with ``weights_only=True``, after checking its sha256 when given.

    Args:
        path: the checkpoint file.
        expected_sha256: refuse the file unless its sha256 is this (None: no check).
        fix: what the sha256 mismatch message tells the user to do.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if expected_sha256 is not None:
        actual = sha256(path)
        if actual != expected_sha256:
            raise CheckpointError(
                f"checkpoint {path} has sha256 {actual[:16]}..., but its model card expects "
                f"{expected_sha256[:16]}...: the file is corrupt or was replaced. {fix}"
            )
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): it was truncated or never written")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint {path} could not be read ({type(exc).__name__}: {first_line(exc)}). "
            "It is corrupt, truncated, or not a plain state-dict checkpoint."
        ) from None


def check_source_checkout(target: Path, module_file: str | None = None) -> None:
    """Refuse to publish into an installed package: publishing is a developer step in a source checkout.

    Args:
        target: what would be written (named in the message).
        module_file: a file of a top-level package of the project (default: this one).
    """
    here = Path(module_file or __file__).resolve()
    # The checkout's root holds the top-level package that holds the file, however deep the file sits.
    root = next((p.parent for p in here.parents if p.name in TOP_LEVEL_PACKAGES), here.parent.parent)
    if not (root / "pyproject.toml").is_file() or "site-packages" in root.parts:
        raise UsageError(
            f"publishing writes into the package ({target}), which is not a source checkout here; "
            "keep your results in your own folder, or publish from a clone of the repository"
        )
