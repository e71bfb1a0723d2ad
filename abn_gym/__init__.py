"""abn-gym: Gymnasium environments for per-input, layer-wise bit-width control (ABN).

``import abn_gym`` registers the environment ids (:mod:`abn_gym.registration`);
``gymnasium.make("abn_gym:ABN-ResNet-v0")`` imports it for you.
"""

from __future__ import annotations

from abn_gym.config import DEFAULT_COST_COEF, ENV_KWARGS, EnvConfig, make_config
from abn_gym.registration import DEFAULT_BUDGET, DEFAULT_ENV_ID, ENV_IDS, MO_ENV_IDS, QUARTER, QUARTER_COST_COEF

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_BUDGET",
    "DEFAULT_COST_COEF",
    "DEFAULT_ENV_ID",
    "ENV_IDS",
    "ENV_KWARGS",
    "MO_ENV_IDS",
    "QUARTER",
    "QUARTER_COST_COEF",
    "EnvConfig",
    "make_config",
]
