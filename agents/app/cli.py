"""The ``abn-gym`` console script: agent training, bench, validate; mounts ``supernet``, ``perf``, ``zoo`` ...

Every command is generated from its arguments dataclass (:mod:`supernets.foundation.cliargs`):
the options, their defaults and help are the dataclass's fields, written once.

Errors: every error abn-gym raises on purpose derives from
:class:`supernets.foundation.errors.ABNGymError` and is printed as one line (exit status 2), like
argparse's own argument errors. Any other exception is a bug and shows its traceback. That
includes an ``OSError``: the write sites turn the OS's refusals (disk full, permission lost) into
:class:`~supernets.foundation.errors.OutputWriteError` themselves, so an ``OSError`` that reaches
here unconverted is one no write site expected, and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import pandas as pd

from agents.app.bench import BenchArgs, bench, format_markdown
from agents.app.costs import CostColumns
from agents.app.levers import add_levers_command
from agents.app.perf.cli import add_perf_command
from agents.app.static_search import default_out, publish_static, save_result
from agents.app.sweep_bench import curves_markdown
from agents.app.train import bench_command, read_run_card, train_agent
from agents.app.train_args import AgentTrainArgs
from agents.app.train_escalation import add_escalation_command
from agents.app.validate import validate
from agents.app.zoo.cli import add_zoo_command
from agents.controllers import static_configs
from agents.controllers.registry import describe_agent_names
from supernets.cli import add_supernet_commands
from supernets.costs import DEFAULT_COST_MODEL
from supernets.data import check_count
from supernets.families import import_family_modules
from supernets.foundation.cliargs import add_command, add_imports, add_version, arg, dataclass_from_args, positive_int
from supernets.foundation.devices import check_device
from supernets.foundation.errors import ABNGymError
from supernets.registry import DEFAULT_SUPERNET, load_supernet, load_supernet_split, read_supernet_card


def _version() -> str:
    """The installed distribution's version (pyproject's), or a note when run from an uninstalled tree."""
    try:
        return version("abn-gym")
    except PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def _command_line(argv: Sequence[str] | None) -> str:
    return "abn-gym " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))


# the commands' options ------------------------------------------------------------------
@dataclass
class BenchCommand(BenchArgs):
    """The options of ``abn-gym bench``: the bench's arguments, and what the command prints."""

    json: bool = arg(False, "print exactly one JSON object on stdout", action="store_true")
    list_agents: bool = arg(False, "list and explain the accepted agent names, and exit", action="store_true")


@dataclass
class StaticSearchCommand:
    """The options of ``abn-gym static-search``."""

    supernet: str = arg(DEFAULT_SUPERNET, "supernet: a shipped name or a published card DIR/NAME.json")
    limit: int = arg(2000, "val images used by the search", type=positive_int)
    out: str | None = arg(
        None, "directory for static-<name>.json (default: beside a card, where bench finds it; else runs/static-search)"
    )
    publish: bool = arg(
        False,
        "developer step: also replace the shipped agents/policies/static-<supernet>.json (source checkout only)",
        action="store_true",
    )
    resume: str | None = arg(
        None, "a saved static-<name>.json of the same search to continue from its trace's end (same --limit)"
    )
    progress: bool = arg(True, "hide the progress bar", names=("--no-progress",), action="store_false")
    cost_model: str = arg(
        DEFAULT_COST_MODEL, "what a configuration costs: bitops, bitfusion, or a cost table's path (.csv or .json)"
    )
    device: str = arg("cpu", "torch device the supernet runs the search on: cpu or cuda (cuda:<n>)")


