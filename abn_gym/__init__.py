"""abn-gym: Gymnasium environments for per-input, layer-wise bit-width control (ABN).

``import abn_gym`` registers the environment ids; ``gymnasium.make("abn_gym:ABN-ResNet-v0")``
imports it for you.
"""

from __future__ import annotations

import gymnasium

from abn_gym.config import DEFAULT_COST_COEF, ENV_KWARGS, EnvConfig, make_config
from abn_gym.registration import DEFAULT_ENV_ID

__version__ = "0.1.0"

DEFAULT_BUDGET = 0.25
"""BitOps budget of the Budget ids, as a fraction of the all-8 configuration (just below uniform-4:
0.253 of all-8 on resnet20-fashionmnist, 0.261 on resnet20-quarter-fashionmnist)."""

QUARTER = "resnet20-quarter-fashionmnist"
QUARTER_COST_COEF = 0.1
"""Default ``cost_coef`` of ABN-ResNet20Quarter-v1, chosen on val by the rule of ABN-ResNet-v0's
(``python -m abn_gym.tables --env ABN-ResNet20Quarter-v1 --split val``)."""

ENV_IDS: dict[str, dict] = {
    DEFAULT_ENV_ID: {},
    "ABN-ResNet-Budget-v0": {"reward": "correct", "budget": DEFAULT_BUDGET},
    # The steep task: ResNet-20 at a quarter of the width, where bit-widths move accuracy by points.
    "ABN-ResNet20Quarter-v1": {"supernet": QUARTER, "cost_coef": QUARTER_COST_COEF},
    "ABN-ResNet20Quarter-Budget-v1": {"supernet": QUARTER, "reward": "correct", "budget": DEFAULT_BUDGET},
}
"""Every registered id with the keyword arguments it fixes."""

for _id, _kwargs in ENV_IDS.items():
    if _id not in gymnasium.registry:
        gymnasium.register(
            id=_id,
            entry_point="abn_gym.env:ABNEnv",
            vector_entry_point="abn_gym.vector:ABNVectorEnv",
            kwargs=dict(_kwargs),
        )

__all__ = ["DEFAULT_BUDGET", "DEFAULT_COST_COEF", "DEFAULT_ENV_ID", "ENV_IDS", "ENV_KWARGS", "EnvConfig", "make_config"]
