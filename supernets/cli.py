"""The ``abn-gym supernet`` commands: train, eval, publish and sweep the weight-shared supernets.

Mounted by the ``abn-gym`` entry point (:mod:`agents.cli`); each package owns its commands.
"""

from __future__ import annotations

import argparse
import json

from supernets.cliargs import add_dataclass_args, dataclass_from_args


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

    card = publish(
        ns.run, ns.float_run, load_split("test", ns.data_dir), ns.name, ns.command, ns.float_command, ns.note
    )
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


def add_supernet_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``supernet {train,eval,publish,sweep}`` to a parser's subcommands."""
    from supernets.registry import available_supernets
    from supernets.sweep import SweepArgs
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

    p = ssub.add_parser(
        "publish", help="developer step: ship a finished run (checkpoint + model card) into supernets/checkpoints"
    )
    p.add_argument("--run", required=True, help="supernet run directory (holds final.pt)")
    p.add_argument("--float-run", required=True, help="full-precision reference run directory (holds final.pt)")
    p.add_argument("--name", default="resnet20-fashionmnist", help="registry name to publish as")
    p.add_argument("--command", default="", help="the training command, recorded in the model card")
    p.add_argument("--float-command", default="", help="the reference's training command, for the card")
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST directory")
    p.add_argument("--note", action="append", default=[], help="a line for the card's notes (repeatable)")
    p.set_defaults(func=cmd_supernet_publish)

    p = ssub.add_parser("sweep", help="capacity sweep: short training of several widths, uniform-2/4/8 on val")
    add_dataclass_args(p, SweepArgs)
    p.set_defaults(func=cmd_supernet_sweep)
