"""The natively batched vector env: N episodes in one engine, one supernet, grouped by bit-width."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, cast

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from abn_gym.config import EpisodeSampler, architecture, build_engine, make_config
from abn_gym.core import EnvCore, check_action, index_option, terminal_info
from abn_gym.engine import EpisodeEngine, StepResult
from abn_gym.errors import EnvArgumentError, EnvCallError, InvalidActionError
from abn_gym.render import RENDER_FPS, RENDER_MODES


class ABNVectorEnv(EnvCore, VectorEnv):
    """N ABN-ResNet episodes computed as one batch (see :class:`abn_gym.env.ABNEnv` for the spec).

    Created by ``gymnasium.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")``
    (add ``autoreset_mode=...`` and any env argument as keywords). Every episode has the same
    length, so all sub-envs terminate together. ``autoreset_mode`` (an attribute, and in
    ``metadata``) says what happens then, as in Gymnasium's vector envs:

    - ``NEXT_STEP`` (default): the call after that resets every sub-env (its actions are
      ignored, rewards are 0, info is the reset info);
    - ``SAME_STEP``: the terminating call already returns the next episodes' first
      observations; the finished ones are in ``info["final_obs"]`` (an object array of N
      observations) and their info in ``info["final_info"]`` (TorchRL's preferred layout);
    - ``DISABLED``: the caller resets (``reset()``, or ``options={"reset_mask": m}`` with every
      entry True); a step after the end raises.

    ``reset(seed=s)`` seeds sub-env i exactly like a single env given ``reset(seed=s + i)``; a
    list of N ints (or None) seeds each one. ``options={"index": ...}`` takes a 1-D int array of N
    image indices (N/K with ``group_size=K``). ``step`` takes one action per sub-env: an int
    array, list or tuple of shape (N,); floats, bools and other shapes are refused.
    In ``sampling="sequential"`` mode sub-env i visits images i, i + N, i + 2N, ... (with
    ``group_size=K``, group g visits g, g + N/K, ...). Info: every key of the single env's table,
    as an array with one row per sub-env (``episode_bits`` (N, L), ``action_mask`` (N, K)), each
    with Gymnasium's boolean ``_key`` array beside it. ``call``, ``get_attr`` and ``set_attr``
    work as on Gymnasium's vector envs, for what is per sub-env here (``call("action_masks")``,
    shared attributes such as ``bit_choices``); the sub-envs share one engine, so ``set_attr``
    takes one value for all. ``pickle`` and ``copy.deepcopy`` keep the episodes in progress and
    their generators (not the weights).

    Args:
        num_envs: number of sub-envs N (a multiple of ``group_size``).
        render_mode: None, ``"ansi"`` or ``"rgb_array"``; ``render()`` gives one frame per sub-env.
        autoreset_mode: a ``gymnasium.vector.AutoresetMode``, its value ("SameStep") or its name
            ("SAME_STEP").
        **kwargs: the single env's arguments, ``group_size`` included.
    """

    metadata: ClassVar[dict[str, Any]] = {  # type: ignore[misc]
        "render_modes": list(RENDER_MODES),
        "render_fps": RENDER_FPS,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int = 1,
        *,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **kwargs: Any,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        self.num_envs = int(num_envs)
        self.autoreset_mode = _autoreset_mode(autoreset_mode)
        self.metadata = {**type(self).metadata, "autoreset_mode": self.autoreset_mode}  # type: ignore[misc]
        config = make_config(**kwargs)
        if self.num_envs % config.group_size:
            raise EnvArgumentError(
                f"num_envs={self.num_envs} is not a multiple of group_size={config.group_size}: each group of "
                f"{config.group_size} consecutive sub-envs shares one image; choose num_envs = k * group_size"
            )
        self.single_observation_space, self.single_action_space = self._set_up(
            config, architecture(config.supernet), render_mode
        )
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._samplers: list[EpisodeSampler] = []
        self._rngs: list[np.random.Generator] | None = None
        self._autoreset = False
        self._user_attrs: dict[str, Any] = {}  # set_attr's values, shared by every sub-env

    # Pickling (and copy.deepcopy) keeps the arguments and the episodes in progress with their
    # generators, never the weights (as the single env does): the copy continues as the original.
    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "num_envs": self.num_envs,
            "kwargs": self.config.kwargs(),
            "render_mode": self.render_mode,
            "autoreset_mode": self.autoreset_mode,
            "spec": self.spec,
            "user_attrs": self._user_attrs,
        }
        if self._engine is not None and self._started:
            state["episodes"] = self.get_state()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["num_envs"],
            render_mode=state["render_mode"],
            autoreset_mode=state["autoreset_mode"],
            **state["kwargs"],
        )
        self.spec, self._user_attrs = state["spec"], state["user_attrs"]
        if "episodes" in state:
            self.reset()  # builds the engine; set_state then replaces the episodes and generators
            self.set_state(state["episodes"])

    @property
    def engine(self) -> EpisodeEngine:
        """The N-row engine (loads the supernet and split on first use)."""
        if self._engine is None:
            self._engine = build_engine(self.config, self.num_envs)
            size = len(self._engine.split)
            groups = self.num_envs // self.config.group_size
            self._samplers = [EpisodeSampler(self.config, size, g, groups) for g in range(groups)]
        return self._engine

    def _start(self, indices: list[int | None]) -> tuple[np.ndarray, dict[str, Any]]:
        assert self._rngs is not None  # seeded by reset
        k = self.config.group_size
        # Group g (sub-envs g*K .. g*K + K - 1) draws its image and budget with its first sub-env's
        # generator; with K = 1 every sub-env draws its own, as a single env seeded alike would.
        draws = [s.draw(self._rngs[g * k], indices[g * k]) for g, s in enumerate(self._samplers)]
        if k > 1:
            draws = [d for d in draws for _ in range(k)]
        budgets = None if self.config.budget is None else np.array([b for _, b in draws])
        self._autoreset = False
        self._started = True
        obs = self.engine.reset(np.array([i for i, _ in draws]), budgets)
        return obs, self._mask_info({})

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        """Reset every sub-env; ``options={"index": [i_0, ..., i_{N-1}]}`` picks the images.

        ``options["reset_mask"]`` (Gymnasium's, for ``autoreset_mode=DISABLED``) may be given, but
        must select every sub-env: they run in lockstep and end together.
        """
        engine = self.engine
        mask = (options or {}).get("reset_mask")
        if mask is not None and not (np.shape(mask) == (self.num_envs,) and np.asarray(mask, dtype=bool).all()):
            raise EnvCallError(
                f"options['reset_mask']={mask!r} must select all {self.num_envs} sub-envs: they run in lockstep "
                "and always end together, so they are reset together"
            )
        seeds = self._seeds(seed)
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
        indices = index_option(options, ("index", "reset_mask"))
        if indices is None:
            indices = [None] * self.num_envs
        else:
            given = np.asarray(indices)
            if given.ndim != 1 or given.dtype.kind not in "iu":
                raise EnvCallError(
                    f"options['index']={indices!r}: expected a 1-D sequence of int image indices, one per sub-env "
                    f"(shape ({self.num_envs},)), not {'a bool' if given.dtype.kind == 'b' else given.dtype} "
                    f"array of shape {given.shape}"
                )
            indices = [int(i) for i in given]
            k = self.config.group_size
            if k > 1 and len(indices) == self.num_envs // k:
                indices = [i for i in indices for _ in range(k)]  # one index per group
            if len(indices) != self.num_envs:
                per_group = f" (or {self.num_envs // k}, one per group)" if k > 1 else ""
                raise EnvCallError(
                    f"options['index'] needs {self.num_envs} image indices{per_group}, got {len(indices)}"
                )
            if k > 1 and any(len(set(indices[g : g + k])) > 1 for g in range(0, self.num_envs, k)):
                raise EnvCallError(
                    f"options['index'] gives different images to one group: the {k} sub-envs of a group "
                    "(group_size) share one image; repeat each group's index, or give one index per group"
                )
        del engine
        obs, info = self._start(indices)
        return self._format(obs), info

    def _seeds(self, seed: Any) -> list[int | None]:
        """One seed (or None) per sub-env from ``reset(seed=...)``: None, an int s (s + i), or N of them."""
        expected = (
            f"expected None, an int >= 0 (sub-env i is seeded with seed + i) or a sequence of {self.num_envs} "
            "ints or None, one per sub-env"
        )

        def is_seed(s: Any) -> bool:
            return isinstance(s, (int, np.integer)) and not isinstance(s, (bool, np.bool_)) and bool(s >= 0)

        if seed is None:
            return [None] * self.num_envs
        if is_seed(seed):
            return [int(seed) + i for i in range(self.num_envs)]
        if isinstance(seed, (str, bytes)) or not isinstance(seed, (Sequence, np.ndarray)):
            raise EnvCallError(f"invalid reset(seed={seed!r}): {expected}")
        seeds = list(seed)
        if len(seeds) != self.num_envs or not all(s is None or is_seed(s) for s in seeds):
            raise EnvCallError(
                f"invalid reset(seed={seed!r}): got {len(seeds)} seeds for {self.num_envs} sub-envs; {expected}"
            )
        return [None if s is None else int(s) for s in seeds]

    def step(self, actions: Any):
        """Step every sub-env; after the batch terminates, autoreset as ``autoreset_mode`` says."""
        if not self._started:
            raise RuntimeError("step() called before reset(): call envs.reset() first")
        n = self.num_envs
        if self._autoreset:
            if self.autoreset_mode == AutoresetMode.DISABLED:
                raise RuntimeError(
                    "step() called after the sub-envs terminated with autoreset_mode=DISABLED: call envs.reset() first"
                )
            obs, info = self._start([None] * n)  # NEXT_STEP: this call only resets
            return (self._format(obs), self._no_rewards(), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool), info)
        acts = np.asarray(actions)
        if acts.shape != (n,) or acts.dtype.kind not in "iu":
            raise InvalidActionError(
                f"invalid actions {actions!r}: expected an int array of shape ({n},), each an index in "
                f"[0, {len(self.bit_choices) - 1}] into bit_choices={self.bit_choices} (what action_space.contains "
                "accepts, with integer dtype: floats and bools are refused)"
            )
        if acts.min() < 0 or acts.max() >= len(self.bit_choices):
            bad = int(acts[(acts < 0) | (acts >= len(self.bit_choices))][0])
            check_action(bad, len(self.bit_choices), self.bit_choices)
        engine = self.engine
        res = engine.step(acts)
        rewards = self._rewards_of(res)  # before a SAME_STEP reset replaces the engine's episodes
        ones = np.ones(n, dtype=bool)
        info = {
            "layer": np.full(n, res.layer),
            "_layer": ones,
            "bits": res.bits,
            "_bits": ones,
            "bitops_step": res.bitops_step,
            "_bitops_step": ones,
            "cost_step": res.cost_step,
            "_cost_step": ones,
        }
        if self.config.budget is not None:
            info.update(clipped=res.clipped, _clipped=ones)
            self._mask_info(info)
        obs = self._format(res.obs)  # type: ignore[assignment]
        if res.terminated:
            rows = [terminal_info(res, engine, r) for r in range(n)]
            for key in rows[0]:
                info[key] = np.array([row[key] for row in rows])
                info["_" + key] = ones
            self._autoreset = True
            if self.autoreset_mode == AutoresetMode.SAME_STEP:
                # Gymnasium's layout: the next episodes' first observations and reset info, with the
                # finished ones' under final_obs (one entry per sub-env) and final_info.
                final_obs = np.empty(n, dtype=object)
                final_obs[:] = [self._row(obs, r) for r in range(n)]
                reset_obs, reset_info = self._start([None] * n)
                obs = self._format(reset_obs)  # type: ignore[assignment]
                final = {"final_obs": final_obs, "_final_obs": ones, "final_info": info, "_final_info": ones}
                info = {**reset_info, **final}
        terminated = np.full(n, res.terminated)
        return obs, rewards, terminated, np.zeros(n, dtype=bool), info

    def _rewards_of(self, res: StepResult) -> np.ndarray:
        """The (N,) rewards ``step`` returns for the engine's result (the multi-objective env: (N, 2))."""
        return res.reward.copy()

    def _no_rewards(self) -> np.ndarray:
        """The rewards of a NEXT_STEP autoreset call: zeros in the shape of :meth:`_rewards_of`'s."""
        return np.zeros(self.num_envs)

    def _row(self, obs: Any, r: int) -> Any:
        if isinstance(obs, dict):
            return {k: v[r].copy() for k, v in obs.items()}
        return obs[r].copy()

    def render(self) -> tuple[str | np.ndarray, ...] | None:
        """One frame per sub-env in ``render_mode`` (see :mod:`abn_gym.render`); None without a render mode."""
        if self.render_mode is None:
            self._frame(0)  # warns once
            return None
        return tuple(cast("str | np.ndarray", self._frame(row)) for row in range(self.num_envs))

    def action_masks(self) -> np.ndarray:
        """(N, K) allowed actions (all True without a budget)."""
        return self.engine.action_masks()

    # Gymnasium's VectorEnv attribute API (as SyncVectorEnv has it) -----------------------------
    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """What each sub-env gives for method or attribute ``name``: a tuple of N results.

        ``action_masks`` gives each sub-env's mask and ``render`` its frame; an attribute the
        sub-envs share (``bit_choices``, ``horizon``, ``config``, ``layer``, the single spaces as
        ``observation_space``/``action_space``, anything set by :meth:`set_attr`) is repeated N
        times. Methods that act on the whole batch (``reset``, ``step``, ``lookahead``, ...) are
        refused: call them on the vector env itself.
        """
        n = self.num_envs
        if name == "action_masks":
            return tuple(self.action_masks(*args, **kwargs))
        if name == "render":
            frames = self.render(*args, **kwargs)
            return (None,) * n if frames is None else frames
        value = self._shared_attr(name)
        if callable(value):
            raise EnvCallError(
                f"call({name!r}): the sub-envs run in lockstep in one engine, so {name}() acts on all of them at "
                f"once; call envs.{name}(...) on the vector env instead (call() runs 'action_masks' and 'render' "
                "per sub-env, and returns attributes)"
            )
        return (value,) * n

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """Attribute ``name`` of each sub-env (a tuple of N), as ``call(name)`` gives it."""
        return self.call(name)

    def set_attr(self, name: str, values: list[Any] | tuple[Any, ...] | Any) -> None:
        """Set attribute ``name`` of every sub-env: one value, or a list/tuple of N equal ones.

        The sub-envs share one engine, so their values cannot differ; and the env's own
        attributes are fixed by its arguments (make a new env to change them). Any other name
        is kept and returned by :meth:`get_attr`.
        """
        if not isinstance(values, (list, tuple)):
            values = [values] * self.num_envs
        if len(values) != self.num_envs:
            raise EnvCallError(
                f"set_attr({name!r}) got {len(values)} values for {self.num_envs} sub-envs: give one value, or a "
                "list or tuple with one per sub-env"
            )
        if any(v is not values[0] and not _same(v, values[0]) for v in values[1:]):
            raise EnvCallError(
                f"set_attr({name!r}) got different values per sub-env: the sub-envs share one engine and one "
                "value; give them all the same value, or use a SyncVectorEnv (vectorization_mode='sync')"
            )
        if name not in self._user_attrs and (hasattr(self, name) or name in ("observation_space", "action_space")):
            raise EnvCallError(
                f"set_attr({name!r}): {name!r} is the env's own attribute, fixed by its arguments; make a new env "
                "with the arguments you want instead"
            )
        self._user_attrs[name] = values[0]

    def _shared_attr(self, name: str) -> Any:
        """The value every sub-env has for ``name`` (a single env's attribute, or one set by set_attr)."""
        if name in self._user_attrs:
            return self._user_attrs[name]
        if name in ("observation_space", "action_space"):
            return getattr(self, "single_" + name)
        if name == "layer":
            return self.engine.t
        if name.startswith("_") or not hasattr(self, name):
            raise EnvCallError(f"the sub-envs have no public attribute {name!r}")
        return getattr(self, name)

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
            self._np_random = self._rngs[0]
        for s, p in zip(self._samplers, state["positions"]):
            s.position = p


def _same(a: Any, b: Any) -> bool:
    """Whether two values given to set_attr are equal (arrays element by element)."""
    try:
        return bool(np.array_equal(a, b)) if isinstance(a, np.ndarray) or isinstance(b, np.ndarray) else bool(a == b)
    except (TypeError, ValueError):
        return False


def _autoreset_mode(value: Any) -> AutoresetMode:
    """``autoreset_mode`` as Gymnasium's enum: the enum itself, its value ("SameStep") or its name ("same_step")."""
    if isinstance(value, AutoresetMode):
        return value
    if isinstance(value, str):
        for mode in AutoresetMode:
            if value in (mode.value, mode.name) or value.upper() == mode.name:
                return mode
    raise EnvArgumentError(
        f"invalid autoreset_mode={value!r}: expected one of gymnasium.vector.AutoresetMode's "
        f"{[m.name for m in AutoresetMode]} (or their values {[m.value for m in AutoresetMode]})"
    )
