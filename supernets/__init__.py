"""Weight-shared, layer-wise quantizable supernets (ABN, arXiv 2204.09992) and their tooling.

>>> from supernets import load_supernet
>>> net = load_supernet("resnet20-fashionmnist")
>>> net(x, [4] * net.num_switchable)  # logits
>>> mine = load_supernet("nets/mine.json")  # a supernet published with `abn-gym supernet publish --out nets`
"""

from supernets.bitops import LayerSpec
from supernets.data import DatasetNotFoundError, DataSpec, load_split
from supernets.foundation.errors import CheckpointError
from supernets.registry import available_supernets, load_supernet, read_supernet_card, supernet_name
from supernets.resnet import BIT_CHOICES, ResNetConfig, ResNetSupernet, State, load_arch_config, resnet20

__all__ = [
    "BIT_CHOICES",
    "CheckpointError",
    "DataSpec",
    "DatasetNotFoundError",
    "LayerSpec",
    "ResNetConfig",
    "ResNetSupernet",
    "State",
    "available_supernets",
    "load_arch_config",
    "load_split",
    "load_supernet",
    "read_supernet_card",
    "resnet20",
    "supernet_name",
]
