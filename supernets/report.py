"""Accuracy tables of a supernet (the `abn-gym supernet eval` contract) and publishing a trained run."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from supernets import recalibration as recalibrate
from supernets.bitops import BITOPS_DEFINITION, bitops_unit
from supernets.data import SPLITS, DataSpec, Split, check_split, load_data
from supernets.families import config_from_dict
from supernets.float_net import FloatSupernet
from supernets.foundation.errors import CheckpointError, OutputNotWritableError, UsageError
from supernets.foundation.files import (
    atomic_write_bytes,
    atomic_write_json,
    check_source_checkout,
    safe_load,
    torch_bytes,
)
from supernets.registry import CHECKPOINT_DIR, GIT_FIX, SUPERNETS, build_from_state
from supernets.supernet import Supernet

NUM_RANDOM = 20
RECIPE_AUGMENTATION = {
    "flip-crop": "random crop (pad 2) + horizontal flip",
    "crop": "random crop (pad 2), no flip",
    "flip": "horizontal flip, no crop",
    "none": "no augmentation",
}
"""The card's recipe sentence for each ``--augment`` (``supernets.train.AUGMENTATIONS``)."""
RANDOM_SEED = 0


def random_configs(net: Supernet, n: int = NUM_RANDOM, seed: int = RANDOM_SEED) -> list[list[int]]:
    """``n`` seeded, uniformly random layer-wise configurations."""
    rng = np.random.default_rng(seed)
    return [[int(b) for b in rng.choice(net.bit_choices, net.num_switchable)] for _ in range(n)]


@torch.inference_mode()
def correct_matrix(
    net: Supernet,
    split: Split,
    configs: Sequence[Sequence[int]],
    limit: int | None = None,
    batch_size: int = 256,
    progress: bool = True,
) -> np.ndarray:
    """Boolean (configs, images): whether each configuration classifies each image correctly.

    The stem runs once per batch and is shared by every configuration.
    """
    c = net.config
    check_split(split, c.in_channels, c.input_size, c.num_classes, "this supernet")
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
    net: Supernet,
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


FALLING_TOLERANCE = 0.01
"""How far (as a fraction) a uniform configuration may fall below a narrower one before publish warns."""


def falling_accuracy_warnings(report: dict, tolerance: float = FALLING_TOLERANCE) -> list[str]:
    """One line per uniform configuration less accurate than a narrower one by more than ``tolerance``.

    A trained supernet gains accuracy with bits; a wider uniform configuration that loses more than a
    point to a narrower one says the training did not finish (or its per-bit statistics are off).
    """
    uniform = sorted(
        (int(r["config"].removeprefix("uniform-")), float(r["accuracy"]))
        for r in report["rows"]
        if r["config"].startswith("uniform-")
    )
    lines = []
    for k, (bits, acc) in enumerate(uniform):
        best_bits, best = max(uniform[:k], key=lambda p: p[1], default=(None, -1.0))
        if best_bits is not None and acc < best - tolerance:
            lines.append(
                f"warning: uniform-{bits} ({100 * acc:.2f}%) is {100 * (best - acc):.2f} points below uniform-"
                f"{best_bits} ({100 * best:.2f}%) on {report['split']}: accuracy should not fall as bits rise. The "
                "supernet is under-trained: resume its run with a larger --epochs, then publish again"
            )
    return lines


def format_table(report: dict, reference: float | None = None) -> str:
    """Markdown table of an eval report (what the README shows)."""
    scale, unit = bitops_unit(max(r["bitops"] for r in report["rows"]))
    lines = [f"| config | accuracy (%) | {unit} |", "| --- | ---: | ---: |"]
    for r in report["rows"]:
        lines.append(f"| {r['config']} | {100 * r['accuracy']:.2f} | {r['bitops'] / scale:.3f} |")
    if reference is not None:
        lines.append(f"| full-precision reference | {100 * reference:.2f} | - |")
    return "\n".join(lines)


@torch.inference_mode()
def float_accuracy(
    checkpoint: str | Path | dict, split: Split, batch_size: int = 256, expected_sha256: str | None = None
) -> float:
    """Accuracy on ``split`` of a full-precision run's ``final.pt`` (or its loaded dict; sha256 checked when given)."""
    state = (
        checkpoint
        if isinstance(checkpoint, dict)
        else safe_load(checkpoint, expected_sha256=expected_sha256, fix=GIT_FIX)
    )
    model = FloatSupernet(config_from_dict(state["config"]))
    model.load_state_dict(state["model"])
    model.eval()
    pred = torch.cat(
        [model(split.inputs(slice(s, s + batch_size))).argmax(1) for s in range(0, len(split), batch_size)]
    )
    return float((pred == split.labels).float().mean())


NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def check_name(name: str | None) -> str:
    """A publishable supernet name: letters, digits, ``-``, ``_`` and ``.``, and not a path."""
    if not name:
        raise UsageError(
            "publish needs --name NAME: the name your supernet is published (and later named) under; it is "
            "never guessed, so that no shipped supernet is replaced by mistake"
        )
    if not set(name) <= NAME_CHARS or name.startswith(".") or name.endswith(".json"):
        raise UsageError(
            f"--name {name!r}: use letters, digits, '-', '_' and '.' only (it names DIR/NAME.pt and DIR/NAME.json)"
        )
    return name


def _is_package_dir(out: Path) -> bool:
    return out.resolve() == CHECKPOINT_DIR.resolve()


def publish_targets(name: str, out: str | Path) -> dict[str, Path]:
    """The files a publish of ``name`` into ``out`` writes: the supernet, its float reference and its card."""
    out = Path(out)
    return {
        "checkpoint": out / f"{name}.pt",
        "float": out / f"{name}.float-reference.pt",
        "card": out / f"{name}.json",
    }


def _run_state(run_dir: Path, flag: str, kind: str) -> dict:
    final = run_dir / "final.pt"
    if not run_dir.is_dir():
        raise UsageError(f"{flag} {run_dir}: no such run directory (a `abn-gym supernet train --mode {kind}` --out)")
    if not final.is_file():
        raise UsageError(f"{flag} {run_dir} has no final.pt: the run has not finished; rerun its command to resume it")
    state = safe_load(final)
    if not isinstance(state, dict) or not {"model", "config", "args"} <= set(state):
        raise CheckpointError(f"{final} is not an abn-gym training run's final.pt")
    if state.get("kind") != kind:
        other = "--run" if kind == "float" else "--float-run"
        raise UsageError(
            f"{flag} {run_dir} holds a {state.get('kind')!r} run, not a {kind!r} one; did you mean to swap --run and "
            f"--float-run? ({other} takes the {state.get('kind')} run)"
        )
    return state


