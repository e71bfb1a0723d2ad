"""The abn-gym ids: their registration with Gymnasium, and looking up what each id fixes.

Importing this module (``import abn_gym`` does) registers every id of :data:`ENV_IDS`, and the
multi-objective twin of each, :data:`MO_ENV_IDS` (:mod:`abn_gym.multi_objective`).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import gymnasium

from supernets.foundation.errors import UnknownNameError

VECTOR_ENTRY_POINT = "abn_gym.vector:ABNVectorEnv"

DEFAULT_ENV_ID = "ABN-ResNet-v0"
"""The env id every command and helper uses when none is given."""

DEFAULT_BUDGET = 0.25
"""BitOps budget of the Budget ids, as a fraction of the all-8 configuration (just below uniform-4:
0.253 of all-8 on resnet20-fashionmnist, 0.261 on resnet20-quarter-fashionmnist)."""

QUARTER = "resnet20-quarter-fashionmnist"
QUARTER_COST_COEF = 0.1
"""Default ``cost_coef`` of ABN-ResNet20Quarter-v1, chosen on val by the rule of ABN-ResNet-v0's
(``python -m abn_gym.tables --env ABN-ResNet20Quarter-v1 --split val``)."""

BITFUSION_COST_COEF = 0.09
"""``cost_coef`` of ABN-ResNet20Quarter-BitFusion-v1, by the same rule on val in BitFusion's bricks
(``python -m abn_gym.tables --env ABN-ResNet20Quarter-BitFusion-v1 --split val``): uniform-4 is the
best uniform configuration from 0.013 to 0.168; uniform-3 costs what uniform-4 does and is never best."""

MOBILENET = "mobilenetv2-tiny-fashionmnist"
MOBILENET_COST_COEF = 0.1
"""Default ``cost_coef`` of ABN-MobileNetV2-v0, by the same rule on val
(``python -m abn_gym.tables --supernet mobilenetv2-tiny-fashionmnist --split val``: uniform-4 is the
best uniform configuration from 0.046 to 0.160)."""

MOBILENET_BUDGET = 0.39
"""BitOps budget of ABN-MobileNetV2-Budget-v0: just below uniform-4 (0.400 of all-8), as the other
Budget ids' 0.25. The stem and classifier are a larger share of this net (uniform-2 is already 0.250),
so 0.25 would leave one configuration."""

ENV_IDS: dict[str, dict] = {
    DEFAULT_ENV_ID: {},
    "ABN-ResNet-Budget-v0": {"reward": "correct", "budget": DEFAULT_BUDGET},
    # The steep task: ResNet-20 at a quarter of the width, where bit-widths move accuracy by points.
    "ABN-ResNet20Quarter-v1": {"supernet": QUARTER, "cost_coef": QUARTER_COST_COEF},
    "ABN-ResNet20Quarter-Budget-v1": {"supernet": QUARTER, "reward": "correct", "budget": DEFAULT_BUDGET},
    # The steep task priced by a BitFusion-style accelerator (2-bit bricks) instead of BitOps.
    "ABN-ResNet20Quarter-BitFusion-v1": {
        "supernet": QUARTER,
        "cost_coef": BITFUSION_COST_COEF,
        "cost_model": "bitfusion",
    },
    # The third task: a MobileNetV2-style net, whose depthwise and 1x1 layers differ in sensitivity.
    "ABN-MobileNetV2-v0": {"supernet": MOBILENET, "cost_coef": MOBILENET_COST_COEF},
    "ABN-MobileNetV2-Budget-v0": {"supernet": MOBILENET, "reward": "correct", "budget": MOBILENET_BUDGET},
}
"""Every registered id with the keyword arguments it fixes."""

MO_VECTOR_ENTRY_POINT = "abn_gym.multi_objective:MOABNVectorEnv"

MO_ENV_IDS: dict[str, str] = {f"mo-{_id}": _id for _id in ENV_IDS}
"""Every multi-objective id (MO-Gymnasium's ``mo-`` prefix) with the scalar id whose arguments it takes."""

# Each scalar id, then its multi-objective twin on the same arguments. The twin turns Gymnasium's passive
# checker off, as MO-Gymnasium's make does: it warns on every vector reward (it expects a float).
_ENTRIES = [(i, "abn_gym.env:ABNEnv", VECTOR_ENTRY_POINT, k, False) for i, k in ENV_IDS.items()]
_ENTRIES += [
    (i, "abn_gym.multi_objective:MOABNEnv", MO_VECTOR_ENTRY_POINT, ENV_IDS[s], True) for i, s in MO_ENV_IDS.items()
]
for _id, _entry, _vector, _kwargs, _quiet in _ENTRIES:
    if _id not in gymnasium.registry:
        gymnasium.register(
            id=_id, entry_point=_entry, vector_entry_point=_vector, kwargs=dict(_kwargs), disable_env_checker=_quiet
        )


def _import_env_module(module: str, env_id: str) -> None:
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        # A console script does not put the current folder on sys.path; a user's mymodule.py lives there.
        if exc.name == module.split(".")[0] and os.getcwd() not in {os.path.abspath(p) for p in sys.path}:
            sys.path.append(os.getcwd())
            return _import_env_module(module, env_id)
        raise UnknownNameError(
            f"env id {env_id!r}: cannot import module {module!r} ({exc}); it should register the id with "
            "gymnasium.register"
        ) from None


def env_kwargs(env_id: str, **overrides: Any) -> dict[str, Any]:
    """The registered kwargs of ``env_id`` updated with ``overrides`` (clear error on unknown ids).

    Accepts ``"ABN-ResNet-v0"`` and ``"abn_gym:ABN-ResNet-v0"`` alike; like ``gymnasium.make``,
    ``"mymodule:ABN-Mine-v0"`` imports ``mymodule`` first (the current folder is searched too), so
    an id it registers is found.
    """
    if ":" in env_id:
        _import_env_module(env_id.split(":", 1)[0], env_id)
    try:
        spec = gymnasium.spec(env_id.split(":", 1)[-1])
    except gymnasium.error.Error as exc:
        reason = str(exc).rstrip(".")
        raise UnknownNameError(f"unknown env id {env_id!r}: {reason}. abn-gym ids: {sorted(ENV_IDS)}") from None
    if spec.vector_entry_point == MO_VECTOR_ENTRY_POINT:
        scalar = MO_ENV_IDS.get(spec.id, "the id without its 'mo-' prefix")
        raise UnknownNameError(
            f"{env_id!r} is a multi-objective id (vector rewards, for MO-Gymnasium); abn-gym's commands and agents "
            f"score scalar rewards: use {scalar!r}, which runs the same episodes"
        )
    if spec.vector_entry_point != VECTOR_ENTRY_POINT:
        raise UnknownNameError(f"{env_id!r} is not an abn-gym environment; use one of {sorted(ENV_IDS)}")
    return {**spec.kwargs, **overrides}
