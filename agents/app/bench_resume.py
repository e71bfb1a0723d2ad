"""How ``abn-gym bench`` writes its output files as one set, and resumes an interrupted run.

A run works in ``<out>/.bench-partial``: each agent it finishes is saved there at once, in a file
of its own (``agent-<key>.json``, written atomically, so a finished agent costs one small write
rather than rewriting all the records so far); the finished set of output files is built there
too, and moved into ``<out>`` as one at the end, so an interrupted run leaves the previous set
untouched. Rerunning the same command reuses the agents the interrupted run finished: those whose
fingerprint (what their episodes depend on) and the run's settings are the same.

For a custom agent (``module:Class``), what its episodes depend on is every module it loaded
from outside the installed packages (the standard library, site-packages and abn-gym's own
packages are installed; a helper module in the user's folder is not):
:func:`~agents.controllers.sources.user_module_files` lists them after the agent ran (in its
worker process, when it ran in one), :func:`~agents.controllers.sources.fingerprint_sources`
hashes them, and the entry keeps those hashes. A rerun reuses the agent's rows only while every
one of those files is unchanged (:func:`reusable`); otherwise it runs the agent again and prints
one line naming what changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import shutil
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from agents.controllers.model_agents import is_model_path, model_file
from agents.controllers.registry import SHIPPED_POLICIES, shipped_policy
from agents.controllers.sources import changed_sources, fingerprint_sources, user_module_files
from supernets.foundation.files import atomic_write_json, sha256, writing

PARTIAL = ".bench-partial"
"""Folder inside ``--out`` where a run builds its set of files (and an interrupted run's finished agents wait)."""
CUSTOM = "#custom"
"""The end of a custom agent's fingerprint: what it depends on is its entry's ``sources``."""
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
        return f"{spec}#{sha256(model_file(spec))}"
    if ":" in spec:
        # Which files it depends on is known only once it ran: they are the entry's "sources".
        try:
            source = inspect.getsourcefile(type(agent))
        except TypeError:
            source = None
        return f"{spec}{CUSTOM}" if source and os.path.isfile(source) else None
    if hasattr(agent, "config"):
        return f"{spec}#{list(agent.config)}"
    base = spec.split("@", 1)[0]
    if base in SHIPPED_POLICIES:
        return f"{spec}#{sha256(shipped_policy(base, env_id))}"
    return spec


def reusable(finished: Mapping[str, dict[str, Any]], fingerprint: str | None, name: str) -> dict[str, Any] | None:
    """The interrupted run's entry of an agent, when it can be reused; else None.

    An entry whose source files changed is not reused, and one stderr line says which changed.

    Args:
        finished: :func:`load_finished`'s entries.
        fingerprint: the agent's :func:`agent_fingerprint`.
        name: the agent's row name (for the message).
    """
    if fingerprint is None or fingerprint not in finished:
        return None
    entry = finished[fingerprint]
    sources = entry.get("sources") or {}
    if fingerprint.endswith(CUSTOM) and not sources:  # a custom agent's files were not recorded: never trust it
        print(f"bench: recomputing {name!r}: the source files it loaded were not recorded", file=sys.stderr)
        return None
    changed = changed_sources(sources)
    if changed:
        shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        print(f"bench: recomputing {name!r}: its source changed since the interrupted run ({shown})", file=sys.stderr)
        return None
    return entry


def _agent_path(partial: Path, fingerprint: str) -> Path:
    key = hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
    return partial / AGENT_FILE.format(key=key)


def _plain(settings: dict) -> Any:
    """``settings`` as they read back from JSON (tuples become lists), to compare with a saved copy."""
    return json.loads(json.dumps(settings, default=str))


def save_finished(partial: Path, settings: dict, entry: dict[str, Any], spec: str = "") -> None:
    """Keep one finished agent for a rerun: its own file in ``partial``, written atomically.

    An agent without a fingerprint is not kept: its episodes are never reused. A custom agent's
    entry keeps ``"sources"``, the hashes of the user's files it loaded: the entry's own when it
    has them (an agent that ran in another process reports its :func:`user_module_files` from
    there, hashed here with :func:`fingerprint_sources`), else this process's, so call this after
    the agent ran.

    Args:
        partial: the run's :data:`PARTIAL` folder.
        settings: the run's settings (env, split, episodes, seeds, batch size, supernet).
        entry: ``{"fingerprint", "name", "meta", "records"}`` of the agent, and optionally ``"sources"``.
        spec: the agent as ``--agents`` names it (``module:Class`` marks a custom agent).
    """
    if entry["fingerprint"] is None:
        return
    if "sources" not in entry and ":" in spec and not is_model_path(spec):
        entry = {**entry, "sources": fingerprint_sources(user_module_files())}
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
        found[doc["fingerprint"]]["sources"] = doc.get("sources") or {}
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
    with _sigint_deferred(), writing(out):
        for old in [*out.glob("heatmap-*.png"), *out.glob("curves.png")]:
            if old.name not in files:
                old.unlink()  # the previous set's plot of an agent (or curves) this set does not plot
        for name in files:
            os.replace(partial / name, out / name)
        shutil.rmtree(partial, ignore_errors=True)
