"""``abn-gym zoo``: its options (generated from :class:`ZooCommand`) and what it prints."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from agents.app.zoo.hyperparams import export_rl_zoo3, load_hyperparams
from agents.app.zoo.plan import ZooArgs
from agents.app.zoo.runner import zoo
from supernets.foundation.cliargs import add_command, arg, dataclass_from_args


@dataclass
class ZooCommand(ZooArgs):
    """The options of ``abn-gym zoo``: the zoo's arguments, and what the command does with them."""

    export_rl_zoo3: str | None = arg(None, "write rl-zoo3's per-algorithm files, and exit", metavar="DIR")
    json: bool = arg(False, "print exactly one JSON object (the summary) on stdout", action="store_true")


def add_zoo_command(sub: argparse._SubParsersAction) -> None:
    """Register ``abn-gym zoo``."""
    add_command(
        sub,
        "zoo",
        ZooCommand,
        cmd_zoo,
        help="train every SB3 algorithm of agents/hyperparams/zoo.yml on several seeds, with curves and leaderboards",
        description="Train the algorithm zoo (hyper-parameters in rl-zoo3's format, agents/hyperparams/zoo.yml), "
        "record val learning curves, and put each final policy on a leaderboard with rliable's IQM over seeds. "
        "Resumable: rerunning skips finished runs and resumes interrupted ones.",
        skip=("command",),
    )


def cmd_zoo(ns: argparse.Namespace) -> int:
    """abn-gym zoo."""
    command = dataclass_from_args(ZooCommand, ns, command=getattr(ns, "command_line", ""))
    if command.export_rl_zoo3:
        for path in export_rl_zoo3(load_hyperparams(command.conf), command.export_rl_zoo3):
            print(path)
        return 0
    args = dataclass_from_args(ZooArgs, ns, command=command.command)
    summary = zoo(args)
    if command.json:
        print(json.dumps(summary))
        return 0
    for rep in summary["leaderboards"]:
        print(f"\n{rep['env']}\n")
        print((Path(args.out) / f"leaderboard-{rep['env']}.md").read_text())
    print(f"wrote {args.out}/zoo.md, summary.json, curves.csv, leaderboard-<env>.{{csv,md}}, curves-<env>.png")
    return 0
