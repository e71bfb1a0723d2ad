"""BatchNorm re-estimation: each bit-width's BatchNorm statistics measured again after training.

Why: every switchable layer keeps one BatchNorm per bit-width, and training updates a bit-width's
running statistics only in the batches that run it, with an exponential average that trails the
weights. A short or unlucky run leaves them off, most at the narrow bit-widths, and accuracy can
then fall as bits rise. Re-estimation runs the trained network once per bit-width, uniform at
that width, over a few thousand training images (no labels, no gradients, no weight changes) and
sets each of its BatchNorms to the plain average of the batch statistics it saw. On a user's
under-trained 2/3/4/8-bit supernet, 2,048 images turned uniform accuracies of 81.87 / 69.07 /
62.67 / 89.47 % into 88.0 / 89.6 / 91.2 / 92.0 % (val split).

``abn-gym supernet publish`` does it by default (``--recalibrate-bn N``, 0 to skip) and records it
in the card. ``python -m supernets.recalibrate --supernet NAME`` measures what it does to a
published supernet (uniform accuracies before and after) without writing anything.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, cast

import torch
from torch import nn

from supernets.data import SPLITS, Split
from supernets.foundation.cliargs import arg, dataclass_from_args, dataclass_parser
from supernets.foundation.errors import ABNGymError, UsageError
from supernets.layers import SwitchableConv2d

DEFAULT_IMAGES = 2048
"""Training images ``abn-gym supernet publish`` re-estimates the statistics on by default."""


def check_images(images: int, split: Split, flag: str = "images") -> None:
    """Refuse an image count that is not 1 to ``len(split)``; ``flag`` names the option in the message."""
    if not 1 <= images <= len(split):
        raise UsageError(f"{flag} {images}: the {split.name} split has {len(split)} images; choose 1 to {len(split)}")


class _Freezable(Protocol):
    """The frozen-inference switch of every supernet family (nn.Module's attribute typing hides it)."""

    @property
    def frozen(self) -> bool: ...

    def freeze(self) -> object: ...

    def unfreeze(self) -> object: ...


def _bns_of(layers: Sequence[SwitchableConv2d], bits: int) -> list[nn.BatchNorm2d]:
    return [cast(nn.BatchNorm2d, layer.bns[layer.slot(bits)]) for layer in layers if bits in layer.bit_choices]


@torch.no_grad()
def recalibrate_bn(
    net: nn.Module,
    split: Split,
    images: int,
    batch_size: int = 256,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> dict:
    """Re-estimate the BatchNorm statistics of every bit-width of ``net`` on ``images`` images of ``split``.

    For each bit-width b of ``net.bit_choices``, the BatchNorm of b in every
    :class:`~supernets.layers.SwitchableConv2d` that has b (found through ``net.modules()``, so any
    family works) has its running statistics reset and then set to the cumulative average
    (``momentum=None``) over one pass of the un-frozen network, uniform at b, in train mode. Only
    the BatchNorms being re-estimated run in train mode; every other one keeps normalising with
    its own statistics. The widest pass comes first and also re-estimates the layers of fixed
    bit-widths outside ``net.bit_choices`` (the 8-bit stem): their statistics are those of the
    all-widest network (all-8 for the shipped bit-widths), and every later pass sees them. Labels
    are never read; weights, LSQ steps and BatchNorm affine parameters are not changed. Momentum
    and each module's train/eval mode are restored, and a frozen ``net`` is frozen again (its
    caches rebuilt from the new statistics); an un-frozen one stays un-frozen.

    Args:
        net: a supernet (``bit_choices``, ``num_switchable``, ``forward(x, bits)``, ``freeze``/``unfreeze``).
        split: the images (normally the train split; its labels are not used).
        images: how many images, 1 to ``len(split)``: a seeded random subset of the split.
        batch_size: images per forward pass (the batches are made as equal in size as possible).
        seed: seed of the subset.
        device: where the images go (default: where ``net``'s parameters are).

    Returns:
        What was done, for a model card: images, split, batch_size, seed and the bit-widths.
    """
    check_images(images, split)
    if batch_size < 1:
        raise UsageError(f"batch_size {batch_size}: give a positive number of images per batch")
    if device is None:
        device = next(net.parameters()).device
    bit_choices = tuple(int(b) for b in cast("Sequence[int]", net.bit_choices))  # nn.Module hides its type
    num_switchable = int(cast(int, net.num_switchable))
    widest = max(bit_choices)
    layers = [m for m in net.modules() if isinstance(m, SwitchableConv2d)]
    fixed = [bn for layer in layers for b in layer.bit_choices if b not in bit_choices for bn in _bns_of([layer], b)]
    subset = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:images].sort().values
    batches = torch.tensor_split(subset, math.ceil(images / batch_size))
    switch = cast(_Freezable, net)
    was_frozen, modes = switch.frozen, {m: m.training for m in net.modules()}
    if was_frozen:
        switch.unfreeze()
    net.eval()
    try:
        for bits in (widest, *sorted(b for b in bit_choices if b != widest)):
            bns = _bns_of(layers, bits) + (fixed if bits == widest else [])
            momenta = [bn.momentum for bn in bns]
            for bn in bns:
                bn.reset_running_stats()
                bn.momentum = None  # cumulative average: every batch counts the same
                bn.train()
            try:
                for index in batches:
                    net(split.inputs(index, device), [bits] * num_switchable)
            finally:
                for bn, momentum in zip(bns, momenta):
                    bn.momentum = momentum
                    bn.eval()
    finally:
        for m, training in modes.items():
            m.train(training)
        if was_frozen:
            switch.freeze()
    return {
        "images": images,
        "split": split.name,
        "batch_size": batch_size,
        "seed": seed,
        "bit_choices": list(bit_choices),
    }


# `python -m supernets.recalibrate`: what re-estimation does to a published supernet -------------


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
    # lazy: the registry builds on supernets.resnet, which these functions do not need
    from supernets.registry import load_supernet, load_supernet_split, supernet_name
    from supernets.report import correct_matrix

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
