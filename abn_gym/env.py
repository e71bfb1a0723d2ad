"""ABN-ResNet: one episode per input image, one step per switchable layer of a frozen supernet."""

from __future__ import annotations

import copy
import dataclasses
import inspect
from typing import Any, ClassVar, SupportsFloat

import gymnasium as gym
import numpy as np

from abn_gym.config import EnvConfig, EpisodeSampler, architecture, build_engine, make_config
from abn_gym.core import EnvCore, check_action, index_option, terminal_info
from abn_gym.engine import EpisodeEngine, StepResult
from abn_gym.errors import EnvArgumentError
from abn_gym.render import RENDER_FPS, RENDER_MODES

ObsType = np.ndarray | dict[str, np.ndarray]


class ABNEnv(EnvCore, gym.Env[ObsType, np.int64]):
    """Per-input, layer-wise bit-width control of a weight-shared quantized supernet.

    ## Description
    Arbitrary Bit-width Networks (ABN, Tang et al., ACM MM 2022, arXiv 2204.09992) run every
    layer of one weight-shared supernet at any of several bit-widths and choose the bit-widths
    per input at run time. Here that choice is a Markov decision process: an episode is one
    image of a data split; step i runs switchable layer i of the frozen supernet at the bit-width
    the agent picks, on that image's activation; after the last layer the 8-bit classifier
    predicts the class. The default supernet is ResNet-20 on Fashion-MNIST, with 18 switchable
    3x3 convs trained at every bit-width from 2 to 8 (stem conv and classifier fixed at 8 bits).

    ## Registered ids
    | id | supernet | reward | cost_coef | budget |
    | --- | --- | --- | --- | --- |
    | ``ABN-ResNet-v0`` | ``resnet20-fashionmnist`` | default | 0.04 | none |
    | ``ABN-ResNet-Budget-v0`` | ``resnet20-fashionmnist`` | correct | - | 0.25 of all-8 |
    | ``ABN-ResNet20Quarter-v1`` | ``resnet20-quarter-fashionmnist`` | default | 0.1 | none |
    | ``ABN-ResNet20Quarter-Budget-v1`` | ``resnet20-quarter-fashionmnist`` | correct | - | 0.25 of all-8 |
    | ``ABN-ResNet20Quarter-BitFusion-v1`` | ``resnet20-quarter-fashionmnist`` | default (bricks) | 0.09 | none |
    | ``ABN-MobileNetV2-v0`` | ``mobilenetv2-tiny-fashionmnist`` | default | 0.1 | none |
    | ``ABN-MobileNetV2-Budget-v0`` | ``mobilenetv2-tiny-fashionmnist`` | correct | - | 0.39 of all-8 |

    The quarter-width supernet (ResNet-20 with 4/8/16 channels) is the steep task: its bit-widths
    move accuracy by several points, where ResNet-20 at full width moves it by about one. The
    MobileNetV2-style supernet (18 switchable layers: 3x3 depthwise, 1x1 expand, 1x1 linear
    projections and a last 1x1 conv) is the third task, where layers of different kinds differ
    in how many bits they need. The
    measured figures are generated pages, not docstrings: ``abn-gym supernet eval`` and
    ``abn-gym bench`` write them (the documentation's supernets and results pages).

    ## Action Space
    ``Discrete(len(bit_choices))``: action a runs the current layer with weights and input
    activations at ``bit_choices[a]`` bits (``bit_choices`` = (2, 3, 4, 5, 6, 7, 8) by default).
    ``step`` takes what ``action_space.contains`` takes (a Python int, a NumPy integer, a 0-d
    integer array) except bools; anything else (a shape-(1,) array too) raises
    :class:`~abn_gym.errors.InvalidActionError`, a ``ValueError``.
    In a budgeted env, an action that would make the episode's budget unreachable is lowered to
    the highest bit-width that still fits (``info["clipped"]`` is True); ``action_masks()``
    gives the allowed actions first, for MaskablePPO.

    ## Observation Space
    ``Box(0, 1, (172,), float32)`` for ResNet-20 (``obs_mode="vector"``), or a flat ``Dict``
    of the same parts (``obs_mode="dict"``, for SB3's MultiInputPolicy). Nothing in it depends
    on the label.

    | part | size | meaning |
    | --- | --- | --- |
    | act_mean | 64 | per-channel mean of the next layer's input activation, over its 8-bit clip range, zero-padded |
    | act_std | 64 | per-channel standard deviation, same scaling |
    | layer | 6 | next layer: C_in/64, C_out/64, stride/2, kernel/3, share of the network's MACs, position |
    | layer_onehot | 18 | one-hot index of the next layer (zeros after the last) |
    | bits_so_far | 18 | bit-width chosen for each earlier layer / 8 (0 for layers to come) |
    | bitops_spent | 1 | cost of the switchable layers so far / cost of all-8 (BitOps by default: see Cost models) |
    | budget | 1 | this episode's cost budget as a fraction of all-8 (1 without a budget) |

    The sizes follow the supernet: on the ``ABN-MobileNetV2`` ids ``C_max`` is 72 (the widest
    depthwise layer) and the vector has 188 entries. An expand layer's input is a linear
    bottleneck's output, which may be negative: its per-channel means are clipped at 0 too.

    ## Rewards
    ``reward="default"``: every step costs ``-cost_coef * BitOps(layer, bits) / BitOps(all-8)``
    (in the units of ``cost_model``, BitOps by default) and the last step adds +1 if the
    prediction is correct. The default ``cost_coef=0.04`` was
    chosen on the val split (``python -m abn_gym.tables --split val``) as a value for which the
    best uniform configuration is in the middle of the range, neither all-2 nor all-8: the rule
    (:func:`abn_gym.tables.choose_cost_coef`) takes the middle of the exact range of coefficients
    that make uniform-4 the best, rounded to one significant digit (0.1 on the quarter-width
    supernet, ``python -m abn_gym.tables --env ABN-ResNet20Quarter-v1 --split val``). The test
    split's table of each uniform configuration's accuracy and mean return is printed by
    ``python -m abn_gym.tables`` and shown on the documentation's environments page.

    Other rewards: ``"logprob"`` (same cost, plus the log-probability of the true class, clipped
    at -10, instead of +1), ``"blockdrop"`` (no step cost; at the end ``1 - f**2`` if correct else
    ``-gamma``, f = episode BitOps / all-8 BitOps) and ``"correct"`` (+1 if correct, nothing
    else; used with a budget). Two rewards with a per-image reference, computed once per image
    and remembered: ``"baseline"`` (same cost; at the end, correctness minus the same image's
    correctness at the cheapest uniform configuration of ``bit_choices``, so an image's difficulty
    cancels out and only the effect of the bits remains: the self-critical baseline) and
    ``"agreement"`` (same cost; +1 if the prediction equals the same image's all-8 prediction,
    label-free). Both cost one extra forward pass per new image.

    ## Cost models (``cost_model``)
    The cost that the reward's step cost, the budget and its mask, the observation's
    ``bitops_spent`` and ``budget`` parts, the terminal fraction of ``"blockdrop"`` and the
    multi-objective reward all price, as a fraction of the all-8 configuration's cost
    (:mod:`supernets.costs`). ``"bitops"`` (the default): ``bits * bits * MACs`` per layer,
    as before. ``"bitfusion"``: a BitFusion accelerator (Sharma et al., ISCA 2018) composes a
    multiply from 2-bit bricks, so a MAC at w bits costs ``ceil(w/2) ** 2`` bricks: 3 bits cost
    what 4 cost, 5 what 6, 7 what 8. A path to a ``.csv`` or ``.json`` table: a cost (latency in
    ms, energy...) for every layer at every bit-width, as HAQ's lookup tables (``abn-gym perf
    --latency-table PATH`` measures one); it must name every layer of the supernet, at every
    bit-width of ``bit_choices`` and at 8, and a mistake raises
    :class:`~supernets.costs.CostModelError` (a ``ValueError``) naming it. A table whose costs
    fall as bits rise is allowed: a budget's clipping then lowers an action to the highest allowed
    one below it, or the step's cheapest one. ``env.unwrapped.cost_model`` (``"bitops"``,
    ``"bitfusion"`` or ``"table:FILE"``) and ``env.unwrapped.cost_unit`` (``"BitOps"``,
    ``"bricks"``, or the table's unit) name it; the vector env has both too (``get_attr``).
    The ``bitops_*`` info keys stay BitOps whatever the model; the ``cost*`` keys are the model's.

    ## Starting State
    ``reset`` picks an image of ``split``: seeded uniform random by default, the i-th image with
    ``options={"index": i}`` (an int, not a bool), or the split in order with
    ``sampling="sequential"``. The stem conv
    has run; the agent chooses the bit-width of the first switchable layer.

    ## Episode End
    The episode terminates after the last switchable layer (18 steps for ResNet-20, or
    ``len(decide_at)``: ``env.horizon``), when the classifier runs. It is never truncated, and the
    ids register no ``max_episode_steps``: Gymnasium's ``TimeLimit`` would mark a last step
    truncated when its limit equals the horizon, and the horizon depends on ``supernet`` and
    ``decide_at``. A ``TimeLimit`` above the horizon (``gym.make(id, max_episode_steps=19)``)
    changes nothing and lets ``TimeAwareObservation`` run. Stepping before ``reset`` or after the
    end raises.

    ## Coarser decisions (``decide_at``)
    ``decide_at=(0, 7, 13)`` lets the agent decide only at layers 0, 7 and 13, as BlockDrop and
    SkipNet decide per block: a step runs every layer from its decision point up to the next one
    at the chosen bit-width, so the horizon is ``len(decide_at)`` (``env.horizon``). The
    observation of each step is the one before the next decision layer (``layer_onehot`` names
    it, ``bits_so_far`` holds every layer run), a step's cost is the BitOps of all the layers it
    ran (``info["bitops_step"]``), and on a budget the mask counts them all. The points start at
    0 and increase strictly within the switchable layers. ``None`` (the default) decides at every
    layer, unchanged.

    ## Remembered episodes (``episode_cache``)
    With few decision points an episode depends only on its image and a few actions, and training
    revisits each (image, actions) prefix. The engine then remembers what the network computed per
    prefix (the next observation's activation statistics, the logits at the end), keyed by the image
    and the actions applied (after any budget clipping), and skips the supernet on a revisit. It is
    exact: observations, rewards, infos and random streams equal those without it, bit for bit.
    ``"auto"`` turns it on, bounded to 256 MB (least recently used first out), for ``decide_at``
    with at most 3 points and random sampling; ``0`` turns it off, a number of MB sizes it (on at
    every layer too). It lives in the env's process, never in shared memory or files: training in
    several processes (``SubprocVecEnv``, Ray) gives each its own. Hits are counted in
    ``env.unwrapped.engine.episode_cache`` (:mod:`abn_gym.episode_cache`).

    ## Group-relative reward (``group_size``, vector env only)
    ``group_size=K`` on the native vector env (``gymnasium.make_vec(id, num_envs=N,
    vectorization_mode="vector_entry_point", group_size=K)``, or ``SB3VecEnv(..., group_size=K)``)
    makes K consecutive sub-envs share one image (and budget) each episode, and subtracts the
    group's mean terminal term from each one's terminal reward, as GRPO and self-critical
    training do: for ``"default"`` and ``"correct"`` that is the group's mean correctness, for
    ``"agreement"`` its mean agreement, for ``"baseline"`` the per-image reference cancels and it
    is the mean correctness too (``"logprob"`` and ``"blockdrop"``: the mean of their terminal
    term). The step costs are unchanged. N must be a multiple of K; group g draws its image with
    sub-env g*K's generator, so ``group_size=1`` (the default) is the plain vector env. A single
    env has no group and refuses K > 1.

    ## Budget per episode (``budget=(low, high)``)
    A range (low <= high; a reversed one is refused) instead of one number draws each episode's
    budget uniformly from it, after the image and from the same generator (deterministic under
    the seed); the budget is in the observation, so one policy can be trained across budgets, e.g.
    ``gym.make("ABN-ResNet-Budget-v0", budget=(0.15, 0.6))``, and then evaluated at fixed ones.

    ## Info
    Each key has one type and shape wherever it appears (L = number of switchable layers, 18
    for ResNet-20; K = ``len(bit_choices)``). Every value is a NumPy scalar or array, never a
    Python ``int``, ``float`` or ``bool`` (TorchRL reads their dtypes). Nothing wall-clock.

    | key | when | type, shape | meaning |
    | --- | --- | --- | --- |
    | ``layer`` | every step | int64 | the first layer this step ran (its decision layer) |
    | ``bits`` | every step | int64 | the bit-width this step ran at (after any clipping) |
    | ``bitops_step`` | every step | float64 | BitOps of the layers this step ran |
    | ``clipped`` | every step, with a budget | ``bool_`` | the action was lowered to fit the budget |
    | ``action_mask`` | reset, every step, with a budget | ndarray bool (K,) | allowed actions at the next step |
    | ``correct`` | last step | ``bool_`` | the prediction equals the label |
    | ``prediction`` | last step | int64 | the classifier's class |
    | ``label`` | last step | int64 | the image's true class |
    | ``index`` | last step | int64 | the image's index in the split |
    | ``episode_bits`` | last step | ndarray int64 (L,) | the bit-width every layer ran at |
    | ``bitops`` | last step | float64 | the episode's BitOps, fixed 8-bit layers included |
    | ``bitops_fraction`` | last step | float64 | ``bitops`` / ``bitops_all8`` |
    | ``bitops_fixed`` | last step | float64 | BitOps of the fixed 8-bit stem conv and classifier (no step's) |
    | ``bitops_all8`` | last step | float64 | BitOps of all-8: the normaliser of the BitOps fraction |
    | ``cost_step`` | every step | float64 | the cost model's cost of the layers this step ran |
    | ``cost`` | last step | float64 | the episode's cost in the cost model's unit, fixed layers included |
    | ``cost_fraction`` | last step | float64 | ``cost`` / ``cost_all8`` |
    | ``cost_fixed`` | last step | float64 | the fixed layers' cost at 8 bits (no step's) |
    | ``cost_all8`` | last step | float64 | the cost of all-8: the normaliser of the step cost and the budget |

    Costs add up exactly: the episode's ``bitops_step`` values plus ``bitops_fixed`` equal
    ``bitops`` (whole numbers in float64), and likewise ``cost_step`` and ``cost_fixed`` give
    ``cost``: exactly under ``"bitops"`` (where each ``cost*`` key equals its ``bitops*`` key) and
    ``"bitfusion"`` (whole numbers), up to float64 rounding of the sum for a user's table. The
    default reward's step cost is ``-cost_coef * cost_step / cost_all8``.
    ``clipped``: the action asked for more than the budget allows, and the step ran at the highest
    bit-width that keeps the budget reachable instead. ``action_mask`` equals ``action_masks()``
    (all True after the last step). Without a budget the reset info is empty. The vector env batches each key (see
    :class:`abn_gym.vector.ABNVectorEnv`).

    ## Multi-objective ids (``mo-<id>``)
    Every id has a twin for MO-Gymnasium with the same arguments, ``mo-ABN-ResNet-v0`` to
    ``mo-ABN-ResNet20Quarter-Budget-v1`` (:data:`abn_gym.MO_ENV_IDS`), made by
    :class:`abn_gym.multi_objective.MOABNEnv` (native vector env:
    :class:`~abn_gym.multi_objective.MOABNVectorEnv`, rewards of shape (N, 2)). Its reward is a
    float64 vector of ``reward_dim = 2``: the reward's terminal term (correctness, 1.0 or 0.0, on
    the last step; 0 before) and ``-bitops_step / bitops_all8``. ``reward_space`` is its Box;
    ``scalar_weights`` (``[1, cost_coef]``, or ``[1, 0]`` for ``"correct"``) weighs it back into
    this env's reward bit for bit. The fixed 8-bit layers are charged to no step, as here, so an
    episode's cost sum is ``-(bitops - bitops_fixed) / bitops_all8``. ``reward="blockdrop"`` has no
    vector form and is refused; the other rewards put their own terminal term first.

    ## Look-ahead (for search agents)
    ``lookahead(rest_bits)`` returns the logits the network would produce if the remaining
    layers ran at ``rest_bits`` (ints; fractional bits are refused, not truncated), without
    changing the episode. ``get_state()`` / ``set_state()`` snapshot and rewind an episode;
    ``fork()`` copies the env, sharing the loaded supernet. ``pickle`` and ``copy.deepcopy`` keep
    the episode in progress and the generator too (without the weights, which the receiving
    process loads). The label is
    available only as ``label`` on the unwrapped env, for agents that declare they use it.

    ## Arguments
    - ``supernet``: registered supernet name (default ``"resnet20-fashionmnist"``), or a published
      card's path (``"DIR/NAME.json"``).
    - ``split``: ``"train"`` (default), ``"val"`` or ``"test"``.
    - ``sampling``: ``"random"`` (default) or ``"sequential"``.
    - ``bit_choices``: the action set, a subset of the trained bit-widths, e.g. ``(2, 3, 4)``.
    - ``reward``: ``"default"``, ``"logprob"``, ``"blockdrop"``, ``"correct"``, ``"baseline"`` or
      ``"agreement"``.
    - ``cost_coef``: weight of the step cost (default 0.04).
    - ``gamma``: BlockDrop's penalty for a wrong prediction (default 0.5).
    - ``budget``: cost budget as a fraction of all-8's cost, or a (low, high) range drawn per episode.
    - ``cost_model``: ``"bitops"`` (default), ``"bitfusion"``, or a cost table's path (see Cost models).
    - ``decide_at``: the layers where the agent decides, e.g. ``(0, 7, 13)``; None: every layer.
    - ``group_size``: vector env only: K consecutive sub-envs share an image, group-relative
      terminal reward (default 1: off).
    - ``episode_cache``: ``"auto"`` (default), ``0`` (off) or a size in MB (see Remembered episodes).
    - ``obs_mode``: ``"vector"`` (default) or ``"dict"``.
    - ``device``: ``"cpu"`` (default) or ``"cuda"``.
    - ``data_dir``: Fashion-MNIST directory (default: ``ABN_DATA_DIR``, then Debian's package).
    - ``render_mode``: ``None`` (default), ``"ansi"`` or ``"rgb_array"`` (see Rendering).

    Every argument is keyword-only; ``inspect.signature(ABNEnv)`` lists them with their defaults.
    An unknown one raises ``TypeError`` (also an ``ABNGymError``) that says
    ``got an unexpected keyword argument 'NAME'`` and lists the valid ones.

    ## Wrappers
    ``gym.make`` wraps the env, and Gymnasium's wrappers do not forward attributes: reach
    ``action_masks``, ``lookahead`` and the rest through ``env.unwrapped`` or
    ``env.get_wrapper_attr("action_masks")``, e.g. sb3-contrib's
    ``ActionMasker(env, lambda e: e.unwrapped.action_masks())``. With ``obs_mode="dict"`` the
    ``Dict`` space orders its parts alphabetically (Gymnasium sorts a plain dict's keys), so
    ``gymnasium.spaces.flatten`` gives the vector observation's numbers in that order; the vector
    order is ``list(env.unwrapped.layout.slices)``.

    ## Rendering
    ``render_mode="ansi"``: ``render()`` returns text with one line per layer run so far (its
    bit-width and BitOps) and the BitOps spent. ``render_mode="rgb_array"``: an RGB picture of
    the image beside one bar per layer, as high as its bit-width, and the BitOps spent (see
    :mod:`abn_gym.render`). The bits of a finished episode are also in ``info["episode_bits"]``
    of its last step, and in the ``records`` of ``abn-gym bench``'s ``results.json``.

    ## Example
    >>> import gymnasium as gym
    >>> import abn_gym
    >>> env = gym.make("ABN-ResNet-v0", split="val", render_mode="ansi")
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, env.action_space
    ((172,), Discrete(7))
    >>> obs, reward, terminated, truncated, info = env.step(2)  # layer 0 at bit_choices[2] = 4 bits
    >>> info["layer"], info["bits"], terminated  # info holds NumPy scalars and arrays
    (np.int64(0), np.int64(4), False)
    >>> print(env.render().splitlines()[1:3])  # layer, bit-width, its BitOps in millions
    ['layer  bits    MBitOps', '    0     4     28.901']

    ## Version History
    - v0: initial release. Later fast paths (channels-last activations, statistics summed per
      row group, activations kept grouped by bit-width, padded group batches) kept every
      definition; they can change observations in the last float bits, and left every
      leaderboard and supernet figure unchanged. The reward options ``"baseline"`` and
      ``"agreement"``, ``render_mode``, ``decide_at`` and ``group_size`` were added as options:
      the defaults are unchanged, so the ids keep their versions. The info contract was
      tightened without a version bump (info is neither dynamics, reward nor observation):
      ``bits`` is now the step's bit-width on every step (it was the list of all 18 on the last
      step; that list is ``episode_bits``, an int64 array), ``action_mask`` was added on budget
      envs, and an unknown argument raises Python's ``TypeError`` wording (``got an unexpected
      keyword argument 'NAME'``). The vector env gained ``autoreset_mode`` (``SAME_STEP``,
      ``DISABLED``) with ``NEXT_STEP`` as before. Later, without a version bump (nothing
      observable but info's types and refused inputs changed): info values became NumPy scalars
      (they were Python ``int``, ``float`` and ``bool``); a bool image index, a bool or reversed
      budget, fractional look-ahead bits and a shape-(1,) action became errors; copies keep the
      episode; the vector env gained ``call``, ``get_attr`` and ``set_attr``.
    - ``ABN-ResNet20Quarter-v1`` / ``ABN-ResNet20Quarter-Budget-v1``: a new quarter-width
      supernet (the same 4 supernet epochs, warm-started from a 14-epoch float run instead of a
      10-epoch one, so that uniform-8 stays within a point of its full-precision reference) and,
      by the same rule on its val split, ``cost_coef`` 0.1 instead of 0.08. The dynamics and the
      reward changed, so the ids moved to v1. The v0 ids (commit 039a263) are retired:
      ``gym.make`` raises ``DeprecatedEnv`` and names v1.
    - ``mo-`` ids: added as twins of every id, with its version; the scalar ids' episodes and
      rewards are unchanged bit for bit.
    - ``cost_model`` (default ``"bitops"``, unchanged bit for bit) and the ``cost*`` info keys
      added; ``ABN-ResNet20Quarter-BitFusion-v1`` registered (the steep task in BitFusion bricks,
      ``cost_coef`` 0.09 by the same rule on val).
    - ``ABN-MobileNetV2-v0`` / ``ABN-MobileNetV2-Budget-v0``: added (the ``mobilenetv2`` family);
      every earlier id's episodes, observations and rewards are unchanged bit for bit.
    - ``episode_cache`` (remembered episodes) added, on by default for ``decide_at`` of at most 3
      points: exact, so every id's episodes, observations and rewards are unchanged bit for bit.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": list(RENDER_MODES), "render_fps": RENDER_FPS}  # type: ignore[misc]

    def __init__(self, *, render_mode: str | None = None, **kwargs: Any) -> None:
        self.config = make_config(**kwargs)
        if self.config.group_size != 1:
            raise EnvArgumentError(
                f"invalid group_size={self.config.group_size}: a single env runs one episode at a time, so no "
                "episodes can share its image; use the native vector env, gymnasium.make_vec(id, num_envs=N, "
                f"vectorization_mode='vector_entry_point', group_size={self.config.group_size}), or group_size=1"
            )
        self.observation_space, self.action_space = self._set_up(
            self.config, architecture(self.config.supernet), render_mode
        )
        self._sampler: EpisodeSampler | None = None

    # Pickling (and copy.deepcopy) keeps the arguments and the episode in progress with its
    # generator, never the weights: the supernet is loaded again (or found loaded) on the other side.
    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = {"kwargs": self.config.kwargs(), "render_mode": self.render_mode, "spec": self.spec}
        if self._engine is not None and self._started:
            state["episode"] = self.get_state()
            state["np_random_seed"] = self._np_random_seed
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(render_mode=state.get("render_mode"), **state["kwargs"])  # type: ignore[misc]
        self.spec = state.get("spec")
        if "episode" in state:
            self.reset()  # builds the engine as fork() does; set_state then replaces the episode and generator
            self.set_state(state["episode"])
            self._np_random_seed = state["np_random_seed"]

    @property
    def engine(self) -> EpisodeEngine:
        """The underlying one-row engine (loads the supernet and the split on first use)."""
        if self._engine is None:
            self._engine = build_engine(self.config, 1)
            self._sampler = EpisodeSampler(self.config, len(self._engine.split))
        return self._engine

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsType, dict[str, Any]]:
        """Start an episode on a new image (see Starting State)."""
        super().reset(seed=seed)
        engine = self.engine
        assert self._sampler is not None  # built with the engine
        if seed is not None:
            self._sampler.restart()
        index, budget = self._sampler.draw(self.np_random, index_option(options))
        obs = engine.reset(np.array([index]), None if budget is None else np.array([budget]))
        self._started = True
        return self._format(obs, 0), self._mask_info({}, 0)

    def step(self, action: Any) -> tuple[ObsType, SupportsFloat, bool, bool, dict[str, Any]]:
        """Run the current layer at ``bit_choices[action]`` (see Rewards and Info)."""
        if not self._started:
            raise RuntimeError("step() called before reset(): call env.reset() to start an episode")
        engine = self.engine
        if engine.done:
            raise RuntimeError("step() called after the episode terminated: call env.reset() first")
        a = check_action(action, len(self.bit_choices), self.bit_choices)
        res = engine.step(np.array([a]))
        # NumPy scalars, never Python ones: TorchRL reads each info value's dtype.
        info: dict[str, Any] = {
            "layer": np.int64(res.layer),
            "bits": res.bits[0],
            "bitops_step": res.bitops_step[0],
            "cost_step": res.cost_step[0],
        }
        if self.config.budget is not None:
            info["clipped"] = res.clipped[0]
            info["action_mask"] = engine.action_masks()[0]
        if res.terminated:
            info.update(terminal_info(res, engine, 0))
        return self._format(res.obs, 0), self._reward_of(res), bool(res.terminated), False, info

    def _reward_of(self, res: StepResult) -> Any:
        """The reward ``step`` returns for the engine's result (the multi-objective env returns a vector)."""
        return float(res.reward[0])

    def render(self) -> str | np.ndarray | None:
        """The episode so far in ``render_mode`` (see Rendering); None without a render mode."""
        return self._frame(0)

    def action_masks(self) -> np.ndarray:
        """Allowed actions at this step (bool, one per bit choice); all True without a budget."""
        if not self._started:
            return np.ones(len(self.bit_choices), dtype=bool)
        return self.engine.action_masks()[0]

    # Look-ahead API --------------------------------------------------------------------------
    @property
    def layer(self) -> int:
        """Index of the layer the next action decides (== num_layers once terminated)."""
        return self.engine.t

    @property
    def label(self) -> int:
        """The current image's label: only for agents that declare they use it (e.g. the oracle)."""
        return int(self.engine.labels[0])

    def lookahead(self, rest_bits: Any) -> np.ndarray:
        """Logits if layers ``layer..`` ran at ``rest_bits`` (bit values); no side effects but cost counting.

        ``rest_bits`` is one configuration (length ``num_layers - layer``; result shape (classes,))
        or a 2-D array of several (result shape (M, classes)).
        """
        if not self._started:
            raise RuntimeError("lookahead() called before reset()")
        rest = np.asarray(rest_bits)  # the engine refuses non-integer values rather than truncating them
        if rest.ndim == 1:
            return self.engine.lookahead(rest[None, :], np.zeros(1, dtype=np.int64))[0]
        return self.engine.lookahead(rest, np.zeros(len(rest), dtype=np.int64))

    def get_state(self) -> dict[str, Any]:
        """Snapshot of the episode in progress (and the RNG), for :meth:`set_state`."""
        engine_state = self.engine.get_state()
        assert self._sampler is not None  # built with the engine
        return {
            "engine": engine_state,
            "started": self._started,
            "rng": copy.deepcopy(self.np_random.bit_generator.state),
            "position": self._sampler.position,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Rewind to a snapshot from :meth:`get_state`."""
        self.engine.set_state(state["engine"])
        assert self._sampler is not None  # built with the engine
        self._started = state["started"]
        self.np_random.bit_generator.state = copy.deepcopy(state["rng"])
        self._sampler.position = state["position"]

    def fork(self) -> ABNEnv:
        """An independent copy of this env (of its class) in its current state (sharing the frozen supernet)."""
        clone = type(self)(render_mode=self.render_mode, **self.config.kwargs())
        _ = clone.engine
        clone.reset()
        clone.set_state(self.get_state())
        return clone


def _keyword_signature(fields: tuple[dataclasses.Field, ...]) -> inspect.Signature:
    """``(self, *, <every EnvConfig field>, render_mode=None)``: what help() and IDEs show for ABNEnv."""
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for f in fields:
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=f.type))
    params.append(
        inspect.Parameter("render_mode", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="str | None")
    )
    return inspect.Signature(params)


# The arguments are EnvConfig's fields, validated by make_config; the signature is generated from
# them so that it cannot drift from the dataclass.
ABNEnv.__init__.__signature__ = _keyword_signature(dataclasses.fields(EnvConfig))  # type: ignore[attr-defined]
