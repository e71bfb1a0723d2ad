"""The ``abn-gym supernet`` commands: train, eval, publish and sweep the weight-shared supernets.

Mounted by the ``abn-gym`` entry point (:mod:`agents.app.cli`); each package owns its commands.
"""

from __future__ import annotations

import argparse
import json

from supernets.foundation.cliargs import add_dataclass_args, dataclass_from_args


def cmd_supernet_train(ns: argparse.Namespace) -> int:
    """abn-gym supernet train."""
    from supernets.train import TrainArgs, train

    final = train(dataclass_from_args(TrainArgs, ns))
    print(f"wrote {final}")
    return 0


def _checkpoint_title(path: str) -> str:
    """What an evaluated checkpoint file is called: the name it was published under, else its run folder."""
    from pathlib import Path

    from supernets.foundation.files import safe_load

    state = safe_load(path)
    if isinstance(state, dict) and state.get("name"):
        return str(state["name"])
    p = Path(path)
    return f"{p.parent.name}/{p.name}" if p.parent.name else p.name


def cmd_supernet_eval(ns: argparse.Namespace) -> int:
    """abn-gym supernet eval."""
    from supernets.foundation.errors import UsageError
    from supernets.registry import load_supernet, load_supernet_split, read_supernet_card, supernet_name
    from supernets.report import eval_table, format_table

    ref = ns.supernet or ns.name or "resnet20-fashionmnist"
    if ns.supernet and ns.name and ns.supernet != ns.name:
        raise UsageError("give the supernet once: --supernet (or its older spelling --name), not both")
    net = load_supernet(ref, device=ns.device, checkpoint=ns.checkpoint)
    split = load_supernet_split(ref, ns.split, ns.data_dir)
    title = _checkpoint_title(ns.checkpoint) if ns.checkpoint is not None else supernet_name(ref)
    report = eval_table(net, split, title, ns.limit, progress=not ns.no_progress)
    if ns.json:
        print(json.dumps(report))
        return 0
    # The card's reference accuracy is shown only beside a table of the same images it was measured on.
    reference = None
    card = read_supernet_card(ref)
    card_ref = card.get("float_reference", {})
    same_images = ns.split == card_ref.get("split", "test") and report["n"] == card.get("eval", {}).get("n")
    if ns.checkpoint is None and same_images:
        reference = card_ref.get("accuracy")
    print(f"{title} on {report['split']} ({report['n']} images)")
    print(format_table(report, reference))
    return 0


def cmd_supernet_publish(ns: argparse.Namespace) -> int:
    """abn-gym supernet publish."""
    from supernets.report import format_table, publish, publish_targets

    card = publish(
        ns.run,
        ns.float_run,
        ns.name,
        ns.out,
        split=ns.split,
        limit=ns.limit,
        force=ns.force,
        progress=not ns.no_progress,
        data_dir=ns.data_dir,
        command=ns.command,
        float_command=ns.float_command,
        notes=ns.note,
    )
    print(format_table(card["eval"], card["float_reference"]["accuracy"]))
    print(f"sha256 {card['sha256']}")
    print(f"wrote {publish_targets(ns.name, ns.out)['card']} (name the supernet by this path)")
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
    p.add_argument(
        "--supernet", default=None, help=f"supernet: one of {available_supernets()}, or a published card DIR/NAME.json"
    )
    p.add_argument("--name", default=None, help="the same as --supernet (default: resnet20-fashionmnist)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="data split (default: test)")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N images")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.add_argument("--checkpoint", default=None, help="evaluate this checkpoint file instead of the shipped one")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument(
        "--data-dir", default=None, help="Fashion-MNIST directory (default: ABN_DATA_DIR, Debian package), or the .npz"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=cmd_supernet_eval)

    p = ssub.add_parser(
        "publish",
        help="publish a finished run as DIR/NAME.pt + DIR/NAME.json (a model card that names the supernet anywhere)",
        description="Publish a finished supernet run and its float reference into --out DIR as NAME.pt, "
        "NAME.float-reference.pt and the model card NAME.json; pass DIR/NAME.json wherever a supernet is named. "
        "Publishing into the package's supernets/checkpoints is a developer step (source checkout only).",
    )
    p.add_argument("--run", required=True, help="supernet run directory (holds final.pt)")
    p.add_argument("--float-run", required=True, help="full-precision reference run directory (holds final.pt)")
    p.add_argument("--name", required=True, help="the name to publish under (files NAME.pt and NAME.json)")
    p.add_argument("--out", required=True, help="folder to write into (created if missing)")
    p.add_argument("--force", action="store_true", help="replace existing files of the same name in --out")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="split of the card's table")
    p.add_argument("--limit", type=int, default=None, help="measure the card's table on the first N images only")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--command", default="", help="the training command, recorded in the model card")
    p.add_argument("--float-command", default="", help="the reference's training command, for the card")
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST directory, or the .npz file if it has moved")
    p.add_argument("--note", action="append", default=[], help="a line for the card's notes (repeatable)")
    p.set_defaults(func=cmd_supernet_publish)

    p = ssub.add_parser("sweep", help="capacity sweep: short training of several widths, uniform-2/4/8 on val")
    add_dataclass_args(p, SweepArgs)
    p.set_defaults(func=cmd_supernet_sweep)
