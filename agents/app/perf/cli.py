"""The ``abn-gym perf`` command, mounted by the ``abn-gym`` entry point (:mod:`agents.app.cli`)."""

from __future__ import annotations

import argparse

from agents.app.perf.measure import PerfArgs
from agents.app.perf.report import main


def cmd_perf(ns: argparse.Namespace) -> int:
    """abn-gym perf."""
    return main(PerfArgs(json=ns.json, quick=ns.quick, device=ns.device, include_bench=ns.include_bench, out=ns.out))


def add_perf_command(sub: argparse._SubParsersAction) -> None:
    """Add ``perf`` to a parser's subcommands."""
    p = sub.add_parser("perf", help="throughput benchmark: raw forward vs native vector env vs Sync vs SB3")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.add_argument("--quick", action="store_true", help="fewer sizes and repetitions (a smoke run)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--include-bench", action="store_true", help="also time `abn-gym bench` with its defaults (f)")
    p.add_argument("--out", default=None, help="also write perf.json and perf.md into this directory")
    p.set_defaults(func=cmd_perf)
