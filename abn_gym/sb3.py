"""stable-baselines3 ``VecEnv`` over the batched engine, so SB3 trains on it natively.

SB3's VecEnv API resets a finished sub-env within the same ``step`` and puts the final
observation in ``info["terminal_observation"]``; this adapter does exactly that over
:class:`abn_gym.vector.ABNVectorEnv`. It works with ``VecMonitor``, ``evaluate_policy`` and
MaskablePPO (``env_method("action_masks")``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecMonitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from abn_gym.errors import EnvArgumentError
from abn_gym.registration import DEFAULT_ENV_ID, env_kwargs
from abn_gym.vector import ABNVectorEnv


class SB3VecEnv(VecEnv):
    """SB3 VecEnv of N sub-envs computed as one batch.

    Args:
        env_id: a registered abn-gym id, e.g. "ABN-ResNet-v0".
        num_envs: number of sub-envs.
        seed: seed of the first reset (sub-env i gets seed + i), or None.
        **kwargs: environment arguments, overriding the id's registered ones.
    """

    def __init__(self, env_id: str = DEFAULT_ENV_ID, num_envs: int = 8, seed: int | None = None, **kwargs: Any) -> None:
        self.env_id = env_id
        if "autoreset_mode" in kwargs:
            raise EnvArgumentError(
                "SB3VecEnv does not take autoreset_mode: it resets finished sub-envs within the same step, as SB3 "
                "expects (the final observation is in info['terminal_observation'])"
            )
        self.venv = ABNVectorEnv(num_envs, **env_kwargs(env_id, **kwargs))
        super().__init__(num_envs, self.venv.single_observation_space, self.venv.single_action_space)
        self._actions: np.ndarray | None = None
        if seed is not None:
            self.seed(seed)

    def reset(self) -> VecEnvObs:
        """Reset all sub-envs (using the seeds given to ``seed()``, once)."""
        seeds = self._seeds if any(s is not None for s in self._seeds) else None
        obs, _ = self.venv.reset(seed=seeds)
        self._reset_seeds()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        """Store the actions for :meth:`step_wait`."""
        self._actions = np.asarray(actions).reshape(self.num_envs).astype(np.int64, copy=False)

    def step_wait(self) -> VecEnvStepReturn:
        """Step every sub-env; finished ones are reset at once (SB3 semantics)."""
        obs, rewards, terminated, _, info = self.venv.step(self._actions)
        n = self.num_envs
        if not terminated[0]:
            return obs, rewards.astype(np.float32), np.zeros(n, dtype=bool), [{} for _ in range(n)]
        keys = [k for k in info if not k.startswith("_")]
        infos: list[dict[str, Any]] = []
        for i in range(n):
            item = {k: _value(info[k][i]) for k in keys}
            item["terminal_observation"] = _row(obs, i)
            item["TimeLimit.truncated"] = False
            infos.append(item)
        new_obs, _ = self.venv.reset()
        return new_obs, rewards.astype(np.float32), np.ones(n, dtype=bool), infos

    def close(self) -> None:
        """Release the environment."""
        self.venv.close()

    def _indices(self, indices: VecEnvIndices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)

    def action_masks(self) -> np.ndarray:
        """(N, K) allowed actions of every sub-env."""
        return self.venv.action_masks()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """An attribute of the (shared) environment, once per requested sub-env."""
        if attr_name == "action_masks" or hasattr(self.venv, attr_name):
            value = getattr(self.venv, attr_name)
            return [value for _ in self._indices(indices)]
        raise AttributeError(f"abn-gym environments have no attribute {attr_name!r}")

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute on the shared environment (it is shared by all sub-envs)."""
        setattr(self.venv, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        """``action_masks`` per sub-env (for MaskablePPO); other methods run once on the batch."""
        idx = self._indices(indices)
        if method_name == "action_masks":
            masks = self.venv.action_masks()
            return [masks[i] for i in idx]
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result for _ in idx]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        """Sub-envs are not gymnasium-wrapped."""
        return [False for _ in self._indices(indices)]


def _value(value: Any) -> Any:
    # The single env's types: NumPy scalars, and arrays (episode_bits) as arrays of their own.
    return value.copy() if isinstance(value, np.ndarray) else value


def _row(obs: VecEnvObs, i: int) -> Any:
    if isinstance(obs, dict):
        return {k: v[i] for k, v in obs.items()}
    return obs[i]


def make_sb3_env(
    env_id: str = DEFAULT_ENV_ID, num_envs: int = 8, seed: int | None = None, monitor: bool = True, **kwargs: Any
) -> VecEnv:
    """The native SB3 VecEnv, wrapped in ``VecMonitor`` by default (episode returns for logging)."""
    env = SB3VecEnv(env_id, num_envs, seed, **kwargs)
    return VecMonitor(env) if monitor else env


__all__: Sequence[str] = ("SB3VecEnv", "env_kwargs", "make_sb3_env")