@dataclass
class ValidateCommand:
    """The options of ``abn-gym validate``."""

    results: str = arg(help="path to results.json", positional=True)
    json: bool = arg(False, "print exactly one JSON object on stdout", action="store_true")
    progress: bool = arg(True, "hide the progress bar", names=("--no-progress",), action="store_false")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used to document the CLI)."""
    parser = argparse.ArgumentParser(
        prog="abn-gym",
        description="abn-gym: per-input, layer-wise bit-width control of quantized supernets as Gymnasium envs.",
    )
    add_version(parser, f"%(prog)s {_version()}")
    add_imports(parser)
    sub = parser.add_subparsers(dest="abn_gym_command", required=True, metavar="COMMAND")
    add_supernet_commands(sub)
    _add_agent_commands(sub)
    add_perf_command(sub)
    add_zoo_command(sub)
    add_escalation_command(sub)
    add_levers_command(sub)
    return parser


# agents ---------------------------------------------------------------------------------
def _summary(ev: dict | None) -> str:
    """One readable line for an evaluation dict of :func:`agents.app.train.evaluate_on_val`."""
    if not ev:
        return "no evaluation (--eval-episodes 0)"
    return (
        f"{ev['split']} ({ev['episodes']} images): accuracy {100 * ev['accuracy']:.2f}%, "
        f"{ev['bitops'] / 1e9:.4f} GBitOps ({ev['bitops_fraction']:.3f} of all-8), mean return {ev['reward']:.4f}"
    )


def cmd_train(ns: argparse.Namespace) -> int:
    """abn-gym train."""
    path = train_agent(dataclass_from_args(AgentTrainArgs, ns), command=ns.command_line)
    card = read_run_card(path.parent)
    print(f"{card['algo']} on {card['env']}, {card['timesteps']} steps; {_summary(card['val'])}")
    print(f"model: {path} (card: {path.parent / 'card.json'})")  # true of a finished rerun too, which writes nothing
    print(f"on the test split: {bench_command(card, path)}")
    return 0


def cmd_static_search(ns: argparse.Namespace) -> int:
    """abn-gym static-search."""
    args = dataclass_from_args(StaticSearchCommand, ns)
    check_device(args.device)
    net = load_supernet(args.supernet, device=args.device)
    sha = read_supernet_card(args.supernet)["sha256"]
    resume = static_configs.read_resume(args.resume, sha) if args.resume is not None else None
    split = load_supernet_split(args.supernet, "val")
    check_count(args.limit, "val", len(split), "--limit")
    result = static_configs.static_search(
        net, split, limit=args.limit, progress=args.progress, resume=resume, cost_model=args.cost_model
    )
    out = default_out(args.supernet) if args.out is None else args.out
    paths = [save_result(result, out, args.supernet, sha, ns.command_line)]
    if args.publish:
        paths.append(publish_static(paths[0], args.supernet))
    unit = static_configs.result_model(result)["unit"]
    for b, cfg in result["configs"].items():
        cost = (
            f"{result['bitops'][b] / 1e9:.4f} GBitOps (target {result['targets'][b] / 1e9:.4f})"
            if "cost" not in result
            else f"{result['cost'][b]:.6g} {unit} (target {result['targets'][b]:.6g})"
        )
        print(f"static-{b}: {cfg}  val accuracy {100 * result['val_accuracy'][b]:.2f}%  {cost}")
    for b, why in result.get("unmet", {}).items():
        print(f"static-{b}: no row ({why})")
    print("wrote " + " and ".join(str(p) for p in paths))
    return 0


def cmd_bench(ns: argparse.Namespace) -> int:
    """abn-gym bench."""
    command = dataclass_from_args(BenchCommand, ns)
    if command.list_agents:
        print(describe_agent_names())
        return 0
    args = dataclass_from_args(BenchArgs, ns, agents=command.agents)
    result = bench(args)
    if command.json:
        print(json.dumps(result))
        return 0
    cost = CostColumns(result["cost_model"], result["cost_all8"])
    print(cost.line() + "\n\n" + format_markdown(pd.DataFrame(result["rows"]), cost))
    print(curves_markdown(result["curves"]))
    unlisted = [f["agent"] for f in result["front"] if not f["listed"]]
    if unlisted:
        print(f"\nthe static front also held {', '.join(unlisted)} (run, not listed: see results.json's front)")
    print(f"\nwrote {args.out}/results.json, leaderboard.csv, leaderboard.md, pareto.png ({result['env']})")
    return 0


def cmd_validate(ns: argparse.Namespace) -> int:
    """abn-gym validate."""
    args = dataclass_from_args(ValidateCommand, ns)
    report = validate(args.results, progress=args.progress)
    if args.json:
        print(json.dumps(report))
    else:
        for e in report["errors"][:50]:
            print(e)
        print(
            f"{'OK' if report['ok'] else 'FAILED'}: {report['episodes']} episodes replayed, "
            f"{len(report['errors'])} mismatches"
        )
    return 0 if report["ok"] else 1


def _add_agent_commands(sub: argparse._SubParsersAction) -> None:
    add_command(
        sub,
        "train",
        AgentTrainArgs,
        cmd_train,
        help="train an SB3 agent on the batched env (resumable; writes into --out, default runs/ppo)",
        description="Train an SB3 agent. Progress shows the mean return of recent episodes; TensorBoard logs go "
        "to <out>/tensorboard when tensorboard is installed. Rerunning the same command resumes an interrupted "
        "run exactly, and does nothing once it has finished; a larger --timesteps trains a finished run further. A "
        "folder that holds a run with other settings, or that another run is writing into, is refused.",
    )
    add_command(
        sub,
        "bench",
        BenchCommand,
        cmd_bench,
        help="run agents on the same inputs and print the leaderboard",
        description="Run agents on the same images and write the leaderboard into --out. The verdicts (gap to "
        "the static front and to the static mixtures) are judged against every fixed-b and shipped static-b, "
        "listed or not. The output files are replaced as one set at the end; an interrupted run leaves the "
        "previous set as it was, and rerunning the same command reuses the agents it finished (a custom agent "
        "only while every source file it loaded is unchanged). A second bench on an --out in use is refused. "
        "`abn-gym bench --list-agents` explains every accepted agent form.",
    )
    add_command(
        sub,
        "static-search",
        StaticSearchCommand,
        cmd_static_search,
        help="find the static-<b> configurations on the val split",
    )
    add_command(
        sub,
        "validate",
        ValidateCommand,
        cmd_validate,
        help="replay a results.json through the supernet and check every figure",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``abn-gym`` console script."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    ns.command_line = _command_line(argv)
    try:
        import_family_modules(ns.imports)
        return ns.func(ns)
    except (ABNGymError, argparse.ArgumentError) as exc:
        print(f"abn-gym: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("abn-gym: interrupted; finished work is saved (rerun the same command to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
