"""The ``abn-gym`` console script: supernet train/eval/publish, agent training, bench, validate, perf."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable, Sequence

from supernets.checkpoint import CheckpointError
from supernets.cliargs import add_dataclass_args, dataclass_from_args
from supernets.data import DatasetNotFoundError

Handler = Callable[[argparse.Namespace], int]


def _command_line(argv: Sequence[str] | None) -> str:
    return "abn-gym " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))


# supernet ---------------------------------------------------------------------------------
def cmd_supernet_train(ns: argparse.Namespace) -> int:
    """abn-gym supernet train."""
    from supernets.train import TrainArgs, train

    final = train(dataclass_from_args(TrainArgs, ns))
    print(f"wrote {final}")
    return 0


def cmd_supernet_eval(ns: argparse.Namespace) -> int:
    """abn-gym supernet eval."""
    from supernets.data import load_split
    from supernets.registry import load_supernet, read_card
    from supernets.report import eval_table, format_table

    net = load_supernet(ns.name, device=ns.device, checkpoint=ns.checkpoint)
    split = load_split(ns.split, ns.data_dir)
    report = eval_table(net, split, ns.name, ns.limit, progress=not ns.no_progress)
    if ns.json:
        print(json.dumps(report))
        return 0
    reference = None
    if ns.checkpoint is None and ns.split == "test" and ns.limit is None:
        reference = read_card(ns.name).get("float_reference", {}).get("accuracy")
    print(f"{ns.name} on {report['split']} ({report['n']} images)")
    print(format_table(report, reference))
    return 0


def cmd_supernet_publish(ns: argparse.Namespace) -> int:
    """abn-gym supernet publish."""
    from supernets.data import load_split
    from supernets.report import format_table, publish

    card = publish(ns.run, ns.float_run, load_split("test", ns.data_dir), ns.name, ns.command, ns.float_command)
    print(format_table(card["eval"], card["float_reference"]["accuracy"]))
    print(f"sha256 {card['sha256']}")
    return 0


def cmd_supernet_sweep(ns: argparse.Namespace) -> int:
    """abn-gym supernet sweep."""
    from supernets.sweep import SweepArgs, sweep

    args = dataclass_from_args(SweepArgs, ns)
    sweep(args)
    print(f"wrote {args.report}.json and {args.report}.md")
    return 0


def _add_supernet(sub: argparse._SubParsersAction) -> None:
    from supernets.registry import available_supernets
    from supernets.train import TrainArgs

    sp = sub.add_parser("supernet", help="train, evaluate and publish the weight-shared supernets")
    ssub = sp.add_subparsers(dest="supernet_command", required=True, metavar="{train,eval,publish,sweep}")
    p = ssub.add_parser("train", help="train the supernet (or its full-precision reference); resumable")
    add_dataclass_args(p, TrainArgs)
    p.set_defaults(func=cmd_supernet_train)

    p = ssub.add_parser("eval", help="accuracy and BitOps of uniform and random configurations")
    p.add_argument("--name", default="resnet20-fashionmnist", help=f"supernet, one of {available_supernets()}")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="data split (default: test)")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N images")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.add_argument("--checkpoint", default=None, help="evaluate this checkpoint file instead of the shipped one")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST directory (default: ABN_DATA_DIR, Debian package)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=cmd_supernet_eval)

    p = ssub.add_parser("publish", help="ship a finished run: checkpoint + model card in supernets/checkpoints")
    p.add_argument("--run", required=True, help="supernet run directory (holds final.pt)")
    p.add_argument("--float-run", required=True, help="full-precision reference run directory (holds final.pt)")
    p.add_argument("--name", default="resnet20-fashionmnist", help="registry name to publish as")
    p.add_argument("--command", default="", help="the training command, recorded in the model card")
    p.add_argument("--float-command", default="", help="the reference's training command, for the card")
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST directory")
    p.set_defaults(func=cmd_supernet_publish)

    from supernets.sweep import SweepArgs

    p = ssub.add_parser("sweep", help="capacity sweep: short training of several widths, uniform-2/4/8 on val")
    add_dataclass_args(p, SweepArgs)
    p.set_defaults(func=cmd_supernet_sweep)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used to document the CLI)."""
    parser = argparse.ArgumentParser(
        prog="abn-gym",
        description="abn-gym: per-input, layer-wise bit-width control of quantized supernets as Gymnasium envs.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_supernet(sub)
    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


# agents ---------------------------------------------------------------------------------
def cmd_train(ns: argparse.Namespace) -> int:
    """abn-gym train."""
    from agents.train import AgentTrainArgs, train_agent

    path = train_agent(dataclass_from_args(AgentTrainArgs, ns), command=ns.command_line)
    print(f"wrote {path}")
    return 0


def cmd_static_search(ns: argparse.Namespace) -> int:
    """abn-gym static-search."""
    from agents.static_search import save_shipped, static_search
    from supernets.data import load_split
    from supernets.registry import load_supernet, read_card

    net = load_supernet(ns.supernet)
    result = static_search(net, load_split("val"), limit=ns.limit, progress=not ns.no_progress)
    path = save_shipped(result, ns.supernet, read_card(ns.supernet)["sha256"], ns.command_line)
    for b, cfg in result["configs"].items():
        print(
            f"static-{b}: {cfg}  val accuracy {100 * result['val_accuracy'][b]:.2f}%  "
            f"{result['bitops'][b] / 1e9:.4f} GBitOps (target {result['targets'][b] / 1e9:.4f})"
        )
    print(f"wrote {path}")
    return 0


def cmd_bench(ns: argparse.Namespace) -> int:
    """abn-gym bench."""
    from agents.bench import BenchArgs, bench, format_markdown
    from agents.registry import known_agent_names

    if ns.list_agents:
        print("\n".join(known_agent_names()))
        return 0
    args = BenchArgs(
        env=ns.env,
        agents=[a for a in (ns.agents or "").split(",") if a],
        split=ns.split,
        episodes=ns.episodes,
        seeds=[int(s) for s in ns.seeds.split(",") if s != ""],
        out=ns.out,
        batch_size=ns.batch_size,
        progress=not ns.no_progress,
    )
    result = bench(args)
    if ns.json:
        print(json.dumps(result))
        return 0
    import pandas as pd

    print(format_markdown(pd.DataFrame(result["rows"])))
    print(f"\nwrote {args.out}/results.json, leaderboard.csv, leaderboard.md, pareto.png")
    return 0


def cmd_validate(ns: argparse.Namespace) -> int:
    """abn-gym validate."""
    from agents.validate import validate

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


def cmd_perf(ns: argparse.Namespace) -> int:
    """abn-gym perf."""
    from agents.perf import PerfArgs
    from agents.perf import main as perf_main

    return perf_main(
        PerfArgs(json=ns.json, quick=ns.quick, device=ns.device, include_bench=ns.include_bench, out=ns.out)
    )


def _add_agent_commands(sub: argparse._SubParsersAction) -> None:
    from agents.train import AgentTrainArgs

    p = sub.add_parser("train", help="train an SB3 agent on the batched env (resumable)")
    add_dataclass_args(p, AgentTrainArgs)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("bench", help="run agents on the same inputs and print the leaderboard")
    p.add_argument("--env", default="ABN-ResNet-v0", help="environment id (default: ABN-ResNet-v0)")
    p.add_argument(
        "--agents",
        default=None,
        help="comma-separated agent names or package.module:Class (default: all baselines + ppo)",
    )
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="data split (default: test)")
    p.add_argument("--episodes", type=int, default=None, help="first N images of the split (default: all)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default: 0)")
    p.add_argument("--out", default="results", help="output directory (default: results/)")
    p.add_argument("--batch-size", type=int, default=256, help="episodes computed together (default: 256)")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--list-agents", action="store_true", help="list the built-in agent names and exit")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("static-search", help="find the static-<b> configurations on the val split and ship them")
    p.add_argument("--supernet", default="resnet20-fashionmnist", help="supernet name")
    p.add_argument("--limit", type=int, default=2000, help="val images used by the search (default: 2000)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=cmd_static_search)

    p = sub.add_parser("validate", help="replay a results.json through the supernet and check every figure")
    p.add_argument("results", help="path to results.json")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("perf", help="throughput benchmark: raw forward vs native vector env vs Sync vs SB3")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.add_argument("--quick", action="store_true", help="fewer sizes and repetitions (a smoke run)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--include-bench", action="store_true", help="also time `abn-gym bench` with its defaults (f)")
    p.add_argument("--out", default=None, help="also write perf.json and perf.md into this directory")
    p.set_defaults(func=cmd_perf)


_EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_agent_commands]

USER_ERRORS = (
    ValueError,
    KeyError,
    CheckpointError,
    DatasetNotFoundError,
    FileNotFoundError,
    PermissionError,
    ImportError,
    TypeError,
    RuntimeError,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``abn-gym`` console script."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    ns.command_line = _command_line(argv)
    try:
        return ns.func(ns)
    except USER_ERRORS as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"abn-gym: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("abn-gym: interrupted; finished work is saved (rerun the same command to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
