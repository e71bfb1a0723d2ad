"""``python -m supernets.recalibrate``: uniform accuracies before and after BatchNorm re-estimation.

The re-estimation itself is :func:`supernets.recalibration.recalibrate_bn` (publish runs it).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
from dataclasses import dataclass

import torch

from supernets.data import SPLITS
from supernets.foundation.cliargs import arg, dataclass_from_args, dataclass_parser
from supernets.foundation.errors import ABNGymError, UsageError
from supernets.recalibration import DEFAULT_IMAGES, check_images, recalibrate_bn
from supernets.registry import load_supernet, load_supernet_split, supernet_name
from supernets.report import correct_matrix

__all__ = ["DEFAULT_IMAGES", "RecalibrateArgs", "before_after", "check_images", "main", "recalibrate_bn"]


@dataclass
class RecalibrateArgs:
    """Arguments of ``python -m supernets.recalibrate``."""

    supernet: str = arg("resnet20-fashionmnist", "supernet: a shipped name or a published card DIR/NAME.json")
    split: str = arg("val", "split the accuracies are measured on", choices=SPLITS)
    limit: int | None = arg(None, "measure on the first N images of --split only (default: all)")
    images: int = arg(DEFAULT_IMAGES, "training images the statistics are re-estimated on")
    batch_size: int = arg(256, "images per re-estimation batch")
    seed: int = arg(0, "seed of the re-estimation images")
    data_dir: str | None = arg(None, "Fashion-MNIST directory (default: ABN_DATA_DIR, Debian package), or the .npz")
    threads: int | None = arg(None, "torch intra-op threads (default: torch's choice)")


def before_after(args: RecalibrateArgs) -> dict:
    """Uniform accuracies of ``args.supernet`` on ``args.split`` before and after re-estimation.

    The loaded supernet is copied first: the process's shared instance (and its files) stay as they were.
    """
    if args.threads:
        torch.set_num_threads(args.threads)
    train = load_supernet_split(args.supernet, "train", args.data_dir)
    check_images(args.images, train, "--images")
    split = load_supernet_split(args.supernet, args.split, args.data_dir)
    if args.limit is not None:
        if args.limit < 1:
            raise UsageError(f"--limit {args.limit}: give a positive number of images")
        split = dataclasses.replace(split, images=split.images[: args.limit], labels=split.labels[: args.limit])
    net = copy.deepcopy(load_supernet(args.supernet))
    uniform = [[b] * net.num_switchable for b in net.bit_choices]
    before = correct_matrix(net, split, uniform, progress=False).mean(axis=1)
    done = recalibrate_bn(net, train, args.images, args.batch_size, args.seed)
    after = correct_matrix(net, split, uniform, progress=False).mean(axis=1)
    return {
        "supernet": supernet_name(args.supernet),
        "split": split.name,
        "n": len(split),
        "recalibrate_bn": done,
        "rows": [{"bits": b, "before": float(x), "after": float(y)} for b, x, y in zip(net.bit_choices, before, after)],
    }


def format_before_after(result: dict) -> str:
    """Markdown table of :func:`before_after`: one row per uniform bit-width, accuracies in %."""
    lines = [
        f"{result['supernet']}, {result['split']} split ({result['n']} images), statistics re-estimated on "
        f"{result['recalibrate_bn']['images']} {result['recalibrate_bn']['split']} images",
        "",
        "| uniform bits | before (%) | after (%) | change (points) |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for r in result["rows"]:
        change = 100 * (r["after"] - r["before"])
        lines.append(f"| {r['bits']} | {100 * r['before']:.2f} | {100 * r['after']:.2f} | {change:+.2f} |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m supernets.recalibrate``, generated from :class:`RecalibrateArgs`."""
    return dataclass_parser(
        RecalibrateArgs,
        prog="python -m supernets.recalibrate",
        description="Uniform accuracies of a supernet before and after BatchNorm re-estimation (nothing is written).",
    )


def main(argv: list[str] | None = None) -> None:
    """Print the before/after table as Markdown; ``argv`` defaults to the command line."""
    p = build_parser()
    args = dataclass_from_args(RecalibrateArgs, p.parse_args(argv))
    try:
        result = before_after(args)
    except ABNGymError as exc:
        p.exit(2, f"{p.prog}: error: {exc}\n")
    print(format_before_after(result))


if __name__ == "__main__":
    main()
