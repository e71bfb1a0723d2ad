"""Fashion-MNIST: where to find it, fixed seeded splits, and normalisation.

Sources, in order: an explicit directory (argument or ``ABN_DATA_DIR``), Debian's
``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``), then torchvision's
download into ``~/.cache/abn_gym``. Images are kept as uint8 tensors; :func:`normalize`
turns them into the float input every supernet expects.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from supernets.errors import DatasetNotFoundError, UsageError

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "abn_gym"
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
SPLITS = ("train", "val", "test")
VAL_SIZE = 5_000
SPLIT_SEED = 0
MEAN, STD = 0.2860, 0.3530
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


@dataclass(frozen=True)
class Split:
    """One split: uint8 images (N, 1, 28, 28), int64 labels (N,), and their source indices."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    source: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def inputs(self, index: torch.Tensor | slice | None = None, device: str | torch.device = "cpu") -> torch.Tensor:
        """Normalised float32 inputs for ``index`` (all when None)."""
        imgs = self.images if index is None else self.images[index]
        return normalize(imgs.to(device))


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 1, 28, 28) -> float32 normalised with Fashion-MNIST's mean and std."""
    return (images.float() / 255.0 - MEAN) / STD


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[:4], "big")
    ndim = magic & 0xFF
    if magic >> 8 != 0x08:
        raise DatasetNotFoundError(f"{path} is not an IDX file of unsigned bytes (magic {magic:#x})")
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DatasetNotFoundError(f"{path} is truncated: expected {int(np.prod(shape))} values, found {data.size}")
    return data.reshape(shape)


def _has_files(d: Path) -> bool:
    return all((d / f).is_file() for pair in FILES.values() for f in pair)


def _torchvision_download() -> Path | None:
    try:
        from torchvision.datasets import FashionMNIST

        FashionMNIST(str(CACHE_DIR), train=True, download=True)
        FashionMNIST(str(CACHE_DIR), train=False, download=True)
    except Exception:
        return None
    raw = CACHE_DIR / "FashionMNIST" / "raw"
    return raw if _has_files(raw) else None


def find_data_dir(data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Directory holding the four Fashion-MNIST IDX ``.gz`` files, or a clear error."""
    explicit = data_dir or os.environ.get("ABN_DATA_DIR")
    if explicit:
        d = Path(explicit).expanduser()
        if _has_files(d):
            return d
        missing = [f for pair in FILES.values() for f in pair if not (d / f).is_file()]
        raise DatasetNotFoundError(
            f"Fashion-MNIST directory {d} lacks {', '.join(missing)}. Point --data-dir / ABN_DATA_DIR at "
            "a folder with the four IDX .gz files, or unset it to use the Debian package."
        )
    for d in (DEBIAN_DIR, CACHE_DIR / "FashionMNIST" / "raw"):
        if _has_files(d):
            return d
    if download:
        fetched = _torchvision_download()
        if fetched is not None:
            return fetched
    raise DatasetNotFoundError(
        "Fashion-MNIST was not found. Get it one of these ways:\n"
        "  * Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y dataset-fashion-mnist\n"
        f"    (installs the IDX files into {DEBIAN_DIR});\n"
        '  * any machine with internet access: python -c "import supernets.data as d; d.find_data_dir()"\n'
        "    (torchvision downloads it into ~/.cache/abn_gym);\n"
        "  * or set ABN_DATA_DIR (or pass --data-dir) to a folder holding train-images-idx3-ubyte.gz,\n"
        "    train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz."
    )


@lru_cache(maxsize=4)
def _load_raw(directory: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    d = Path(directory)
    return {k: (_read_idx(d / img), _read_idx(d / lab)) for k, (img, lab) in FILES.items()}


def split_indices(n_train: int = 60_000) -> tuple[np.ndarray, np.ndarray]:
    """Fixed, seeded partition of the official training set into (train, val) indices."""
    perm = np.random.default_rng(SPLIT_SEED).permutation(n_train)
    return np.sort(perm[VAL_SIZE:]), np.sort(perm[:VAL_SIZE])


def load_split(name: str = "train", data_dir: str | os.PathLike | None = None) -> Split:
    """Load ``train`` (55,000), ``val`` (5,000, from the official training set) or ``test`` (10,000).

    Splits are cached per process and shared: treat their tensors as read-only.
    """
    if name not in SPLITS:
        raise UsageError(f"unknown split {name!r}; choose one of {list(SPLITS)}")
    return _load_split(name, str(find_data_dir(data_dir)))


@lru_cache(maxsize=8)
def _load_split(name: str, directory: str) -> Split:
    raw = _load_raw(str(directory))
    if name == "test":
        images, labels = raw["test"]
    else:
        images, labels = raw["train"]
        idx = split_indices(len(labels))[0 if name == "train" else 1]
        images, labels = images[idx], labels[idx]
    return Split(
        name=name,
        images=torch.from_numpy(np.array(images)).unsqueeze(1),
        labels=torch.from_numpy(labels.astype(np.int64)),
        source=str(directory),
    )
