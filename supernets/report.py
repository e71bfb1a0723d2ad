"""Accuracy tables of a supernet (the `abn-gym supernet eval` contract) and publishing a trained run."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from supernets.checkpoint import atomic_torch_save, atomic_write_json, safe_load, sha256
from supernets.data import Split
from supernets.float_resnet import FloatResNet
from supernets.registry import build_from_state, get_entry
from supernets.resnet import ResNetConfig, ResNetSupernet

NUM_RANDOM = 20
RANDOM_SEED = 0


def random_configs(net: ResNetSupernet, n: int = NUM_RANDOM, seed: int = RANDOM_SEED) -> list[list[int]]:
    """``n`` seeded, uniformly random layer-wise configurations."""
    rng = np.random.default_rng(seed)
    return [[int(b) for b in rng.choice(net.bit_choices, net.num_switchable)] for _ in range(n)]


@torch.inference_mode()
def correct_matrix(
    net: ResNetSupernet,
    split: Split,
    configs: Sequence[Sequence[int]],
    limit: int | None = None,
    batch_size: int = 256,
    progress: bool = True,
) -> np.ndarray:
    """Boolean (configs, images): whether each configuration classifies each image correctly.

    The stem runs once per batch and is shared by every configuration.
    """
    n = len(split) if limit is None else min(limit, len(split))
    configs = [net.validate_bits(c) for c in configs]
    out = np.zeros((len(configs), n), dtype=bool)
    device = next(net.parameters()).device
    bar = tqdm(total=len(configs) * n, desc="supernet eval", unit="img", file=sys.stderr, disable=not progress)
    for start in range(0, n, batch_size):
        end = min(start + batch_size, n)
        stem = net.stem_forward(split.inputs(slice(start, end), device))
        labels = split.labels[start:end].to(device)
        for k, cfg in enumerate(configs):
            out[k, start:end] = (net.run_layers(stem, cfg).argmax(1) == labels).cpu().numpy()
            bar.update(end - start)
    bar.close()
    return out


def eval_table(
    net: ResNetSupernet,
    split: Split,
    name: str,
    limit: int | None = None,
    num_random: int = NUM_RANDOM,
    progress: bool = True,
) -> dict:
    """The JSON object of `abn-gym supernet eval`: uniform rows per bit-width plus a random-mean row."""
    uniform = [[b] * net.num_switchable for b in net.bit_choices]
    randoms = random_configs(net, num_random)
    correct = correct_matrix(net, split, uniform + randoms, limit, progress=progress)
    acc = correct.mean(axis=1)
    rows = [
        {"config": f"uniform-{b}", "bits": cfg, "accuracy": float(a), "bitops": net.bitops(cfg)}
        for b, cfg, a in zip(net.bit_choices, uniform, acc)
    ]
    r_acc = acc[len(uniform) :]
    rows.append(
        {
            "config": f"random-mean-of-{num_random}",
            "bits": None,
            "accuracy": float(r_acc.mean()),
            "accuracy_min": float(r_acc.min()),
            "accuracy_max": float(r_acc.max()),
            "bitops": float(np.mean([net.bitops(c) for c in randoms])),
            "seed": RANDOM_SEED,
        }
    )
    return {
        "supernet": name,
        "split": split.name,
        "n": int(correct.shape[1]),
        "bit_choices": list(net.bit_choices),
        "rows": rows,
    }


def format_table(report: dict, reference: float | None = None) -> str:
    """Markdown table of an eval report (what the README shows)."""
    lines = ["| config | accuracy (%) | GBitOps |", "| --- | ---: | ---: |"]
    for r in report["rows"]:
        lines.append(f"| {r['config']} | {100 * r['accuracy']:.2f} | {r['bitops'] / 1e9:.3f} |")
    if reference is not None:
        lines.append(f"| full-precision reference | {100 * reference:.2f} | - |")
    return "\n".join(lines)


@torch.inference_mode()
def float_accuracy(
    checkpoint: str | Path, split: Split, batch_size: int = 256, expected_sha256: str | None = None
) -> float:
    """Accuracy on ``split`` of a full-precision run's ``final.pt`` (its sha256 checked when given)."""
    state = safe_load(checkpoint, expected_sha256=expected_sha256)
    model = FloatResNet(ResNetConfig.from_dict(state["config"]))
    model.load_state_dict(state["model"])
    model.eval()
    pred = torch.cat(
        [model(split.inputs(slice(s, s + batch_size))).argmax(1) for s in range(0, len(split), batch_size)]
    )
    return float((pred == split.labels).float().mean())


def publish(
    run_dir: str | Path,
    float_run_dir: str | Path,
    split: Split,
    name: str = "resnet20-fashionmnist",
    command: str = "",
    float_command: str = "",
    notes: Sequence[str] = (),
) -> dict:
    """Copy a finished supernet run into ``supernets/checkpoints`` with its model card.

    The shipped files hold weights and architecture only (no optimizer state): the supernet, and
    beside it its full-precision reference (``<name>.float-reference.pt``), so that both sides of
    the card's comparison can be evaluated again. The card records the recipe, both sha256, the
    accuracy table on ``split`` and the reference's accuracy.
    """
    entry = get_entry(name)
    run_dir, float_run_dir = Path(run_dir), Path(float_run_dir)
    state = safe_load(run_dir / "final.pt")
    shipped = {"model": state["model"], "config": state["config"], "kind": "supernet", "name": name}
    tmp = entry.checkpoint.with_suffix(".pt.new")
    atomic_torch_save(shipped, tmp)
    net = build_from_state(safe_load(tmp), str(tmp))
    report = eval_table(net, split, name)
    float_state = safe_load(float_run_dir / "final.pt")
    float_args = float_state["args"]
    float_file = entry.checkpoint.with_name(f"{name}.float-reference.pt")
    float_tmp = float_file.with_suffix(".pt.new")
    atomic_torch_save({k: float_state[k] for k in ("model", "config", "kind", "args")}, float_tmp)
    reference = float_accuracy(float_tmp, split)
    card = {
        "name": name,
        "file": entry.checkpoint.name,
        "sha256": sha256(tmp),
        "dataset": entry.dataset,
        "architecture": state["config"],
        "bit_choices": list(net.bit_choices),
        "num_switchable": net.num_switchable,
        "recipe": (
            "Warm start from the full-precision checkpoint in train_args.warm_start. Every batch: all-8-bit with "
            "cross-entropy; "
            f"all-2-bit and {state['args']['num_random']} random layer-wise configurations distilled from the "
            "8-bit soft outputs. LSQ per-bit steps (MSE-initialised), per-bit BatchNorm, SGD+Nesterov, cosine LR, "
            "random crop (pad 2) + horizontal flip."
        ),
        "train_args": state["args"],
        "epochs": state["args"]["epochs"],
        "seed": state["args"]["seed"],
        "command": command,
        "float_reference": {
            "accuracy": reference,
            "split": split.name,
            "epochs": float_args["epochs"],
            "train_args": float_args,
            "command": float_command,
            "file": float_file.name,
            "sha256": sha256(float_tmp),
        },
        "eval": report,
        "eval_command": f"abn-gym supernet eval --name {name} --split {split.name} --json",
        "notes": list(notes),
    }
    shutil.move(str(tmp), entry.checkpoint)
    shutil.move(str(float_tmp), float_file)
    atomic_write_json(entry.card, card)
    return card
