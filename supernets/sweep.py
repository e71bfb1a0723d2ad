"""Capacity sweep: how steep is the accuracy-vs-bits trade-off of each candidate architecture?

For each architecture the sweep trains, with the shipped recipe on a short schedule, a
full-precision model and a supernet warm-started from it, then evaluates on the val split the
full-precision accuracy and uniform 2/4/8-bit accuracy. A smaller network loses more at low
bit-widths; the sweep is how the steep task's architecture was chosen (`docs/capacity-sweep.md`).

Resumable: every training run resumes from its ``last.pt``, finished runs are skipped, and the
report is rewritten atomically after each architecture.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch

from supernets.data import load_split
from supernets.evaluate import accuracy
from supernets.families import ARCHITECTURES, architecture
from supernets.foundation.cliargs import arg
from supernets.foundation.files import atomic_write_json, atomic_write_text, safe_load
from supernets.registry import build_from_state
from supernets.report import float_accuracy
from supernets.supernet import Supernet
from supernets.train import TrainArgs, train


@dataclass
class SweepArgs:
    """Arguments of ``abn-gym supernet sweep``."""

    archs: str = arg("resnet20-w4,resnet20-w6,resnet20-w8,resnet20", "comma-separated architecture names")
    float_epochs: int = arg(10, "full-precision epochs per architecture")
    supernet_epochs: int = arg(2, "supernet epochs, warm-started from the full-precision run")
    train_limit: int | None = arg(None, "first N training images (default: all 55,000)")
    out: str = arg("runs/sweep", "run directory: <arch>/float, <arch>/supernet")
    report: str = arg("results/capacity-sweep", "report path without suffix: .json and .md are written")
    seed: int = arg(0, "seed of every run")
    data_dir: str | None = arg(None, "Fashion-MNIST directory (default: ABN_DATA_DIR, the Debian package, torchvision)")
    threads: int | None = arg(None, "torch intra-op threads (default: torch's choice)")


def _runs(args: SweepArgs, arch: str) -> tuple[TrainArgs, TrainArgs]:
    base = TrainArgs(
        arch=arch, seed=args.seed, train_limit=args.train_limit, data_dir=args.data_dir, threads=args.threads
    )
    fp = replace(
        base, mode="float", epochs=args.float_epochs, lr=0.1, weight_decay=5e-4, out=f"{args.out}/{arch}/float"
    )
    sn = replace(
        base,
        mode="supernet",
        epochs=args.supernet_epochs,
        lr=0.01,
        weight_decay=5e-5,
        warm_start=f"{fp.out}/final.pt",
        out=f"{args.out}/{arch}/supernet",
    )
    return fp, sn


def _trained(run: TrainArgs) -> Path:
    assert run.out is not None  # the sweep always names its runs' folders
    final = Path(run.out) / "final.pt"
    return final if final.exists() else train(run)


def format_sweep(rows: list[dict]) -> str:
    """Markdown table of the sweep (what docs/capacity-sweep.md shows)."""
    lines = [
        "| architecture | channels | MMACs | full precision % | uniform-8 % | uniform-4 % | uniform-2 % "
        "| 8 - 2 (points) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['arch']} | {'/'.join(map(str, r['stage_channels']))} | {r['macs'] / 1e6:.2f} | "
            f"{100 * r['float']:.2f} | {100 * r['uniform-8']:.2f} | {100 * r['uniform-4']:.2f} | "
            f"{100 * r['uniform-2']:.2f} | {100 * (r['uniform-8'] - r['uniform-2']):.2f} |"
        )
    return "\n".join(lines)


def sweep(args: SweepArgs) -> list[dict]:
    """Train and evaluate every architecture of ``args.archs``; returns the report rows."""
    names = [a for a in args.archs.split(",") if a]
    for name in names:
        architecture(name)  # refuse an unknown name before hours of training
    val = load_split("val", args.data_dir)
    rows: list[dict] = []
    for name in names:
        fp, sn = _runs(args, name)
        fp_final = _trained(fp)
        sn_final = _trained(sn)
        net = build_from_state(safe_load(sn_final), str(sn_final))
        with torch.inference_mode():
            accs = {f"uniform-{b}": accuracy(net, val, [b] * net.num_switchable) for b in (8, 4, 2)}
        rows.append(
            {
                "arch": name,
                "stage_channels": list(getattr(ARCHITECTURES[name], "stage_channels", ())),
                "macs": _macs(net),
                "float": float_accuracy(fp_final, val),
                **accs,
                "split": "val",
                "float_epochs": args.float_epochs,
                "supernet_epochs": args.supernet_epochs,
                "train_limit": args.train_limit,
            }
        )
        atomic_write_json(f"{args.report}.json", {"args": vars(args), "rows": rows})
        atomic_write_text(f"{args.report}.md", format_sweep(rows) + "\n")
        print(format_sweep(rows[-1:]).splitlines()[-1], flush=True)
    return rows


def _macs(net: Supernet) -> float:
    specs = [*net.layer_specs, *net.fixed_specs, *(spec for _, spec in net.extra_specs)]
    return float(sum(s.macs for s in specs))
