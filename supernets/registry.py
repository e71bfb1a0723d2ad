"""The registry of shipped supernets and ``load_supernet``, which verifies what it loads.

Wherever a supernet is named, the name of a shipped one or the path of a published model card
(``DIR/NAME.json``, written by ``abn-gym supernet publish --out DIR``) works: the card names the
checkpoint beside it, its sha256, its architecture and its data.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from supernets.data import DataSpec, Split, check_split, load_data
from supernets.families import build_supernet, config_from_dict
from supernets.foundation.errors import CheckpointError, UnknownNameError, UsageError
from supernets.foundation.files import safe_load, sha256
from supernets.supernet import ArchConfig, Supernet

GIT_FIX = "Restore it with `git checkout -- <path>` or retrain it with `abn-gym supernet train`."
"""What a shipped supernet checkpoint whose sha256 does not match tells the user to do."""

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"


@dataclass(frozen=True)
class SupernetEntry:
    """A shipped supernet: its checkpoint, its model card and the dataset it was trained on."""

    name: str
    checkpoint: Path
    card: Path
    dataset: str
    shipped: bool = True
    """False for a user's card given by path: its files are hers, not the package's."""


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
    # A MobileNetV2-style net (depthwise and 1x1 convs, linear bottlenecks): the third task.
    "mobilenetv2-tiny-fashionmnist": SupernetEntry(
        name="mobilenetv2-tiny-fashionmnist",
        checkpoint=CHECKPOINT_DIR / "mobilenetv2-tiny-fashionmnist.pt",
        card=CHECKPOINT_DIR / "mobilenetv2-tiny-fashionmnist.json",
        dataset="fashion-mnist",
    ),
}


DEFAULT_SUPERNET = "resnet20-fashionmnist"
"""The supernet a command uses when none is named (the default env's)."""


def available_supernets() -> list[str]:
    """Names accepted by :func:`load_supernet`."""
    return sorted(SUPERNETS)


CARD_KEYS = ("name", "file", "sha256", "architecture")
"""What a model card must hold for its supernet to be rebuilt and verified."""


def is_card_path(ref: str | os.PathLike) -> bool:
    """True when ``ref`` names a model card file rather than a registered supernet."""
    text = os.fspath(ref)
    return text.endswith(".json") or os.sep in text or "/" in text


def _card_json(path: Path) -> dict:
    try:
        card = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"model card {path} could not be read as JSON ({exc})") from None
    missing = [k for k in CARD_KEYS if not isinstance(card, dict) or k not in card]
    if missing:
        raise CheckpointError(
            f"{path} is not a supernet model card (it lacks {missing}); give a card written by "
            "`abn-gym supernet publish --name NAME --out DIR` (DIR/NAME.json)"
        )
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._@+-]*", str(card["name"])):
        # The name also names files beside the card (static-<name>.json): it must be a plain file name.
        raise CheckpointError(f"{path} names its supernet {card['name']!r}; a name is letters, digits and ._@+-")
    return card


def card_file(card_path: Path, name: object, what: str = "file") -> Path:
    """The file a supernet card names, refused unless it lies in the card's own folder.

    No absolute path, no ``..``, no symlink that leads out: a card someone sent must not make
    abn-gym read (or hash, and show part of the hash of) any other file on the machine.

    Args:
        card_path: the model card.
        name: the name the card gives (its ``file`` entry).
        what: the card entry, for the message.
    """
    folder = card_path.parent.resolve()
    rule = (
        f"a supernet card's files must lie in the card's own folder {folder} (no absolute path, no '..', no "
        "symlink out): put the file beside the card and give its name"
    )
    if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
        raise CheckpointError(f"{card_path} names its {what} {name!r}; {rule}")
    target = folder / name
    if not target.resolve().is_relative_to(folder):
        raise CheckpointError(f"{card_path} names its {what} {name!r}, which leads out of its folder; {rule}")
    return target


def get_entry(name: str | os.PathLike) -> SupernetEntry:
    """Registry entry of a name or a card path, or an :class:`UnknownNameError` listing the known names."""
    if not isinstance(name, str) or is_card_path(name):
        path = Path(name).expanduser()
        if not path.is_file():
            raise UnknownNameError(
                f"supernet card {os.fspath(name)!r} does not exist; give a card written by `abn-gym supernet "
                f"publish --out DIR` (DIR/NAME.json) or a shipped name: {', '.join(available_supernets())}"
            )
        card = _card_json(path)
        data = card.get("data") or {}
        return SupernetEntry(
            name=str(card["name"]),
            checkpoint=card_file(path, card["file"]),
            card=path,
            dataset=str(card.get("dataset", data.get("kind", "fashion-mnist"))),
            shipped=False,
        )
    if name not in SUPERNETS:
        raise UnknownNameError(
            f"unknown supernet {name!r}; known supernets: {', '.join(available_supernets())}, or the path of a "
            "published model card (DIR/NAME.json)"
        )
    return SUPERNETS[name]


def read_supernet_card(name: str | os.PathLike) -> dict:
    """The JSON model card of a shipped supernet (by name) or of a published one (by card path)."""
    entry = get_entry(name)
    if not entry.shipped:
        return _card_json(entry.card)
    if not entry.card.is_file():
        raise CheckpointError(
            f"model card {entry.card} is missing; train the supernet with `abn-gym supernet train` "
            "and `abn-gym supernet publish`, or restore it from git"
        )
    return json.loads(entry.card.read_text())


