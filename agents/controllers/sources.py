"""Which source files a user's agent depends on: the modules it loaded from outside the installation.

A resumed bench reuses a custom agent's rows only when these files are unchanged
(:mod:`agents.app.bench_resume`); an agent in a worker process reports them from there
(:mod:`agents.controllers.worker`).
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig
from collections.abc import Iterable, Mapping
from typing import Any

from supernets.foundation.files import sha256


def installed_prefixes() -> tuple[str, ...]:
    """Folders whose modules count as installed: the standard library, site-packages, abn-gym's own packages."""
    paths = sysconfig.get_paths()
    found = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    # Not sys.prefix itself: a project folder may lie under it (/usr/local/app in a container).
    found |= {*site.getsitepackages(), site.getusersitepackages()}
    for name in ("agents", "abn_gym", "supernets"):  # our own, wherever they are imported from (a checkout too)
        file = getattr(sys.modules.get(name), "__file__", None)
        if file:
            found.add(os.path.dirname(file))
    return tuple(sorted(os.path.realpath(p) + os.sep for p in found if p))


def user_module_files(modules: Mapping[str, Any] | None = None) -> list[str]:
    """The source files of the loaded modules that lie outside :func:`installed_prefixes`, sorted.

    Call it after the agent was made and after it ran, in the process that ran it: those are
    the files its episodes can depend on besides the installed packages. Compiled and built-in
    modules without a source file are left out.

    Args:
        modules: the loaded modules (default: ``sys.modules``).
    """
    prefixes = installed_prefixes()
    files: set[str] = set()
    for module in list((sys.modules if modules is None else modules).values()):
        path = getattr(module, "__file__", None)
        if not isinstance(path, str) or not path.endswith(".py"):
            continue
        real = os.path.realpath(path)
        if not real.startswith(prefixes) and os.path.isfile(real):
            files.add(real)
    return sorted(files)


def fingerprint_sources(paths: Iterable[str]) -> dict[str, str | None]:
    """``{path: sha256}`` of source files (None for one that cannot be read), to compare on a rerun.

    Args:
        paths: the files, e.g. :func:`user_module_files` of the process that ran a custom agent.
    """
    found: dict[str, str | None] = {}
    for path in sorted(set(paths)):
        try:
            found[path] = sha256(path)
        except OSError:
            found[path] = None
    return found


def changed_sources(sources: Mapping[str, str | None]) -> list[str]:
    """The files of ``sources`` (from :func:`fingerprint_sources`) that changed, or vanished, since."""
    now = fingerprint_sources(sources)
    return [p for p, digest in sources.items() if digest is None or now[p] != digest]
