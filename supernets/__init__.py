"""Weight-shared, layer-wise quantizable supernets (ABN, arXiv 2204.09992) and their tooling.

>>> from supernets import load_supernet
>>> net = load_supernet("resnet20-fashionmnist")
>>> net(x, [4] * net.num_switchable)  # logits
>>> mine = load_supernet("nets/mine.json")  # a supernet published with `abn-gym supernet publish --out nets`
"""

from supernets.bitops import LayerSpec
from supernets.data import DatasetNotFoundError, DataSpec, load_split
from supernets.families import families, load_arch_config, register_family
from supernets.foundation.errors import CheckpointError
from supernets.mobilenetv2 import MobileNetV2Config
from supernets.plain import PlainConfig
from supernets.registry import available_supernets, load_supernet, read_supernet_card, supernet_name
from supernets.resnet import BIT_CHOICES, ResNetConfig, ResNetSupernet, resnet20
from supernets.supernet import ArchConfig, LayerPlan, Plan, State, StemPlan, Supernet

__all__ = [
    "BIT_CHOICES",
    "ArchConfig",
    "CheckpointError",
    "DataSpec",
    "DatasetNotFoundError",
    "LayerPlan",
    "LayerSpec",
    "MobileNetV2Config",
    "PlainConfig",
    "Plan",
    "ResNetConfig",
    "ResNetSupernet",
    "State",
    "StemPlan",
    "Supernet",
    "available_supernets",
    "families",
    "load_arch_config",
    "load_split",
    "load_supernet",
    "read_supernet_card",
    "register_family",
    "resnet20",
    "supernet_name",
]