def supernet_name(ref: str | os.PathLike) -> str:
    """The name a supernet is published under (a card path gives the name in its card)."""
    return (
        str(read_supernet_card(ref)["name"]) if not isinstance(ref, str) or is_card_path(ref) else get_entry(ref).name
    )


def config_of(ref: str | os.PathLike) -> ArchConfig:
    """The architecture recorded in a supernet's model card."""
    try:
        return config_from_dict(read_supernet_card(ref)["architecture"], f"the model card of {os.fspath(ref)}")
    except TypeError as exc:
        raise CheckpointError(f"the model card of {os.fspath(ref)} has an unknown architecture: {exc}") from None


def data_of(ref: str | os.PathLike) -> DataSpec:
    """The dataset recorded in a supernet's model card (Fashion-MNIST when the card names none)."""
    return DataSpec.from_dict(read_supernet_card(ref).get("data"))


def load_supernet_split(ref: str | os.PathLike, split: str, data_dir: str | os.PathLike | None = None) -> Split:
    """Split ``split`` of the data supernet ``ref`` was trained on, checked against its architecture."""
    config = config_of(ref)
    data = load_data(data_of(ref), split, data_dir)
    check_split(data, config.in_channels, config.input_size, config.num_classes, f"supernet {supernet_name(ref)}")
    return data


def _fix(entry: SupernetEntry) -> str:
    if entry.shipped:
        return GIT_FIX
    return (
        f"It is your own file, not the package's: publish it again with `abn-gym supernet publish --name "
        f"{entry.name} --out {entry.card.parent} --force`, or restore your copy."
    )


def verify_checkpoint(name: str | os.PathLike) -> None:
    """Refuse a missing, or changed, checkpoint of ``name`` now (checks its sha256 against its card)."""
    entry = get_entry(name)
    card = read_supernet_card(name)
    if not entry.checkpoint.is_file():
        raise CheckpointError(f"checkpoint {entry.checkpoint} named by {entry.card} is missing; {_fix(entry)}")
    _verify(str(entry.checkpoint.resolve()), entry.checkpoint.stat().st_mtime_ns, card["sha256"], _fix(entry))


@lru_cache(maxsize=16)
def _verify(path: str, mtime_ns: int, expected: str, fix: str) -> None:
    actual = sha256(path)
    if actual != expected:
        # Only the card's hash is shown: the file's own would tell part of a file's contents.
        raise CheckpointError(
            f"checkpoint {path} does not have the sha256 its model card expects ({expected[:16]}...): the file is "
            f"corrupt or was replaced. {fix}"
        )


def build_from_state(state: dict, source: str) -> Supernet:
    """A frozen supernet from a checkpoint dict, refusing foreign or mismatched checkpoints."""
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointError(f"{source} is not an abn-gym supernet checkpoint (no 'model'/'config' entries)")
    if state.get("kind") != "supernet":
        raise CheckpointError(f"{source} holds a {state.get('kind')!r} model, not a supernet")
    try:
        config = config_from_dict(state["config"], source)
    except TypeError as exc:
        raise CheckpointError(f"{source} has an unknown architecture description: {exc}") from None
    net = build_supernet(config)
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
    name: str | os.PathLike = DEFAULT_SUPERNET,
    device: str | torch.device = "cpu",
    checkpoint: str | Path | None = None,
) -> Supernet:
    """Load a supernet, frozen and in eval mode, after verifying its sha256.

    Args:
        name: a registered supernet name (see :func:`available_supernets`), or the path of a
            published model card (``DIR/NAME.json``).
        device: where to put it ("cpu" or "cuda").
        checkpoint: load this file instead of the card's (no checksum: it is yours).

    Loaded supernets are shared within a process (they are frozen and read-only).
    """
    ref = os.fspath(name)
    sha = None
    if is_card_path(ref):
        # The card's sha256 is part of the key: a card published again (--force) is loaded again.
        ref, sha = str(Path(ref).expanduser().resolve()), read_supernet_card(ref)["sha256"]
    return _load(ref, str(device), None if checkpoint is None else str(checkpoint), sha)


def forget_loaded_supernets() -> None:
    """Empty this process's cache of loaded supernets: the next load reads and builds it again."""
    _load.cache_clear()


@lru_cache(maxsize=8)
def _load(name: str, device: str, checkpoint: str | None, card_sha256: str | None = None) -> Supernet:
    entry = get_entry(name)
    if checkpoint is None:
        card = read_supernet_card(name)
        if not entry.checkpoint.is_file():
            raise CheckpointError(f"checkpoint {entry.checkpoint} is missing; {_fix(entry)}")
        _verify(str(entry.checkpoint.resolve()), entry.checkpoint.stat().st_mtime_ns, card["sha256"], _fix(entry))
        state = safe_load(entry.checkpoint)
        source = str(entry.checkpoint)
    else:
        state, source = safe_load(checkpoint), checkpoint
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("device='cuda' was asked for, but torch sees no CUDA GPU; use device='cpu'")
    return build_from_state(state, source).to(device)


def checkpoint_sha256(name: str | os.PathLike) -> str:
    """sha256 of a shipped checkpoint file, as written into its model card."""
    return sha256(get_entry(name).checkpoint)
