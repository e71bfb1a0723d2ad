"""The registry of shipped supernets and ``load_supernet``, which verifies what it loads."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from supernets.checkpoint import CheckpointError, safe_load, sha256
from supernets.errors import UnknownNameError, UsageError
from supernets.resnet import ResNetConfig, ResNetSupernet

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"


@dataclass(frozen=True)
class SupernetEntry:
    """A shipped supernet: its checkpoint, its model card and the dataset it was trained on."""

    name: str
    checkpoint: Path
    card: Path
    dataset: str


SUPERNETS: dict[str, SupernetEntry] = {
    "resnet20-fashionmnist": SupernetEntry(
        name="resnet20-fashionmnist",
        checkpoint=CHECKPOINT_DIR / "resnet20-fashionmnist.pt",
        card=CHECKPOINT_DIR / "resnet20-fashionmnist.json",
        dataset="fashion-mnist",
    ),
    # ResNet-20 at a quarter of the width (4/8/16 channels): the steep task, where bits matter.
    "resnet20-quarter-fashionmnist": SupernetEntry(
        name="resnet20-quarter-fashionmnist",
        checkpoint=CHECKPOINT_DIR / "resnet20-quarter-fashionmnist.pt",
        card=CHECKPOINT_DIR / "resnet20-quarter-fashionmnist.json",
        dataset="fashion-mnist",
    ),
}


def available_supernets() -> list[str]:
    """Names accepted by :func:`load_supernet`."""
    return sorted(SUPERNETS)


def get_entry(name: str) -> SupernetEntry:
    """Registry entry of ``name``, or an :class:`UnknownNameError` (a KeyError) listing the known names."""
    if name not in SUPERNETS:
        raise UnknownNameError(f"unknown supernet {name!r}; known supernets: {', '.join(available_supernets())}")
    return SUPERNETS[name]


def read_card(name: str) -> dict:
    """The JSON model card of a shipped supernet."""
    entry = get_entry(name)
    if not entry.card.is_file():
        raise CheckpointError(
            f"model card {entry.card} is missing; train the supernet with `abn-gym supernet train` "
            "and `abn-gym supernet publish`, or restore it from git"
        )
    return json.loads(entry.card.read_text())


def build_from_state(state: dict, source: str) -> ResNetSupernet:
    """A frozen supernet from a checkpoint dict, refusing foreign or mismatched checkpoints."""
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointError(f"{source} is not an abn-gym supernet checkpoint (no 'model'/'config' entries)")
    if state.get("kind") != "supernet":
        raise CheckpointError(f"{source} holds a {state.get('kind')!r} model, not a supernet")
    try:
        config = ResNetConfig.from_dict(state["config"])
    except TypeError as exc:
        raise CheckpointError(f"{source} has an unknown architecture description: {exc}") from None
    net = ResNetSupernet(config)
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state["model"].items()}
    if expected != found:
        missing = sorted(set(expected) - set(found))[:3]
        extra = sorted(set(found) - set(expected))[:3]
        shapes = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])[:3]
        raise CheckpointError(
            f"{source} does not match the architecture it declares: missing {missing}, unexpected {extra}, "
            f"wrong shapes {shapes}"
        )
    net.load_state_dict(state["model"])
    return net.freeze()


def load_supernet(
    name: str = "resnet20-fashionmnist", device: str | torch.device = "cpu", checkpoint: str | Path | None = None
) -> ResNetSupernet:
    """Load a shipped supernet, frozen and in eval mode, after verifying its sha256.

    Args:
        name: a registered supernet name (see :func:`available_supernets`).
        device: where to put it ("cpu" or "cuda").
        checkpoint: load this file instead of the shipped one (no checksum: it is yours).

    Loaded supernets are shared within a process (they are frozen and read-only).
    """
    return _load(name, str(device), None if checkpoint is None else str(checkpoint))


@lru_cache(maxsize=8)
def _load(name: str, device: str, checkpoint: str | None) -> ResNetSupernet:
    entry = get_entry(name)
    if checkpoint is None:
        card = read_card(name)
        if not entry.checkpoint.is_file():
            raise CheckpointError(f"checkpoint {entry.checkpoint} is missing; restore it from git")
        state = safe_load(entry.checkpoint, expected_sha256=card["sha256"])
        source = str(entry.checkpoint)
    else:
        state, source = safe_load(checkpoint), checkpoint
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("device='cuda' was asked for, but torch sees no CUDA GPU; use device='cpu'")
    return build_from_state(state, source).to(device)


def checkpoint_sha256(name: str) -> str:
    """sha256 of a shipped checkpoint file, as written into its model card."""
    return sha256(get_entry(name).checkpoint)
