"""How ``abn-gym bench`` writes its output files as one set, and resumes an interrupted run.

A run works in ``<out>/.bench-partial``: each agent it finishes is saved there at once, in a file
of its own (``agent-<key>.json``, written atomically, so a finished agent costs one small write
rather than rewriting all the records so far); the finished set of output files is built there
too, and moved into ``<out>`` as one at the end, so an interrupted run leaves the previous set
untouched. Rerunning the same command reuses the agents the interrupted run finished: those whose
fingerprint (what their episodes depend on) and the run's settings are the same.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import shutil
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from agents.controllers.registry import SHIPPED_POLICIES, is_model_path, shipped_policy
from supernets.foundation.files import atomic_write_json, sha256

PARTIAL = ".bench-partial"
"""Folder inside ``--out`` where a run builds its set of files (and an interrupted run's finished agents wait)."""
AGENT_FILE = "agent-{key}.json"
"""One finished agent of an unfinished run, inside :data:`PARTIAL`."""


def agent_fingerprint(spec: str, agent: Any, env_id: str) -> str | None:
    """What an agent's episodes depend on besides the bench's settings; None: never reuse them.

    Args:
        spec: the agent as ``--agents`` names it.
        agent: the agent made from it.
        env_id: the env the bench runs.
    """
    if is_model_path(spec):
        return f"{spec}#{sha256(spec)}"
    if ":" in spec:
        try:
            source = inspect.getsourcefile(type(agent))
        except TypeError:
            source = None
        return f"{spec}#{sha256(source)}" if source and os.path.isfile(source) else None
    if hasattr(agent, "config"):
        return f"{spec}#{list(agent.config)}"
    base = spec.split("@", 1)[0]
    if base in SHIPPED_POLICIES:
        return f"{spec}#{sha256(shipped_policy(base, env_id))}"
    return spec


def _agent_path(partial: Path, fingerprint: str) -> Path:
    key = hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
    return partial / AGENT_FILE.format(key=key)


def _plain(settings: dict) -> Any:
    """``settings`` as they read back from JSON (tuples become lists), to compare with a saved copy."""
    return json.loads(json.dumps(settings, default=str))


def save_finished(partial: Path, settings: dict, entry: dict[str, Any]) -> None:
    """Keep one finished agent for a rerun: its own file in ``partial``, written atomically.

    An agent without a fingerprint is not kept: its episodes are never reused.

    Args:
        partial: the run's :data:`PARTIAL` folder.
        settings: the run's settings (env, split, episodes, seeds, batch size, supernet).
        entry: ``{"fingerprint", "name", "meta", "records"}`` of the agent.
    """
    if entry["fingerprint"] is None:
        return
    atomic_write_json(_agent_path(partial, entry["fingerprint"]), {"settings": settings, **entry})


def forget_finished(partial: Path, fingerprint: str) -> None:
    """Remove one finished agent from ``partial``: a rerun computes it again (a row refused by the replay).

    Args:
        partial: the run's :data:`PARTIAL` folder.
        fingerprint: the agent's fingerprint.
    """
    _agent_path(partial, fingerprint).unlink(missing_ok=True)


def load_finished(partial: Path, settings: dict) -> dict[str, dict[str, Any]]:
    """An interrupted run's finished agents, when it ran with the same settings: {fingerprint: entry}.

    Files of a run with other settings (and unreadable ones) are removed: they can never be reused.

    Args:
        partial: the run's :data:`PARTIAL` folder.
        settings: this run's settings.
    """
    if not partial.is_dir():
        return {}
    wanted = _plain(settings)
    found: dict[str, dict[str, Any]] = {}
    (partial / "partial.json").unlink(missing_ok=True)  # the single-file form of older versions
    for path in sorted(partial.glob(AGENT_FILE.format(key="*"))):
        try:
            doc = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            doc = None
        if not isinstance(doc, dict) or doc.get("settings") != wanted or not doc.get("fingerprint"):
            path.unlink(missing_ok=True)
            continue
        found[doc["fingerprint"]] = {k: doc[k] for k in ("fingerprint", "name", "meta", "records")}
    return found


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold Ctrl-C while a set of files is moved into place, so the set is never half old, half new."""
    caught: list[bool] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda *_: caught.append(True))
    except ValueError:  # not the main thread: no signals here to defer
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            raise KeyboardInterrupt


def commit_set(partial: Path, out: Path, files: Sequence[str]) -> None:
    """Move a finished set of files from ``partial`` into ``out``, replacing the previous set as one.

    Args:
        partial: the run's :data:`PARTIAL` folder, which holds the set (removed afterwards).
        out: the output folder.
        files: the names of the set's files.
    """
    with _sigint_deferred():
        for old in out.glob("heatmap-*.png"):
            if old.name not in files:
                old.unlink()  # the previous set's heatmap of an agent this set does not plot
        for name in files:
            os.replace(partial / name, out / name)
        shutil.rmtree(partial, ignore_errors=True)
