"""The natively batched vector env: N episodes in one engine, one supernet, grouped by bit-width."""

from __future__ import annotations

from typing import Any, ClassVar, cast

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from abn_gym.config import EpisodeSampler, architecture, build_engine, make_config
from abn_gym.engine import EnvCore, EpisodeEngine, check_action, index_option, terminal_info
from abn_gym.render import RENDER_FPS, RENDER_MODES


class ABNVectorEnv(EnvCore, VectorEnv):
    """N ABN-ResNet episodes computed as one batch (see :class:`abn_gym.env.ABNEnv` for the spec).

    Created by ``gymnasium.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")``.
    Every episode has the same length, so all sub-envs terminate together; with NEXT_STEP
    autoreset the call after that resets every sub-env (its actions are ignored, rewards are 0).
    ``reset(seed=s)`` seeds sub-env i exactly like a single env given ``reset(seed=s + i)``.
    In ``sampling="sequential"`` mode sub-env i visits images i, i + N, i + 2N, ...

    Args:
        num_envs: number of sub-envs N.
        render_mode: None, ``"ansi"`` or ``"rgb_array"``; ``render()`` gives one frame per sub-env.
        **kwargs: the single env's arguments.
    """

    metadata: ClassVar[dict[str, Any]] = {  # type: ignore[misc]
        "render_modes": list(RENDER_MODES),
        "render_fps": RENDER_FPS,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(self, num_envs: int = 1, *, render_mode: str | None = None, **kwargs: Any) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        self.num_envs = int(num_envs)
        config = make_config(**kwargs)
        self.single_observation_space, self.single_action_space = self._set_up(
            config, architecture(config.supernet), render_mode
        )
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._samplers: list[EpisodeSampler] = []
        self._rngs: list[np.random.Generator] | None = None
        self._autoreset = False

    @property
    def engine(self) -> EpisodeEngine:
        """The N-row engine (loads the supernet and split on first use)."""
        if self._engine is None:
            self._engine = build_engine(self.config, self.num_envs)
            size = len(self._engine.split)
            self._samplers = [EpisodeSampler(self.config, size, i, self.num_envs) for i in range(self.num_envs)]
        return self._engine

    def _start(self, indices: list[int | None]) -> np.ndarray:
        assert self._rngs is not None  # seeded by reset
        draws = [s.draw(rng, i) for s, rng, i in zip(self._samplers, self._rngs, indices)]
        budgets = None if self.config.budget is None else np.array([b for _, b in draws])
        self._autoreset = False
        self._started = True
        return self.engine.reset(np.array([i for i, _ in draws]), budgets)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        """Reset every sub-env; ``options={"index": [i_0, ..., i_{N-1}]}`` picks the images."""
        engine = self.engine
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, (int, np.integer)):
            seeds = [int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"reset(seed=...) got {len(seeds)} seeds for {self.num_envs} sub-envs")
        if self._rngs is None or seed is not None:
            fresh = [seeding.np_random(s)[0] for s in seeds]
            self._rngs = (
                fresh
                if self._rngs is None
                else [f if s is not None else r for f, s, r in zip(fresh, seeds, self._rngs)]
            )
            for s, sampler in zip(seeds, self._samplers):
                if s is not None:
                    sampler.restart()
        self._np_random = self._rngs[0]
        indices = index_option(options)
        if indices is None:
            indices = [None] * self.num_envs
        else:
            indices = [int(i) for i in np.asarray(indices).reshape(-1)]
            if len(indices) != self.num_envs:
                raise ValueError(f"options['index'] needs {self.num_envs} image indices, got {len(indices)}")
        del engine
        return self._format(self._start(indices)), {}

    def step(self, actions: Any):
        """Step every sub-env; the call after the batch terminates resets it (NEXT_STEP autoreset)."""
        if not self._started:
            raise RuntimeError("step() called before reset(): call envs.reset() first")
        n = self.num_envs
        if self._autoreset:
            obs = self._start([None] * n)
            return (self._format(obs), np.zeros(n), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool), {})
        acts = np.asarray(actions)
        if acts.shape != (n,) or acts.dtype.kind not in "iu":
            raise ValueError(
                f"invalid actions {actions!r}: expected an int array of shape ({n},), each an index in "
                f"[0, {len(self.bit_choices) - 1}] into bit_choices={self.bit_choices}"
            )
        if acts.min() < 0 or acts.max() >= len(self.bit_choices):
            bad = int(acts[(acts < 0) | (acts >= len(self.bit_choices))][0])
            check_action(bad, len(self.bit_choices), self.bit_choices)
        engine = self.engine
        res = engine.step(acts)
        ones = np.ones(n, dtype=bool)
        info: dict[str, Any] = {
            "layer": np.full(n, res.layer),
            "_layer": ones,
            "bits": res.bits,
            "_bits": ones,
            "bitops_step": res.bitops_step,
            "_bitops_step": ones,
        }
        if self.config.budget is not None:
            info.update(clipped=res.clipped, _clipped=ones)
        if res.terminated:
            rows = [terminal_info(res, engine, r) for r in range(n)]
            for key in rows[0]:
                info[key] = np.array([row[key] for row in rows])
                info["_" + key] = ones
            self._autoreset = True
        terminated = np.full(n, res.terminated)
        return self._format(res.obs), res.reward.copy(), terminated, np.zeros(n, dtype=bool), info

    def render(self) -> tuple[str | np.ndarray, ...] | None:
        """One frame per sub-env in ``render_mode`` (see :mod:`abn_gym.render`); None without a render mode."""
        if self.render_mode is None:
            self._frame(0)  # warns once
            return None
        return tuple(cast("str | np.ndarray", self._frame(row)) for row in range(self.num_envs))

    def action_masks(self) -> np.ndarray:
        """(N, K) allowed actions (all True without a budget)."""
        return self.engine.action_masks()

    def lookahead(self, rest_bits: Any, rows: Any = None) -> np.ndarray:
        """Batched look-ahead: see :meth:`abn_gym.engine.EpisodeEngine.lookahead`."""
        return self.engine.lookahead(rest_bits, rows)

    def get_state(self) -> dict[str, Any]:
        """Snapshot of all N episodes and their generators."""
        return {
            "engine": self.engine.get_state(),
            "autoreset": self._autoreset,
            "started": self._started,
            "rngs": [r.bit_generator.state for r in (self._rngs or [])],
            "positions": [s.position for s in self._samplers],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Rewind to a snapshot from :meth:`get_state`."""
        self.engine.set_state(state["engine"])
        self._autoreset, self._started = state["autoreset"], state["started"]
        if state["rngs"]:
            self._rngs = [seeding.np_random(0)[0] for _ in state["rngs"]]
            for r, s in zip(self._rngs, state["rngs"]):
                r.bit_generator.state = s
        for s, p in zip(self._samplers, state["positions"]):
            s.position = p
