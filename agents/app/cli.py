"""The ``abn-gym`` console script: agent training, bench, validate; mounts ``supernet`` and ``perf``.

Errors: every error abn-gym raises on purpose derives from
:class:`supernets.foundation.errors.ABNGymError` and is printed as one line (exit status 2), like
argparse's own argument errors. Any other exception is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence

from agents.app.levers import add_levers_command
from agents.app.perf.cli import add_perf_command
from agents.app.train_escalation import add_escalation_command
from agents.app.zoo import add_zoo_command
from supernets.cli import add_supernet_commands
from supernets.foundation.cliargs import add_dataclass_args, dataclass_from_args
from supernets.foundation.errors import ABNGymError, UsageError


def _version() -> str:
    """The installed distribution's version (pyproject's), or a note when run from an uninstalled tree."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("abn-gym")
    except PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def _command_line(argv: Sequence[str] | None) -> str:
    return "abn-gym " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used to document the CLI)."""
    parser = argparse.ArgumentParser(
        prog="abn-gym",
        description="abn-gym: per-input, layer-wise bit-width control of quantized supernets as Gymnasium envs.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_supernet_commands(sub)
    _add_agent_commands(sub)
    add_perf_command(sub)
    add_zoo_command(sub)
    add_escalation_command(sub)
    add_levers_command(sub)
    return parser


# agents ---------------------------------------------------------------------------------
def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _seeds(text: str) -> list[int]:
    """argparse type: comma-separated integer seeds."""
    try:
        return [int(s) for s in text.split(",") if s.strip() != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _summary(ev: dict | None) -> str:
    """One readable line for an evaluation dict of :func:`agents.app.train.evaluate`."""
    if not ev:
        return "no evaluation (--eval-episodes 0)"
    return (
        f"{ev['split']} ({ev['episodes']} images): accuracy {100 * ev['accuracy']:.2f}%, "
        f"{ev['bitops'] / 1e9:.4f} GBitOps ({ev['bitops_fraction']:.3f} of all-8), mean return {ev['reward']:.4f}"
    )


def cmd_train(ns: argparse.Namespace) -> int:
    """abn-gym train."""
    from agents.app.train import AgentTrainArgs, bench_command, read_run_card, train_agent

    path = train_agent(dataclass_from_args(AgentTrainArgs, ns), command=ns.command_line)
    card = read_run_card(path.parent)
    print(f"{card['algo']} on {card['env']}, {card['timesteps']} steps; {_summary(card['val'])}")
    print(f"model: {path} (card: {path.parent / 'card.json'})")  # true of a finished rerun too, which writes nothing
    print(f"on the test split: {bench_command(card, path)}")
    return 0


def cmd_static_search(ns: argparse.Namespace) -> int:
    """abn-gym static-search."""
    from agents.app.static_search import default_out, publish_static, save_result
    from agents.controllers.static_configs import static_search
    from supernets.registry import load_supernet, load_supernet_split, read_supernet_card

    net = load_supernet(ns.supernet)
    result = static_search(net, load_supernet_split(ns.supernet, "val"), limit=ns.limit, progress=not ns.no_progress)
    sha = read_supernet_card(ns.supernet)["sha256"]
    out = default_out(ns.supernet) if ns.out is None else ns.out
    paths = [save_result(result, out, ns.supernet, sha, ns.command_line)]
    if ns.publish:
        paths.append(publish_static(paths[0], ns.supernet))
    for b, cfg in result["configs"].items():
        print(
            f"static-{b}: {cfg}  val accuracy {100 * result['val_accuracy'][b]:.2f}%  "
            f"{result['bitops'][b] / 1e9:.4f} GBitOps (target {result['targets'][b] / 1e9:.4f})"
        )
    print("wrote " + " and ".join(str(p) for p in paths))
    return 0


def cmd_bench(ns: argparse.Namespace) -> int:
    """abn-gym bench."""
    from agents.app.bench import BenchArgs, bench, format_markdown
    from agents.controllers.registry import describe_agent_names

    if ns.list_agents:
        print(describe_agent_names())
        return 0
    agents = [a.strip() for a in (ns.agents or "").split(",") if a.strip()]
    if ns.agents is not None and not agents:
        raise UsageError(
            f"--agents {ns.agents!r} names no agent; list agents separated by commas (e.g. --agents fixed-4,greedy), "
            "or leave out --agents for the default leaderboard"
        )
    args = dataclass_from_args(BenchArgs, ns, agents=agents, progress=not ns.no_progress)
    result = bench(args)
    if ns.json:
        print(json.dumps(result))
        return 0
    import pandas as pd

    print(format_markdown(pd.DataFrame(result["rows"])))
    unlisted = [f["agent"] for f in result["front"] if not f["listed"]]
    if unlisted:
        print(f"\nthe static front also held {', '.join(unlisted)} (run, not listed: see results.json's front)")
    print(f"\nwrote {args.out}/results.json, leaderboard.csv, leaderboard.md, pareto.png ({result['env']})")
    return 0


def cmd_validate(ns: argparse.Namespace) -> int:
    """abn-gym validate."""
    from agents.app.validate import validate

    report = validate(ns.results, progress=not ns.no_progress)
    if ns.json:
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
    from agents.app.train import AgentTrainArgs

    p = sub.add_parser(
        "train",
        help="train an SB3 agent on the batched env (resumable; writes into --out, default runs/ppo)",
        description="Train an SB3 agent. Progress shows the mean return of recent episodes; TensorBoard logs go "
        "to <out>/tensorboard when tensorboard is installed. Rerunning the same command resumes an interrupted "
        "run, and does nothing once it has finished; a larger --timesteps trains a finished run further. A folder "
        "that holds a run with other settings is refused.",
    )
    add_dataclass_args(p, AgentTrainArgs)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "bench",
        help="run agents on the same inputs and print the leaderboard",
        description="Run agents on the same images and write the leaderboard into --out. The verdicts (gap to "
        "the static front and to the static mixtures) are judged against every fixed-b and shipped static-b, "
        "listed or not. The output files are replaced as one set at the end; an interrupted run leaves the "
        "previous set as it was, and rerunning the same command reuses the agents it finished. "
        "`abn-gym bench --list-agents` explains every accepted agent form.",
    )
    p.add_argument(
        "--env",
        default=None,
        help="environment id (default: the env in the listed models' cards, else ABN-ResNet-v0); a model whose "
        "card names another env is refused",
    )
    p.add_argument(
        "--agents",
        default=None,
        help="comma-separated agents: built-in names (random, fixed-<b>, static-<b>, greedy, greedy@<tau>, oracle, "
        "ppo), a trained model's path (runs/ppo/model.zip, algorithm read from its card.json), or "
        "module:Class (found in the current folder too). Default: all baselines + ppo",
    )
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="data split (default: test)")
    p.add_argument("--episodes", type=_positive_int, default=None, help="first N images of the split (default: all)")
    p.add_argument("--seeds", type=_seeds, default=[0], help="comma-separated seeds (default: 0)")
    p.add_argument("--out", default="results", help="output directory (default: results/)")
    p.add_argument("--batch-size", type=_positive_int, default=256, help="episodes computed together (default: 256)")
    p.add_argument(
        "--reference",
        default=None,
        help="row the paired accuracy/reward differences are taken against (default: fixed-8, or the first agent)",
    )
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--list-agents", action="store_true", help="list and explain the accepted agent names, and exit")
    p.add_argument(
        "--supernet", default=None, help="supernet instead of the env's: a shipped name or a card DIR/NAME.json"
    )
    p.add_argument(
        "--static-from",
        default=None,
        help="folder with a `static-search --out` result for the supernet (default: beside its card, else searched)",
    )
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("static-search", help="find the static-<b> configurations on the val split")
    p.add_argument(
        "--supernet", default="resnet20-fashionmnist", help="supernet: a shipped name or a published card DIR/NAME.json"
    )
    p.add_argument("--limit", type=_positive_int, default=2000, help="val images used by the search (default: 2000)")
    p.add_argument(
        "--out",
        default=None,
        help="directory for static-<name>.json (default: beside a card, where bench finds it; else runs/static-search)",
    )
    p.add_argument(
        "--publish",
        action="store_true",
        help="developer step: also replace the shipped agents/policies/static-<supernet>.json (source checkout only)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=cmd_static_search)

    p = sub.add_parser("validate", help="replay a results.json through the supernet and check every figure")
    p.add_argument("results", help="path to results.json")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=cmd_validate)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``abn-gym`` console script."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    ns.command_line = _command_line(argv)
    try:
        return ns.func(ns)
    except (ABNGymError, argparse.ArgumentError) as exc:
        print(f"abn-gym: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("abn-gym: interrupted; finished work is saved (rerun the same command to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
