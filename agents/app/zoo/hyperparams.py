"""The zoo's hyper-parameters: ``agents/hyperparams/zoo.yml`` in rl-zoo3's format, read, checked and exported.

One section per algorithm (named as rl-zoo3 names it), each an rl-zoo3 hyper-parameter file keyed
by env id. ``abn-gym zoo --export-rl-zoo3 DIR`` writes the sections as rl-zoo3's
one-file-per-algorithm layout, for ``rl_zoo3.train --conf-file``.
"""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path
from typing import Any

import yaml

from abn_gym.registration import env_kwargs
from agents.controllers.algorithms import RL_ZOO3_ALGOS, algo_class, by_rl_zoo3_name
from supernets.foundation.errors import UsageError
from supernets.foundation.files import atomic_write_text

HYPERPARAMS = Path(__file__).resolve().parents[2] / "hyperparams" / "zoo.yml"
NOT_IN_RL_ZOO3 = tuple(name for name in RL_ZOO3_ALGOS if not by_rl_zoo3_name(name).in_rl_zoo3)
"""Sections rl-zoo3 has no algorithm for: only ``abn-gym zoo`` trains them."""
ZOO_KEYS = ("n_timesteps", "policy", "n_envs", "normalize")
"""rl-zoo3's own keys; every other key of a section is a keyword argument of the algorithm."""
NORMALIZE_OBS = "{'norm_obs': True, 'norm_reward': False}"
"""The ``normalize`` value that turns on ``abn-gym train --normalize-obs``: rl-zoo3 reads this string as
VecNormalize's arguments, so both normalise the observations and leave the rewards as they are."""
RL_ZOO3_ONLY_KEYS = (
    "env_wrapper",
    "vec_env_wrapper",
    "frame_stack",
    "callback",
    "env_kwargs",
    "eval_env_kwargs",
    "normalize_kwargs",
)
"""rl-zoo3 keys that ``abn-gym zoo`` does not implement: refused rather than ignored."""


class ZooConfigError(UsageError):
    """The zoo's hyper-parameter file cannot be used; the message names the section and key."""


def load_hyperparams(path: str | Path = HYPERPARAMS) -> dict[str, dict[str, dict[str, Any]]]:
    """zoo.yml as ``{rl-zoo3 algo: {env id: hyper-parameters}}``, each section checked.

    Args:
        path: the hyper-parameter file (default: the shipped zoo.yml).
    """
    path = Path(path)
    try:
        conf = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ZooConfigError(f"cannot read the zoo's hyper-parameters {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ZooConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(conf, dict) or not conf:
        raise ZooConfigError(f"{path}: expected one section per algorithm, e.g. `ppo: {{ABN-ResNet-v0: {{...}}}}`")
    for algo, section in conf.items():
        if algo not in RL_ZOO3_ALGOS:
            raise ZooConfigError(f"{path}: unknown algorithm section {algo!r}; known: {', '.join(RL_ZOO3_ALGOS)}")
        if not isinstance(section, dict) or not section:
            raise ZooConfigError(f"{path}: section {algo!r} must map env ids to hyper-parameters")
        for env_id, hp in section.items():
            check_section(algo, env_id, hp, where=str(path))
    return conf


def check_section(algo: str, env_id: str, hp: Any, where: str = "zoo.yml") -> None:
    """Check one rl-zoo3 entry: a known env id, the zoo keys, and keyword arguments the algorithm has.

    Args:
        algo: the section's rl-zoo3 algorithm name.
        env_id: the entry's env id.
        hp: the entry's hyper-parameters.
        where: the file named in error messages.
    """
    env_kwargs(env_id)  # an unknown id raises, listing the known ones
    if not isinstance(hp, dict):
        raise ZooConfigError(f"{where}: {algo}/{env_id} must be a mapping of hyper-parameters")
    missing = [k for k in ("n_timesteps", "policy") if k not in hp]
    if missing:
        raise ZooConfigError(f"{where}: {algo}/{env_id} lacks {', '.join(missing)} (rl-zoo3 requires them)")
    for key in ("n_timesteps", "n_envs"):
        value = hp.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 1:
            raise ZooConfigError(f"{where}: {algo}/{env_id}: {key} must be a positive whole number, got {value!r}")
    normalize_obs(hp, f"{where}: {algo}/{env_id}")
    refused = [k for k in hp if k in RL_ZOO3_ONLY_KEYS]
    if refused:
        raise ZooConfigError(f"{where}: {algo}/{env_id}: abn-gym zoo does not implement rl-zoo3's {refused}")
    cls = algo_class(RL_ZOO3_ALGOS[algo])
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "env"}
    unknown = [k for k in hp if k not in ZOO_KEYS and k not in accepted]
    if unknown:
        raise ZooConfigError(
            f"{where}: {algo}/{env_id}: {cls.__name__} has no argument {', '.join(map(repr, unknown))}"
        )
    if hp["policy"] not in getattr(cls, "policy_aliases", {}):
        raise ZooConfigError(
            f"{where}: {algo}/{env_id}: policy {hp['policy']!r} is not one of {cls.__name__}'s "
            f"{sorted(getattr(cls, 'policy_aliases', {}))}"
        )


def normalize_obs(hp: dict[str, Any], where: str = "zoo.yml") -> bool:
    """Whether a section's rl-zoo3 ``normalize`` key asks for observation normalisation (checked).

    ``false`` (or no key) is off; :data:`NORMALIZE_OBS` (rl-zoo3's string of VecNormalize arguments) is on.
    ``true`` is refused: rl-zoo3 would then normalise the rewards too, which abn-gym's training does not.

    Args:
        hp: one entry's hyper-parameters.
        where: the entry named in error messages.
    """
    value = hp.get("normalize", False)
    if value is False:
        return False
    fix = f'write normalize: "{NORMALIZE_OBS}" (observations only, as rl-zoo3 reads it too) or normalize: false'
    if value is True:
        raise ZooConfigError(
            f"{where}: normalize: true also normalises rewards in rl-zoo3, which abn-gym does not; {fix}"
        )
    try:
        kwargs = ast.literal_eval(value) if isinstance(value, str) else None
    except (ValueError, SyntaxError):
        kwargs = None
    if kwargs != {"norm_obs": True, "norm_reward": False}:
        raise ZooConfigError(f"{where}: normalize {value!r} is not supported; {fix}")
    return True


def export_rl_zoo3(conf: dict[str, dict], out: str | Path) -> list[Path]:
    """Write each section to ``out/<algo>.yml``: rl-zoo3's layout, for ``rl_zoo3.train --conf-file``.

    Args:
        conf: the hyper-parameters, as :func:`load_hyperparams` returns them.
        out: the folder to write into.
    """
    out = Path(out)
    paths = []
    for algo, section in conf.items():
        head = f"# {algo} hyper-parameters exported from abn-gym's zoo.yml by `abn-gym zoo --export-rl-zoo3`\n"
        if algo in NOT_IN_RL_ZOO3:
            head += "# rl-zoo3 has no such algorithm; kept for reference\n"
        plain = json.loads(json.dumps(section))  # entries shared through YAML aliases are written out in full
        atomic_write_text(out / f"{algo}.yml", head + yaml.safe_dump(plain, sort_keys=False))
        paths.append(out / f"{algo}.yml")
    return paths
