"""The data a supernet sees: Fashion-MNIST (the default) or a user's own ``.npz``; splits and normalisation.

Fashion-MNIST sources, in order: an explicit directory (argument or ``ABN_DATA_DIR``), Debian's
``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``), then torchvision's
download into ``~/.cache/abn_gym``. Images are kept as uint8 tensors; :func:`normalize`
turns them into the float input every supernet expects.

Another dataset is one ``.npz`` file holding ``train_images``, ``train_labels``, ``val_images``,
``val_labels``, ``test_images`` and ``test_labels``: uint8 images (N, H, W) or (N, C, H, W) and
integer labels 0..classes-1; optional ``mean`` and ``std`` arrays (one value per channel, on the
0-1 scale) give the normalisation, else it is computed from the train images. A :class:`DataSpec`
describes either kind, and a supernet's model card records it.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from supernets.foundation.errors import ABNGymError, UsageError
from supernets.foundation.files import sha256


class DatasetNotFoundError(ABNGymError, FileNotFoundError):
    """The dataset could not be found, downloaded or read; the message says how to get it."""


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


FASHION_MNIST = "fashion-mnist"
NPZ_KEYS = tuple(f"{split}_{part}" for split in SPLITS for part in ("images", "labels"))


@dataclass(frozen=True)
class Split:
    """One split: uint8 images (N, C, H, W), int64 labels (N,), their source, and the normalisation."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    source: str
    mean: tuple[float, ...] = (MEAN,)
    std: tuple[float, ...] = (STD,)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def inputs(self, index: torch.Tensor | slice | None = None, device: str | torch.device = "cpu") -> torch.Tensor:
        """Normalised float32 inputs for ``index`` (all when None)."""
        imgs = self.images if index is None else self.images[index]
        return normalize(imgs.to(device), self.mean, self.std)


