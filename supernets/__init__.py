"""Weight-shared, layer-wise quantizable supernets (ABN, arXiv 2204.09992) and their tooling.

>>> from supernets import load_supernet
>>> net = load_supernet("resnet20-fashionmnist")
>>> net(x, [4] * net.num_switchable)  # logits
"""

from supernets.bitops import LayerSpec
from supernets.checkpoint import CheckpointError
from supernets.data import DatasetNotFoundError, load_split
from supernets.registry import available_supernets, load_supernet, read_card
from supernets.resnet import BIT_CHOICES, ResNetConfig, ResNetSupernet, State, resnet20

__all__ = [
    "BIT_CHOICES",
    "CheckpointError",
    "DatasetNotFoundError",
    "LayerSpec",
    "ResNetConfig",
    "ResNetSupernet",
    "State",
    "available_supernets",
    "load_split",
    "load_supernet",
    "read_card",
    "resnet20",
]
