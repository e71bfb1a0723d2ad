"""Safe files: atomic writes, sha256 checksums, ``weights_only`` loading, and one run per output folder.

Writing: every write goes through a temporary file and an atomic rename, so a reader (or the
next run) sees the old file or the new one, never half of one. When the operating system
refuses a write (disk full, permission lost, file too large), the write raises
:class:`~supernets.foundation.errors.OutputWriteError` naming the path and the reason: the
``abn-gym`` command prints it as one line, and the files already there stay as they were.

Locking: :func:`output_lock` holds an ``flock`` on ``<folder>/.abn-gym.lock`` for as long as a
run writes into the folder. The kernel releases it when the process ends, however it ends
(kill -9 included), so a lock is never stale; a second run on the folder is refused at once,
naming the process that holds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from supernets.foundation.errors import (
    CheckpointError,
    OutputInUseError,
    OutputNotWritableError,
    OutputWriteError,
    UsageError,
    first_line,
)

try:
    import fcntl
except ImportError:  # Windows: no flock; runs on one folder are then not kept apart
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".abn-gym.lock"
"""The lock file :func:`output_lock` keeps in an output folder (it holds the running process's pid and command)."""


def sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_failed(path: str | os.PathLike, exc: OSError) -> OutputWriteError:
    """The project's error for an OS error while writing ``path``: the path, the reason, and what to do."""
    reason = exc.strerror or first_line(exc)
    return OutputWriteError(
        f"could not write {path} ({reason}); the files already there are left as they were. Free some space "
        f"or restore write access to {Path(path).parent}, or choose another --out, then rerun the command"
    )


@contextlib.contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Turn an OS error raised while writing ``path`` (by any library) into :class:`OutputWriteError`."""
    try:
        yield
    except OutputWriteError:
        raise
    except OSError as exc:
        raise write_failed(path, exc) from exc


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    Raises :class:`OutputWriteError` when the system refuses the write (disk full, no permission).
    """
    path = Path(path)
    with writing(path):
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


def _lock_holder(fd: int) -> str:
    """Who holds a lock file: "pid N: command", read from the file (its holder writes it just after locking)."""
    text = ""
    for _ in range(20):  # the holder may have locked the file and not yet written it
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 4096).decode("utf-8", "replace")
        if text.strip():
            break
        time.sleep(0.05)
    pid, _, command = text.strip().partition("\n")
    return f"pid {pid}: {command}" if pid else "pid unknown"


@contextlib.contextmanager
def output_lock(folder: str | os.PathLike) -> Iterator[None]:
    """Hold ``folder`` for one run: a second run on it is refused at once, naming this one.

    The folder is created if missing (and removed again on the way out when the run wrote
    nothing into it). The lock is an ``flock`` on :data:`LOCK_FILE`, released by the kernel when
    the process ends; the file is removed when the run ends normally or with an error.

    Args:
        folder: the run's output folder (``--out``).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--out {folder} is a file, not a folder; choose another --out")
    created = not folder.exists()
    path = folder / LOCK_FILE
    fd = _take_lock(folder, path)
    try:
        with contextlib.suppress(OSError):  # a full disk: the lock holds all the same, unnamed
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n{shlex.join(sys.argv)}\n".encode())
        yield
    finally:
        # Removed while still locked: a run that opened it meanwhile sees it gone and opens a new one.
        with contextlib.suppress(OSError):
            path.unlink()
            if created and not any(folder.iterdir()):
                folder.rmdir()  # refused before writing anything: leave no folder behind
        os.close(fd)


def _take_lock(folder: Path, path: Path) -> int:
    """An open, flocked descriptor of ``path`` (the file that is there now, not one removed meanwhile)."""
    while True:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputNotWritableError(
                f"--out {folder} is not writable ({exc.strerror}); choose another folder"
            ) from None
        if fcntl is None:
            return fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(fd)
            os.close(fd)
            raise OutputInUseError(
                f"--out {folder} is in use by another run ({holder}); wait for it to finish, or choose another --out"
            ) from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the run before removed it between our open and our lock: take the new one


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
