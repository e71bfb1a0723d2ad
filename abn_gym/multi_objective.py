"""The multi-objective ids (MO-Gymnasium's API): the scalar ids' episodes with a vector reward.

``mo-<id>`` (``mo-ABN-ResNet20Quarter-v1``...) is registered for every scalar id with the same
arguments. Its single env is :class:`MOABNEnv` and its native vector env :class:`MOABNVectorEnv`;
both return, at every step, the reward vector (terminal term, minus the step's cost as a fraction
of all-8's, in the env's ``cost_model``: BitOps by default) from
:func:`abn_gym.rewards.reward_vectors`, the function both share. MO-Gymnasium and morl-baselines
read ``env.unwrapped.reward_space`` and ``env.unwrapped.reward_dim``, which is why these are
subclasses and not wrappers. ``scalar_weights`` weighs the vector back into the scalar id's
reward, bit for bit (``mo_gymnasium.wrappers.LinearReward(env, weight=...)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from abn_gym.budgets import spans
from abn_gym.config import EnvConfig, architecture, reward_fn, table_of
from abn_gym.engine import StepResult
from abn_gym.env import ABNEnv
from abn_gym.errors import EnvArgumentError
from abn_gym.fronts import known_front
from abn_gym.rewards import OBJECTIVES, reward_vectors
from abn_gym.vector import ABNVectorEnv


def objectives(config: EnvConfig) -> tuple[spaces.Box, np.ndarray]:
    """The per-step ``reward_space`` and the ``scalar_weights`` of validated arguments ``config``.

    The bounds: the terminal term's range (:meth:`abn_gym.rewards.RewardFn.terminal_bounds`; 0
    before the last step), and from minus the costliest step's cost fraction (computed as the env
    computes a step's cost, so it is reached exactly) up to 0, the reward of the vector env's
    autoreset call (as in MO-Gymnasium's vector envs; every real step costs more than 0).
    """
    net = architecture(config.supernet)
    reward = reward_fn(config, net)
    try:
        weights = reward.scalar_weights
    except ValueError as exc:
        raise EnvArgumentError(f"invalid reward={config.reward!r} for a multi-objective id: {exc}") from None
    assert config.bit_choices is not None, "make_config resolves the bit-widths"
    points = config.decide_at or tuple(range(net.num_switchable))
    costs = table_of(config.supernet, config.bit_choices, config.cost_model)
    # A step runs the layers from its decision point up to the next one (the engine's span_units).
    span, _ = spans(costs.layers, points)
    costliest = max(span[p].max() for p in points)
    low, high = reward.terminal_bounds()
    space = spaces.Box(
        low=np.array([min(low, 0.0), -(np.float64(costliest) / costs.all8)]),
        high=np.array([max(high, 0.0), 0.0]),
        dtype=np.float64,
    )
    return space, weights


class MOABNEnv(ABNEnv):
    """:class:`~abn_gym.env.ABNEnv` with a vector reward (see its "Multi-objective ids" section).

    ``step`` returns a float64 array of shape ``(reward_dim,)`` = (2,): the reward's terminal term
    (``correct`` as 1.0 or 0.0 for the registered ids; 0 before the last step) and minus the step's
    cost as a fraction of all-8's (``-info["cost_step"] / info["cost_all8"]``, in the env's
    ``cost_model``; under the default "bitops", ``-info["bitops_step"] / info["bitops_all8"]``). Everything else
    (observations, actions, info, budgets, masks) is the scalar env's.

    Attributes:
        reward_space: ``Box`` of one step's reward vector, float64, shape (2,).
        reward_dim: 2, the number of objectives (:data:`abn_gym.rewards.OBJECTIVES`).
        scalar_weights: ``w`` with ``w @ reward`` equal to the scalar env's reward, bit for bit:
            ``[1, cost_coef]`` for the rewards with a step cost, ``[1, 0]`` for ``"correct"``.
    """

    reward_dim = len(OBJECTIVES)

    def __init__(self, *, render_mode: str | None = None, **kwargs: Any) -> None:
        super().__init__(render_mode=render_mode, **kwargs)
        self.reward_space, self.scalar_weights = objectives(self.config)

    def _reward_of(self, res: StepResult) -> np.ndarray:
        return reward_vectors(res.cost_step / self.engine.cost_all8, res.terminal_reward)[0]

    def pareto_front(self, gamma: float = 1.0) -> list[np.ndarray]:
        """The known Pareto front on this env's split: the static front's non-dominated vector returns.

        Each point is a static configuration's expected episode return, ``[gamma**(H-1) * accuracy,
        -sum_k gamma**k * cost_k / cost_all8]`` (``[accuracy, -(cost - cost_fixed) / cost_all8]`` at
        ``gamma=1``) in the env's cost model, cheapest first (:mod:`abn_gym.fronts`). Refused on the
        train split, for rewards whose terminal term is not the correctness, and for unshipped supernets.
        """
        return known_front(self.config, gamma)


class MOABNVectorEnv(ABNVectorEnv):
    """:class:`~abn_gym.vector.ABNVectorEnv` with (N, ``reward_dim``) vector rewards (see :class:`MOABNEnv`).

    Row i is sub-env i's reward vector, equal bit for bit to a single :class:`MOABNEnv` seeded alike.
    ``reward_space`` is one sub-env's (shape (2,)), as MO-Gymnasium's vector envs have it, so its
    vector ``MORecordEpisodeStatistics`` reads ``reward_dim`` from it. ``group_size=K`` makes the
    first objective group-relative, as it makes the scalar reward's terminal term.
    """

    reward_dim = len(OBJECTIVES)

    def __init__(self, num_envs: int = 1, **kwargs: Any) -> None:
        super().__init__(num_envs, **kwargs)
        self.reward_space, self.scalar_weights = objectives(self.config)

    def _rewards_of(self, res: StepResult) -> np.ndarray:
        return reward_vectors(res.cost_step / self.engine.cost_all8, res.terminal_reward)

    def _no_rewards(self) -> np.ndarray:
        return np.zeros((self.num_envs, self.reward_dim))

    def pareto_front(self, gamma: float = 1.0) -> list[np.ndarray]:
        """The known Pareto front of one sub-env (see :meth:`MOABNEnv.pareto_front`)."""
        return known_front(self.config, gamma)


# help() and IDEs show the scalar env's keyword arguments (ABNEnv's generated signature).
MOABNEnv.__init__.__signature__ = ABNEnv.__init__.__signature__  # type: ignore[attr-defined]
