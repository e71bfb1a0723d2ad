"""The ``abn-gym perf`` command, mounted by the ``abn-gym`` entry point (:mod:`agents.app.cli`)."""

from __future__ import annotations

import argparse

from agents.app.perf.measure import PerfArgs
from agents.app.perf.report import main
from supernets.foundation.cliargs import add_command, dataclass_from_args


def cmd_perf(ns: argparse.Namespace) -> int:
    """abn-gym perf."""
    return main(dataclass_from_args(PerfArgs, ns))


def add_perf_command(sub: argparse._SubParsersAction) -> None:
    """Add ``perf`` to a parser's subcommands."""
    add_command(
        sub, "perf", PerfArgs, cmd_perf, help="throughput benchmark: raw forward vs native vector env vs Sync vs SB3"
    )
