"""What the single env and the vector env share on top of the engine.

:class:`EnvCore` holds their set-up from the validated arguments, the observation format and
rendering; :func:`check_action`, :func:`terminal_info` and :func:`index_option` check an action,
build an episode's terminal info and read the reset options. Kept apart from
:mod:`abn_gym.engine` so that the engine imports neither the env's configuration nor its
rendering.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import logger, spaces

from abn_gym import render as rendering
from abn_gym.config import EnvConfig, table_of
from abn_gym.engine import EpisodeEngine, StepResult
from abn_gym.errors import EnvArgumentError, EnvCallError, InvalidActionError
from abn_gym.observations import ObservationLayout
from supernets.supernet import Supernet


def check_action(action: Any, n: int, bit_choices: tuple[int, ...]) -> int:
    """The action as a Python int, or an :class:`InvalidActionError` naming it and the valid range.

    Accepted: what ``Discrete(n).contains`` accepts (a Python int, a NumPy integer scalar, a 0-d
    integer array) except bools, which ``contains`` takes as 0 and 1. A shape-(1,) array is refused,
    as ``contains`` refuses it.
    """
    a = action
    if type(a) is int and 0 <= a < n:  # the common case, checked first: this runs every step
        return a
    if isinstance(a, (np.generic, np.ndarray)) and a.shape == () and a.dtype.kind in "iu":
        a = int(a)
    if isinstance(a, bool) or not isinstance(a, int) or not 0 <= a < n:
        shape = f" (an array of shape {action.shape}: pass one action, e.g. action.item())" if _is_array(action) else ""
        raise InvalidActionError(
            f"invalid action {action!r}{shape}: expected an integer in [0, {n - 1}], the index of a bit-width in "
            f"bit_choices={bit_choices}, as action_space.contains accepts it (bools are refused)"
        )
    return a


def _is_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.shape != ()


def terminal_info(res: StepResult, engine: EpisodeEngine, row: int) -> dict[str, Any]:
    """The extra info of an episode's last step, for one row of the engine (NumPy scalars and arrays)."""
    bitops = engine.episode_bitops()[row]
    cost = engine.episode_cost()[row]
    assert res.correct is not None and res.prediction is not None, "only the last step has a prediction"
    return {
        "correct": res.correct[row],
        "prediction": res.prediction[row],
        "label": engine.labels[row],
        "index": engine.indices[row],
        "episode_bits": engine.chosen[row].copy(),
        "bitops": bitops,
        "bitops_fraction": bitops / np.float64(engine.max_bitops),
        # The steps' bitops_step plus bitops_fixed is bitops exactly; bitops_all8 normalises both.
        "bitops_fixed": np.float64(engine.fixed_ops),
        "bitops_all8": np.float64(engine.max_bitops),
        # The same four in the cost model's unit (== the bitops ones under "bitops").
        "cost": cost,
        "cost_fraction": cost / np.float64(engine.cost_all8),
        "cost_fixed": np.float64(engine.cost_fixed),
        "cost_all8": np.float64(engine.cost_all8),
    }


def index_option(options: dict[str, Any] | None, allowed: tuple[str, ...] = ("index",)) -> Any:
    """``options["index"]`` of a reset (None when absent); an option not in ``allowed`` is refused."""
    unknown = set(options or {}) - set(allowed)
    if unknown:
        names = "the only option is 'index'" if allowed == ("index",) else f"the options are {list(allowed)}"
        raise EnvCallError(f"unknown reset option(s) {sorted(unknown)}; {names}")
    return (options or {}).get("index")


class EnvCore:
    """The set-up, observation format and rendering that :class:`~abn_gym.env.ABNEnv` and
    :class:`~abn_gym.vector.ABNVectorEnv` share; each adds its own episode control."""

    config: EnvConfig
    layout: ObservationLayout
    bit_choices: tuple[int, ...]
    num_layers: int
    decision_points: tuple[int, ...]
    horizon: int
    render_mode: str | None
    cost_model: str
    cost_unit: str
    _engine: EpisodeEngine | None
    _started: bool

    def _set_up(
        self, config: EnvConfig, arch: Supernet, render_mode: str | None
    ) -> tuple[spaces.Space, spaces.Discrete]:
        """Keep the validated arguments; returns the observation and action space of one episode."""
        if render_mode is not None and render_mode not in rendering.RENDER_MODES:
            raise EnvArgumentError(
                f"invalid render_mode={render_mode!r}: expected None or one of {list(rendering.RENDER_MODES)}"
            )
        self.config, self.render_mode = config, render_mode
        self.layout = ObservationLayout(arch)
        assert config.bit_choices is not None, "make_config resolves the bit-widths"  # for the type checker
        self.bit_choices = config.bit_choices
        self.num_layers = arch.num_switchable
        self.decision_points = config.decide_at or tuple(range(self.num_layers))
        self.horizon = len(self.decision_points)  # steps per episode
        costs = table_of(config.supernet, self.bit_choices, config.cost_model)
        self.cost_model, self.cost_unit = costs.model, costs.unit  # "table:FILE" names a user's table
        self._engine = None  # built lazily: the env pickles without weights
        self._started = False
        return self.layout.space(config.obs_mode), spaces.Discrete(len(self.bit_choices))

    @property
    def engine(self) -> EpisodeEngine:
        """The env's engine; each env builds its own on first use."""
        raise NotImplementedError

    def _mask_info(self, info: dict[str, Any], row: int | None = None) -> dict[str, Any]:
        """``info`` with the next step's ``action_mask`` added on a budget (all rows, or ``row``)."""
        if self.config.budget is not None:
            mask = self.engine.action_masks()
            if row is None:
                info["action_mask"], info["_action_mask"] = mask, np.ones(len(mask), dtype=bool)
            else:
                info["action_mask"] = mask[row]
        return info

    def _format(self, obs: np.ndarray, row: int | None = None) -> np.ndarray | dict[str, np.ndarray]:
        """The engine's observations as the env returns them: all rows, or one (``row``)."""
        if self.config.obs_mode == "dict":
            return {k: (v if row is None else v[row]).copy() for k, v in self.layout.split(obs).items()}
        return obs if row is None else obs[row]

    def _frame(self, row: int) -> str | np.ndarray | None:
        """Episode ``row`` in the render mode (None, with a warning, without one)."""
        if self.render_mode is None:
            logger.warn(
                "render() was called without a render mode: make the env with render_mode='ansi' or 'rgb_array'"
            )
            return None
        return rendering.render(self.render_mode, self.engine, row, self._started)