def check_publish(
    run_dir: str | Path, float_run_dir: str | Path, name: str | None, out: str | Path | None, force: bool = False
) -> tuple[dict, dict, dict[str, Path]]:
    """Every check of a publish, before anything is evaluated or written: (run, float run, targets)."""
    name = check_name(name)
    if out is None:
        raise UsageError("publish needs --out DIR: the folder the card and checkpoints are written into")
    out = Path(out)
    if _is_package_dir(out):
        check_source_checkout(out)
        if name not in SUPERNETS:
            raise UsageError(
                f"{out} holds the package's shipped supernets ({', '.join(sorted(SUPERNETS))}); publish {name!r} "
                "into a folder of your own (--out DIR) and name it by its card, DIR/NAME.json"
            )
    elif out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    targets = publish_targets(name, out)
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing and not force:
        raise UsageError(
            f"{', '.join(existing)} already exist(s); choose another --name or --out, or pass --force to replace"
        )
    state = _run_state(Path(run_dir), "--run", "supernet")
    float_state = _run_state(Path(float_run_dir), "--float-run", "float")
    config = config_from_dict(state["config"])
    float_config = config_from_dict(float_state["config"])
    if dataclasses.replace(float_config, bit_choices=config.bit_choices) != config:
        raise UsageError(
            f"--float-run {float_run_dir} trained another architecture than --run {run_dir}; give the float "
            "reference of the same architecture"
        )
    if state.get("data") != float_state.get("data"):
        raise UsageError(f"--float-run {float_run_dir} was trained on other data than --run {run_dir}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputNotWritableError(f"--out {out} cannot be created ({exc.strerror}); choose another folder") from None
    if not os.access(out, os.W_OK):
        raise OutputNotWritableError(f"--out {out} is not writable; choose another folder")
    return state, float_state, targets


def publish(
    run_dir: str | Path,
    float_run_dir: str | Path,
    name: str | None,
    out: str | Path | None,
    split: str = "test",
    limit: int | None = None,
    force: bool = False,
    progress: bool = True,
    data_dir: str | None = None,
    command: str = "",
    float_command: str = "",
    notes: Sequence[str] = (),
    recalibrate_bn: int | None = None,
) -> dict:
    """Publish a finished supernet run as ``out/NAME.pt``, ``out/NAME.float-reference.pt`` and ``out/NAME.json``.

    The published files hold weights and architecture only (no optimizer state): the supernet,
    and beside it its full-precision reference, so that both sides of the card's comparison can
    be evaluated again. The card records the architecture, the data, the recipe, both sha256,
    the accuracy table on ``split`` and the reference's accuracy. Every input is checked before
    anything is evaluated; nothing is written until everything has been computed, and the three
    files are then renamed into place (an interruption leaves no partial file). The same runs
    give byte-identical files (on the same machine and thread count when the BatchNorm statistics
    are re-estimated: they are float sums).

    Before the table is measured, each bit-width's BatchNorm statistics are re-estimated on
    ``recalibrate_bn`` training images (:func:`supernets.recalibration.recalibrate_bn`): a short
    run's statistics trail its weights, and re-estimating them costs seconds and no labels. The
    published checkpoint holds the re-estimated statistics; the run's own ``final.pt`` is not
    changed, and the card records what was done as ``recalibrate_bn``.

    Args:
        run_dir: the supernet run (holds final.pt).
        float_run_dir: the full-precision reference run (holds final.pt).
        name: the name to publish under (required; the card's ``name``).
        out: the folder to write into; the package's ``supernets/checkpoints`` only in a source checkout.
        split: the split the card's accuracy table is measured on.
        limit: measure on the first ``limit`` images only (None: all).
        force: replace existing files of the same name.
        progress: show progress bars.
        data_dir: Fashion-MNIST's directory, or the .npz file's path if it has moved.
        command: the supernet's training command, recorded in the card.
        float_command: the reference's training command.
        notes: lines for the card's notes.
        recalibrate_bn: training images the BatchNorm statistics are re-estimated on (None: 2,048, or
            all of a smaller train split; 0: publish the run's statistics as they are).
    """
    state, float_state, targets = check_publish(run_dir, float_run_dir, name, out, force)
    if split not in SPLITS:
        raise UsageError(f"unknown split {split!r}; choose one of {list(SPLITS)}")
    if limit is not None and limit < 1:
        raise UsageError(f"--limit {limit}: give a positive number of images")
    if recalibrate_bn is not None and recalibrate_bn < 0:
        raise UsageError(
            f"--recalibrate-bn {recalibrate_bn}: give a number of training images, or 0 to publish the run's "
            "BatchNorm statistics as they are"
        )
    name = str(name)
    data = DataSpec.from_dict(state.get("data"))
    eval_split = load_data(data, split, data_dir)
    config = config_from_dict(state["config"])
    check_split(eval_split, config.in_channels, config.input_size, config.num_classes, f"supernet {name}")
    images, recalibration_split = 0, None
    if recalibrate_bn != 0:
        recalibration_split = load_data(data, "train", data_dir)
        images = min(recalibrate.DEFAULT_IMAGES, len(recalibration_split)) if recalibrate_bn is None else recalibrate_bn
        recalibrate.check_images(images, recalibration_split, "--recalibrate-bn")
    if limit is not None:
        eval_split = dataclasses.replace(eval_split, images=eval_split.images[:limit], labels=eval_split.labels[:limit])
    model, recalibrated = state["model"], {"images": 0}
    if recalibration_split is not None:
        trained = build_from_state(state, str(run_dir))
        recalibrated = recalibrate.recalibrate_bn(trained, recalibration_split, images)
        model = trained.state_dict()
    shipped = {"model": model, "config": state["config"], "kind": "supernet", "name": name}
    blob = torch_bytes(shipped)
    net = build_from_state(torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True), str(run_dir))
    report = eval_table(net, eval_split, name, progress=progress)
    float_args = float_state["args"]
    float_shipped = {k: float_state[k] for k in ("model", "config", "kind", "args")}
    float_blob = torch_bytes(float_shipped)
    reference = float_accuracy(float_shipped, eval_split)
    args = state["args"]
    ref = name if _is_package_dir(Path(str(out))) else str(targets["card"])
    card = {
        "name": name,
        "file": targets["checkpoint"].name,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "dataset": data.kind,
        "data": data.as_dict(),
        "architecture": state["config"],
        "bit_choices": list(net.bit_choices),
        "num_switchable": net.num_switchable,
        "bitops": BITOPS_DEFINITION,
        "recipe": (
            f"Warm start from the full-precision checkpoint in train_args.warm_start. Every batch: all-"
            f"{net.bit_choices[-1]}-bit with cross-entropy; all-{net.bit_choices[0]}-bit and "
            f"{args.get('num_random', 2)} random layer-wise configurations over bit_choices distilled from the "
            f"{net.bit_choices[-1]}-bit soft outputs. LSQ per-bit steps (MSE-initialised), per-bit BatchNorm, "
            f"SGD+Nesterov, cosine LR, {RECIPE_AUGMENTATION[args.get('augment', 'flip-crop')]}."
            + (
                f" Each bit-width's BatchNorm statistics then re-estimated on {images} training images."
                if images
                else ""
            )
        ),
        "train_args": args,
        "epochs": args["epochs"],
        "seed": args["seed"],
        "command": command,
        "float_reference": {
            "accuracy": reference,
            "split": eval_split.name,
            "epochs": float_args["epochs"],
            "train_args": float_args,
            "command": float_command,
            "file": targets["float"].name,
            "sha256": hashlib.sha256(float_blob).hexdigest(),
        },
        "recalibrate_bn": recalibrated,
        "eval": report,
        "eval_command": f"abn-gym supernet eval --supernet {ref} --split {eval_split.name} --json"
        + ("" if limit is None else f" --limit {limit}"),
        "notes": list(notes),
    }
    # Everything is computed: write the three files, each atomically, the card last (it names the others).
    atomic_write_bytes(targets["checkpoint"], blob)
    atomic_write_bytes(targets["float"], float_blob)
    atomic_write_json(targets["card"], card)
    return card
