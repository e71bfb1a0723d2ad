"""The ``abn-gym supernet`` commands: train, eval, publish and sweep the weight-shared supernets.

Mounted by the ``abn-gym`` entry point (:mod:`agents.app.cli`); each package owns its commands.
Each command is generated from its arguments dataclass (:mod:`supernets.foundation.cliargs`).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from supernets.data import SPLITS, check_count
from supernets.foundation.cliargs import add_command, arg, dataclass_from_args
from supernets.foundation.devices import check_device
from supernets.foundation.errors import UsageError
from supernets.foundation.files import safe_load
from supernets.recalibration import DEFAULT_IMAGES
from supernets.registry import (
    DEFAULT_SUPERNET,
    available_supernets,
    load_supernet,
    load_supernet_split,
    read_supernet_card,
    supernet_name,
)
from supernets.report import eval_table, falling_accuracy_warnings, format_table, publish, publish_targets
from supernets.sweep import SweepArgs, sweep
from supernets.train import TrainArgs, train


@dataclass
class EvalArgs:
    """Arguments of ``abn-gym supernet eval``."""

    supernet: str | None = arg(None, f"supernet: one of {available_supernets()}, or a published card DIR/NAME.json")
    name: str | None = arg(None, f"the same as --supernet (default: {DEFAULT_SUPERNET})")
    split: str = arg("test", "data split", choices=SPLITS)
    limit: int | None = arg(None, "evaluate only the first N images")
    json: bool = arg(False, "print exactly one JSON object on stdout", action="store_true")
    checkpoint: str | None = arg(None, "evaluate this checkpoint file instead of the shipped one")
    device: str = arg("cpu", "torch device the supernet runs on: cpu or cuda (cuda:<n>)")
    data_dir: str | None = arg(None, "Fashion-MNIST directory (default: ABN_DATA_DIR, Debian package), or the .npz")
    progress: bool = arg(True, "hide the progress bar", names=("--no-progress",), action="store_false")


@dataclass
class PublishArgs:
    """Arguments of ``abn-gym supernet publish``."""

    run: str = arg(help="supernet run directory (holds final.pt)")
    float_run: str = arg(help="full-precision reference run directory (holds final.pt)")
    name: str = arg(help="the name to publish under (files NAME.pt and NAME.json)")
    out: str = arg(help="folder to write into (created if missing)")
    force: bool = arg(False, "replace existing files of the same name in --out", action="store_true")
    split: str = arg("test", "split of the card's table", choices=SPLITS)
    limit: int | None = arg(None, "measure the card's table on the first N images only")
    progress: bool = arg(True, "hide the progress bar", names=("--no-progress",), action="store_false")
    command: str = arg("", "the training command, recorded in the model card")
    float_command: str = arg("", "the reference's training command, for the card")
    data_dir: str | None = arg(None, "Fashion-MNIST directory, or the .npz file if it has moved")
    note: list[str] = arg([], "a line for the card's notes (repeatable)", action="append")
    recalibrate_bn: int | None = arg(
        None,
        "re-estimate each bit-width's BatchNorm statistics on N training images before the table is measured "
        f"(default: {DEFAULT_IMAGES:,}, or all of a smaller train split; 0: publish the run's statistics as they are)",
        metavar="N",
    )


def cmd_supernet_train(ns: argparse.Namespace) -> int:
    """abn-gym supernet train."""
    final = train(dataclass_from_args(TrainArgs, ns))
    print(f"wrote {final}")
    return 0


def _checkpoint_title(path: str) -> str:
    """What an evaluated checkpoint file is called: the name it was published under, else its run folder."""
    state = safe_load(path)
    if isinstance(state, dict) and state.get("name"):
        return str(state["name"])
    p = Path(path)
    return f"{p.parent.name}/{p.name}" if p.parent.name else p.name


def cmd_supernet_eval(ns: argparse.Namespace) -> int:
    """abn-gym supernet eval."""
    args = dataclass_from_args(EvalArgs, ns)
    ref = args.supernet or args.name or DEFAULT_SUPERNET
    if args.supernet and args.name and args.supernet != args.name:
        raise UsageError("give the supernet once: --supernet (or its older spelling --name), not both")
    check_device(args.device)
    net = load_supernet(ref, device=args.device, checkpoint=args.checkpoint)
    split = load_supernet_split(ref, args.split, args.data_dir)
    check_count(args.limit, args.split, len(split), "--limit")
    title = _checkpoint_title(args.checkpoint) if args.checkpoint is not None else supernet_name(ref)
    report = eval_table(net, split, title, args.limit, progress=args.progress)
    if args.json:
        print(json.dumps(report))
        return 0
    # The card's reference accuracy is shown only beside a table of the same images it was measured on.
    reference = None
    card = read_supernet_card(ref)
    card_ref = card.get("float_reference", {})
    same_images = args.split == card_ref.get("split", "test") and report["n"] == card.get("eval", {}).get("n")
    if args.checkpoint is None and same_images:
        reference = card_ref.get("accuracy")
    print(f"{title} on {report['split']} ({report['n']} images)")
    print(format_table(report, reference))
    return 0


def cmd_supernet_publish(ns: argparse.Namespace) -> int:
    """abn-gym supernet publish."""
    args = dataclass_from_args(PublishArgs, ns)
    card = publish(
        args.run,
        args.float_run,
        args.name,
        args.out,
        split=args.split,
        limit=args.limit,
        force=args.force,
        progress=args.progress,
        data_dir=args.data_dir,
        command=args.command,
        float_command=args.float_command,
        notes=args.note,
        recalibrate_bn=args.recalibrate_bn,
    )
    print(format_table(card["eval"], card["float_reference"]["accuracy"]))
    for line in falling_accuracy_warnings(card["eval"]):
        print(line, file=sys.stderr)
    print(f"sha256 {card['sha256']}")
    print(f"wrote {publish_targets(args.name, args.out)['card']} (name the supernet by this path)")
    return 0


def cmd_supernet_sweep(ns: argparse.Namespace) -> int:
    """abn-gym supernet sweep."""
    args = dataclass_from_args(SweepArgs, ns)
    sweep(args)
    print(f"wrote {args.report}.json and {args.report}.md")
    return 0


def add_supernet_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``supernet {train,eval,publish,sweep}`` to a parser's subcommands."""
    sp = sub.add_parser("supernet", help="train, evaluate and publish the weight-shared supernets")
    ssub = sp.add_subparsers(dest="supernet_command", required=True, metavar="{train,eval,publish,sweep}")
    add_command(
        ssub,
        "train",
        TrainArgs,
        cmd_supernet_train,
        help="train the supernet (or its full-precision reference); resumable",
    )
    add_command(
        ssub, "eval", EvalArgs, cmd_supernet_eval, help="accuracy and BitOps of uniform and random configurations"
    )
    add_command(
        ssub,
        "publish",
        PublishArgs,
        cmd_supernet_publish,
        help="publish a finished run as DIR/NAME.pt + DIR/NAME.json (a model card that names the supernet anywhere)",
        description="Publish a finished supernet run and its float reference into --out DIR as NAME.pt, "
        "NAME.float-reference.pt and the model card NAME.json; pass DIR/NAME.json wherever a supernet is named. "
        "Publishing into the package's supernets/checkpoints is a developer step (source checkout only).",
    )
    add_command(
        ssub,
        "sweep",
        SweepArgs,
        cmd_supernet_sweep,
        help="capacity sweep: short training of several widths, uniform-2/4/8 on val",
    )
