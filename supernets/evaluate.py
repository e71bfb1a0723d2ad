"""Accuracy of a supernet configuration over a data split."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from supernets.data import Split
from supernets.supernet import Supernet


@torch.inference_mode()
def predict(
    net: Supernet,
    split: Split,
    bits: Sequence[int],
    limit: int | None = None,
    batch_size: int = 256,
    device: str = "cpu",
) -> torch.Tensor:
    """Predicted classes of the first ``limit`` images of ``split`` (all when None)."""
    n = len(split) if limit is None else min(limit, len(split))
    bits = net.validate_bits(bits)
    out = []
    for start in range(0, n, batch_size):
        x = split.inputs(slice(start, min(start + batch_size, n)), device)
        out.append(net.run_layers(net.stem_forward(x), bits).argmax(1).cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def accuracy(net: Supernet, split: Split, bits: Sequence[int], limit: int | None = None, device: str = "cpu") -> float:
    """Top-1 accuracy (0..1) of configuration ``bits`` on the first ``limit`` images."""
    pred = predict(net, split, bits, limit, device=device)
    return float((pred == split.labels[: len(pred)]).float().mean()) if len(pred) else float("nan")