def normalize(images: torch.Tensor, mean: tuple[float, ...] = (MEAN,), std: tuple[float, ...] = (STD,)) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 normalised per channel (default: Fashion-MNIST's mean and std)."""
    if len(mean) == 1:
        # Scalars: the exact arithmetic (and bits) of the shipped supernets' inputs.
        return (images.float() / 255.0 - mean[0]) / std[0]
    m = torch.tensor(mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    return (images.float() / 255.0 - m) / s


@dataclass(frozen=True)
class DataSpec:
    """Which data a supernet is trained and evaluated on; recorded in its model card as ``data``.

    Args:
        kind: ``"fashion-mnist"`` or ``"npz"``.
        path: the ``.npz`` file (None for Fashion-MNIST, found as :func:`find_data_dir` says).
        sha256: the ``.npz`` file's sha256 when it was recorded (None for Fashion-MNIST).
        mean: per-channel mean on the 0-1 scale used to normalise inputs.
        std: per-channel standard deviation on the 0-1 scale.
        num_classes: number of classes.
        channels: image channels.
        size: image height and width (square images).
    """

    kind: str = FASHION_MNIST
    path: str | None = None
    sha256: str | None = None
    mean: tuple[float, ...] = (MEAN,)
    std: tuple[float, ...] = (STD,)
    num_classes: int = 10
    channels: int = 1
    size: int = 28
    classes: tuple[str, ...] = field(default=CLASSES)

    def as_dict(self) -> dict:
        """JSON-friendly form (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict | None) -> DataSpec:
        """Inverse of :meth:`as_dict`; None (a card from before ``data`` was recorded) is Fashion-MNIST."""
        if not d:
            return cls()
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**fields)


@lru_cache(maxsize=4)
def _read_npz(path: str, mtime_ns: int) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: np.asarray(z[k]) for k in z.files}
    except Exception as exc:
        raise UsageError(f"dataset {path} could not be read as an .npz file ({type(exc).__name__}: {exc})") from None
    missing = [k for k in NPZ_KEYS if k not in data]
    if missing:
        raise UsageError(f"dataset {path} lacks the arrays {missing}; an .npz dataset holds {list(NPZ_KEYS)}")
    for split in SPLITS:
        images, labels = data[f"{split}_images"], data[f"{split}_labels"]
        if images.dtype != np.uint8 or images.ndim not in (3, 4):
            raise UsageError(
                f"dataset {path}: {split}_images must be uint8 (N, H, W) or (N, C, H, W), got {images.dtype} "
                f"{images.shape}"
            )
        if images.ndim == 3:
            data[f"{split}_images"] = images = images[:, None]
        if images.shape[2] != images.shape[3]:
            raise UsageError(
                f"dataset {path}: {split} images are {images.shape[2]}x{images.shape[3]}; use square images"
            )
        if labels.shape != (images.shape[0],) or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
            raise UsageError(
                f"dataset {path}: {split}_labels must be {images.shape[0]} integers >= 0, "
                f"got {labels.dtype} {labels.shape}"
            )
    shapes = {data[f"{s}_images"].shape[1:] for s in SPLITS}
    if len(shapes) != 1:
        raise UsageError(f"dataset {path}: the splits' images differ in shape ({sorted(shapes)})")
    return data


def npz_spec(path: str | os.PathLike) -> DataSpec:
    """The :class:`DataSpec` of an ``.npz`` dataset: shape, classes and normalisation read from the file."""
    p = Path(path).expanduser().resolve()
    if not p.is_file():
        raise UsageError(f"dataset {path} does not exist; give an .npz file with arrays {list(NPZ_KEYS)}")
    data = _read_npz(str(p), p.stat().st_mtime_ns)
    train = data["train_images"]
    channels, size = int(train.shape[1]), int(train.shape[2])
    if "mean" in data and "std" in data:
        mean, std = tuple(float(v) for v in data["mean"].ravel()), tuple(float(v) for v in data["std"].ravel())
    else:
        scaled = train.astype(np.float64) / 255.0
        mean = tuple(float(v) for v in scaled.mean(axis=(0, 2, 3)))
        std = tuple(float(v) for v in scaled.std(axis=(0, 2, 3)))
    if len(mean) != channels or len(std) != channels or min(std) <= 0:
        raise UsageError(f"dataset {path}: mean and std need one value per channel ({channels}), std > 0")
    num_classes = int(max(int(data[f"{s}_labels"].max()) for s in SPLITS)) + 1
    return DataSpec(
        kind="npz",
        path=str(p),
        sha256=sha256(p),
        mean=mean,
        std=std,
        num_classes=num_classes,
        channels=channels,
        size=size,
        classes=tuple(str(c) for c in range(num_classes)),
    )


def data_spec(data: str | os.PathLike | None = None) -> DataSpec:
    """Fashion-MNIST's :class:`DataSpec` (``data`` None) or an ``.npz`` dataset's."""
    return DataSpec() if data is None else npz_spec(data)


def load_data(spec: DataSpec, name: str = "train", data_dir: str | os.PathLike | None = None) -> Split:
    """Split ``name`` of the dataset ``spec`` describes.

    Args:
        spec: the dataset (see :class:`DataSpec`).
        name: ``train``, ``val`` or ``test``.
        data_dir: Fashion-MNIST's directory, or for an ``.npz`` dataset another path to the same file
            (when it has moved since the card was written).
    """
    if spec.kind == FASHION_MNIST:
        return load_split(name, data_dir)
    if spec.kind != "npz":
        raise UsageError(f"unknown dataset kind {spec.kind!r}; expected {FASHION_MNIST!r} or 'npz'")
    if name not in SPLITS:
        raise UsageError(f"unknown split {name!r}; choose one of {list(SPLITS)}")
    path = Path(data_dir if data_dir is not None else str(spec.path)).expanduser().resolve()
    if not path.is_file():
        raise DatasetNotFoundError(
            f"dataset {path} does not exist; pass the .npz file the supernet was trained on as data_dir / --data-dir"
        )
    _read_npz(str(path), path.stat().st_mtime_ns)  # checks the file's arrays
    if spec.sha256 is not None and _cached_sha256(str(path), path.stat().st_mtime_ns) != spec.sha256:
        raise UsageError(f"dataset {path} is not the file the supernet was trained on (its sha256 differs)")
    return _npz_split(str(path), path.stat().st_mtime_ns, name, spec.mean, spec.std)


@lru_cache(maxsize=8)
def _cached_sha256(path: str, mtime_ns: int) -> str:
    return sha256(path)


@lru_cache(maxsize=8)
def _npz_split(path: str, mtime_ns: int, name: str, mean: tuple[float, ...], std: tuple[float, ...]) -> Split:
    data = _read_npz(path, mtime_ns)
    return Split(
        name=name,
        images=torch.from_numpy(np.ascontiguousarray(data[f"{name}_images"])),
        labels=torch.from_numpy(data[f"{name}_labels"].astype(np.int64)),
        source=path,
        mean=mean,
        std=std,
    )


def check_count(n: int | None, split: str, size: int, flag: str) -> None:
    """Refuse an image count ``n`` (None: the whole split) outside 1..``size`` with one line naming the split's size.

    The one message every command's image-count option gives (``--episodes``, ``--limit``, ``--train-images`` ...).
    """
    if n is not None and not 1 <= n <= size:
        raise UsageError(f"{flag} {n}: the {split} split has {size} images; choose 1 to {size}")


def check_split(split: Split, channels: int, size: int, num_classes: int, what: str) -> None:
    """Refuse a split whose images or labels do not fit a network (``what`` names the network)."""
    found = tuple(split.images.shape[1:])
    if found != (channels, size, size):
        raise UsageError(
            f"{what} takes {channels}x{size}x{size} inputs (channels x height x width), but the {split.name} split "
            f"of {split.source} holds {found[0]}x{found[1]}x{found[2]} images; give data of that shape, or an "
            "architecture config whose in_channels and input_size match the data"
        )
    if len(split) and int(split.labels.max()) >= num_classes:
        raise UsageError(
            f"{what} has {num_classes} classes, but the {split.name} split of {split.source} has label "
            f"{int(split.labels.max())}; set num_classes in the architecture config"
        )


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
        # lazy: torchvision costs seconds at import, and only a missing dataset needs it
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
    shape = raw["train"][0].shape[1:]
    if shape != (28, 28) or raw["test"][0].shape[1:] != (28, 28):
        raise DatasetNotFoundError(
            f"{directory} holds {'x'.join(map(str, shape))} images under Fashion-MNIST's file names, but "
            "Fashion-MNIST's are 28x28. Give another dataset as an .npz file (`abn-gym supernet train --data "
            "FILE.npz`), or point --data-dir / ABN_DATA_DIR at the real Fashion-MNIST"
        )
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
