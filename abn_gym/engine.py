"""The batched episode engine shared by the single env, the vector env and the SB3 adapter.

N episodes advance together, one switchable layer per step (every episode has exactly
``num_layers`` steps, so a batch never falls out of step). Each step runs the layer once per
distinct bit-width chosen in the batch, on the rows that chose it (the activations stay
grouped by bit-width between steps; see ``supernets.resnet.State``). Because the supernet's
frozen path is exact integer arithmetic, a row's result does not depend on which other rows
share its batch: one engine of N rows reproduces N engines of one row bit for bit.

What the single env and the vector env share on top of the engine lives in :mod:`abn_gym.core`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch

from abn_gym.budgets import fit, is_monotone, min_rest, spans
from abn_gym.episode_cache import CachedRows, EpisodeCache, reference_predictions
from abn_gym.errors import EnvArgumentError, EnvCallError
from abn_gym.observations import ObservationLayout, channel_sums, stats_scale, write_stats
from abn_gym.rewards import RewardFn
from supernets.bitops import REFERENCE_BITS
from supernets.costs import CostTable, cost_table
from supernets.data import Split
from supernets.layers import SwitchableConv2d
from supernets.quant import unsigned_range
from supernets.supernet import State, Supernet


@dataclass
class StepResult:
    """What one batched step produced (arrays of length N)."""

    obs: np.ndarray
    reward: np.ndarray
    terminated: bool
    layer: int
    bits: np.ndarray
    bitops_step: np.ndarray
    clipped: np.ndarray
    cost_step: np.ndarray  # the step's cost in the cost model's unit (float64; == bitops_step under "bitops")
    # Only on the last step:
    prediction: np.ndarray | None = None
    correct: np.ndarray | None = None
    logits: np.ndarray | None = None
    terminal_reward: np.ndarray | None = None  # the terminal term the last step's reward adds


class EpisodeEngine:
    """N synchronised episodes over one frozen supernet.

    Args:
        net: frozen supernet (shared, read-only).
        split: the data split episodes draw their inputs from.
        bit_choices: the action set, a sorted subset of ``net.bit_choices``.
        reward: the reward function.
        num_envs: N, the number of episodes run together.
        device: torch device of the supernet.
        decide_at: the layers at which a step begins (from 0, strictly increasing); a step runs
            every layer up to the next decision point at the chosen bit-width. None: every layer.
        costs: the cost model's table at ``bit_choices`` (:func:`supernets.costs.cost_table`); it
            prices the reward's step cost, the budget and its mask, and the observation's spent
            fraction. None: BitOps. BitOps are counted beside it whatever the model (``info``'s
            ``bitops_*`` keys, :meth:`episode_bitops`).
        episode_cache: remembered episodes, bounded to this many MB (0: off), exact: a hit skips the
            supernet for its row (:mod:`abn_gym.episode_cache`; hits are counted in :attr:`episode_cache`).
    """

    def __init__(
        self,
        net: Supernet,
        split: Split,
        bit_choices: Sequence[int],
        reward: RewardFn,
        num_envs: int,
        device: str | torch.device = "cpu",
        decide_at: Sequence[int] | None = None,
        costs: CostTable | None = None,
        episode_cache: float = 0,
    ) -> None:
        self.net, self.split, self.reward_fn = net, split, reward
        if int(num_envs) % reward.group_size:
            raise EnvArgumentError(
                f"num_envs={num_envs} is not a multiple of group_size={reward.group_size}: each group of "
                f"{reward.group_size} consecutive sub-envs shares one image; choose num_envs = k * group_size"
            )
        self.num_envs, self.device = int(num_envs), torch.device(device)
        self.bit_choices = np.asarray(bit_choices, dtype=np.int64)
        self.num_layers = net.num_switchable
        self.layout = ObservationLayout(net)
        self.max_bitops = net.max_bitops
        # Exact integer BitOps of layer t at bit_choices[a]; fractions of the all-8 configuration.
        self.cost_ops = np.array(
            [[int(net.layer_bitops(t, int(b))) for b in self.bit_choices] for t in range(self.num_layers)],
            dtype=np.int64,
        )
        # The cost model prices the reward, the budget and the observation. Under "bitops" its table
        # is the same int64 table and its all-8 the same float as cost_ops and max_bitops, so the
        # default path does the same arithmetic on the same numbers (and shares spent_ops, below).
        self.costs = cost_table(net, self.bit_choices.tolist()) if costs is None else costs
        if self.costs.bit_choices != tuple(int(b) for b in self.bit_choices):
            raise EnvArgumentError(
                f"the cost table is for bit_choices={self.costs.bit_choices}, the engine runs {tuple(bit_choices)}: "
                "build it with cost_table(net, bit_choices, cost_model)"
            )
        self.cost_units = self.costs.layers
        self.cost_all8 = self.costs.all8
        integer = self.cost_units.dtype.kind == "i"
        self.cost_fixed = int(self.costs.fixed) if integer else self.costs.fixed
        self._same_cost = self.costs.model == "bitops" and np.array_equal(self.cost_units, self.cost_ops)
        self.cost = self.cost_units / self.cost_all8
        # Costs that never fall as bits rise (BitOps, BitFusion) make a budget's allowed actions a
        # prefix; a measured table need not, and gets the general rules of abn_gym.budgets.
        self.monotone = is_monotone(self.cost_units)
        # One step runs layers t .. next_layer[t] - 1 (one layer unless decide_at says otherwise);
        # span_ops[t] is their BitOps at each action (== cost_ops without decide_at, so the
        # default path reads the same numbers from the same kind of table); span_units their cost.
        points = tuple(range(self.num_layers)) if decide_at is None else tuple(int(p) for p in decide_at)
        self.decision_points = points
        self.horizon = len(points)
        self.span_ops, self.next_layer = spans(self.cost_ops, points)
        self.span_units, _ = spans(self.cost_units, points)
        self.span_cost = self.span_units / self.cost_all8
        self.fixed_ops = sum(s.bitops(REFERENCE_BITS) for s in net.fixed_specs)
        self.fixed_fraction = self.cost_fixed / self.cost_all8
        # Cheapest possible cost of layers t.. (for budget feasibility); row L is 0. The cheapest
        # action of every step, always allowed (budgets are validated >= the cheapest configuration).
        self.cheapest = [int(np.argmin(self.span_units[t])) for t in range(self.num_layers)]
        self.min_rest = min_rest(self.cost, self.span_cost, points, self.next_layer, self.monotone)
        layer_macs = [s.macs + sum(e.macs for j, e in net.extra_specs if j == t) for t, s in enumerate(net.layer_specs)]
        self.rest_macs = np.concatenate([np.cumsum(layer_macs[::-1])[::-1], [0]]) + net.fixed_specs[-1].macs
        # Activation statistics are scaled by each layer's 8-bit input clip range (the range the
        # next quantizer can represent at most), so they land in [0, 1].
        convs = cast("list[SwitchableConv2d]", list(net.convs))  # a ModuleList types its items as Module
        ranges = [float(c.act_step[c.slot(max(net.bit_choices))].abs()) * c.act_range(8)[1] for c in convs]
        ranges.append(float(net.fc.act_step.abs()) * unsigned_range(8)[1])
        self._inv_range = [1.0 / r for r in ranges]
        self._signed = net.signed_inputs
        self._stats_scale: list[np.ndarray | None] = [None] * (self.num_layers + 1)
        self._scratch: dict[tuple, torch.Tensor] = {}  # reused buffers for the squares
        self._table = self.layout.layer_table
        self._spent_col = self.layout.slices["bitops_spent"].start
        self._bits_col = self.layout.slices["bits_so_far"].start
        self._table_cols = slice(self.layout.slices["layer"].start, self.layout.slices["layer_onehot"].stop)
        # Per-step reward of every (layer, action): one lookup per step instead of arithmetic.
        self._step_reward = reward.step(self.span_cost)
        self._cost_ops_float = self.span_ops.astype(np.float64)
        self._cost_units_float = self.span_units.astype(np.float64)
        self._bits_fraction = (self.bit_choices / REFERENCE_BITS).astype(np.float32)  # bits_so_far entries
        self._budget_enabled = False
        self._reference_bits = reward.reference_bits
        self._allocate()
        self._cached = CachedRows(self, episode_cache) if episode_cache else None
        self.episode_cache: EpisodeCache | None = None if self._cached is None else self._cached.store

    def _allocate(self) -> None:
        n, lay = self.num_envs, self.layout
        self.t = 0
        self.state: State | None = None
        self.indices = np.zeros(n, dtype=np.int64)
        self.labels = np.zeros(n, dtype=np.int64)
        self.chosen = np.zeros((n, self.num_layers), dtype=np.int64)
        self.spent_ops = np.zeros(n, dtype=np.int64)
        # The cost model's spent units; under "bitops" the very same array as spent_ops.
        self.spent_units = self.spent_ops if self._same_cost else np.zeros(n, dtype=self.cost_units.dtype)
        self.budgets = np.ones(n, dtype=np.float64)
        self.lookahead_macs = np.zeros(n, dtype=np.int64)
        self._obs = np.zeros((n, lay.size), dtype=np.float32)
        # act_mean and act_std are adjacent: one (N, 2, C_max) view receives both statistics.
        m = lay.slices["act_mean"]
        assert lay.slices["act_std"].start == m.stop
        self._obs_stats = self._obs[:, m.start : m.start + 2 * lay.max_channels].reshape(n, 2, lay.max_channels)
        # (N, 2, C_max) channel sums of the current activations; on CPU, a numpy view shares them.
        self._sums = torch.zeros((n, 2, lay.max_channels), device=self.device)
        self._group_sums = torch.zeros((n, 2, lay.max_channels), device=self.device)
        self._sums_host = self._sums.numpy() if self._sums.device.type == "cpu" else None
        self._writers = [self._stats_writer(t) for t in range(self.num_layers + 1)]
        self._outputs = self._output_buffers()
        self._stats_width = lay.max_channels  # channels written by the last observation
        self._stats_views: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # per width: (sums, obs stats)
        self._obs_full = True  # the next observation rewrites every part, not only what a step changed
        self._no_clip = np.zeros(n, dtype=bool)
        self._no_clip.flags.writeable = False
        self._started = False  # reset() has run (with the episode cache, self.state may be None after it)

    def _output_buffers(self) -> list[torch.Tensor | None]:
        # Layer t writes its output into one of net.buffer_span buffers per shape, taken in turn: a
        # step reads its input and its block's shortcut, never an output older than that span
        # (three buffers for a basic block, four for an inverted residual block).
        # Reusing them spares the page faults of fresh multi-MB tensors at every step. One row's
        # tensors are small enough for the allocator's own cache, and the out= path only costs there.
        if not self.net.frozen or self.num_envs == 1:
            return [None] * self.num_layers
        buffers: dict[tuple, torch.Tensor] = {}
        out: list[torch.Tensor | None] = []
        span = max(3, self.net.buffer_span)
        for t, spec in enumerate(self.net.layer_specs):
            key = (t % span, spec.c_out, spec.h_out, spec.w_out)
            if key not in buffers:
                shape = (self.num_envs, spec.h_out, spec.w_out, spec.c_out)
                buffers[key] = torch.empty(shape, device=self.device).permute(0, 3, 1, 2)
            out.append(buffers[key])
        return out

    # Episode control -------------------------------------------------------------------------
    @torch.inference_mode()
    def reset(self, indices: np.ndarray, budgets: np.ndarray | None = None) -> np.ndarray:
        """Start N new episodes on images ``indices`` of the split; returns the first observations."""
        indices = np.asarray(indices, dtype=np.int64).reshape(self.num_envs)
        self.indices[:] = indices
        self.labels[:] = self.split.labels.numpy()[indices]
        self._budget_enabled = budgets is not None
        self.budgets[:] = 1.0 if budgets is None else budgets
        self.chosen[:] = 0
        self.spent_ops[:] = 0
        self.spent_units[:] = 0
        self.lookahead_macs[:] = 0
        self.t = 0
        self._started = self._obs_full = True
        if self._cached is not None:
            self._cached.reset(self)
            return self._observe_parts()
        x = self.split.inputs(torch.from_numpy(indices), self.device)
        self.state = self.net.stem_forward(x)
        return self._observe()

    @property
    def done(self) -> bool:
        """True once every layer has run (the batch needs a reset)."""
        return self.t >= self.num_layers

    def action_masks(self) -> np.ndarray:
        """(N, K) bool: actions that keep each episode within its cost budget (all True without one)."""
        if self.done:
            return np.ones((self.num_envs, len(self.bit_choices)), dtype=bool)
        mask = np.ones((self.num_envs, len(self.bit_choices)), dtype=bool)
        if self._budget_enabled:
            t = self.t
            total = (
                self.fixed_fraction
                + self.spent[:, None]
                + self.span_cost[t][None, :]
                + self.min_rest[self.next_layer[t]]
            )
            mask = total <= self.budgets[:, None] + 1e-12
            mask[:, self.cheapest[t]] = True  # always feasible: budgets are validated >= the minimum
        return mask

    @torch.inference_mode()
    def step(self, actions: np.ndarray) -> StepResult:
        """Run the current layer for every episode at ``bit_choices[actions]``."""
        t = self.t
        actions = np.asarray(actions, dtype=np.int64)
        clipped = self._no_clip
        if self._budget_enabled:
            mask = self.action_masks()
            if self.monotone:
                allowed_max = mask.sum(axis=1) - 1  # allowed actions are a prefix: cost rises with bits
                clipped = actions > allowed_max
                actions = np.minimum(actions, allowed_max)
            else:
                clipped, actions = fit(mask, actions, self.cheapest[t])
        bits = self.bit_choices[actions]
        end = self.next_layer[t]
        # One row needs no grouping: pass a plain int and skip the supernet's grouping checks.
        run_bits = int(bits[0]) if self.num_envs == 1 else bits
        logits = None
        if self._cached is not None:  # the network runs only for the rows that miss
            self.chosen[:, t:end] = bits[:, None]
            self._obs[:, self._bits_col + t : self._bits_col + end] = self._bits_fraction[actions][:, None]
            logits = self._cached.step(self, t, end, actions, bits)
        elif end == t + 1:
            assert self.state is not None, "reset() runs the stem first"  # for the type checker
            self.state = self.net.step(self.state, t, run_bits, self._writers[end], self._outputs[t])
            self.chosen[:, t] = bits
            self._obs[:, self._bits_col + t] = self._bits_fraction[actions]
        else:  # decide_at: the layers up to the next decision point keep this step's bit-width
            assert self.state is not None, "reset() runs the stem first"  # for the type checker
            for j in range(t, end):
                writer = self._writers[end] if j == end - 1 else None  # only the next decision is observed
                self.state = self.net.step(self.state, j, run_bits, writer, self._outputs[j])
            self.chosen[:, t:end] = bits[:, None]
            self._obs[:, self._bits_col + t : self._bits_col + end] = self._bits_fraction[actions][:, None]
        self.spent_ops += self.span_ops[t][actions]  # [t][a]: two fast indexings beat one [t, a]
        if not self._same_cost:
            self.spent_units += self.span_units[t][actions]
        reward = self._step_reward[t][actions]
        self.t = end
        result = StepResult(
            obs=self._observe(stats_written=True) if self._cached is None else self._observe_parts(),
            reward=reward,
            terminated=self.done,
            layer=t,
            bits=bits,
            bitops_step=self._cost_ops_float[t][actions],
            clipped=clipped,
            cost_step=self._cost_units_float[t][actions],
        )
        if self.done:
            if logits is None:
                assert self.state is not None  # for the type checker
                logits = self.net.head(self.state).float()
            logp = torch.log_softmax(logits, dim=1).cpu().numpy()
            pred = logp.argmax(axis=1)
            correct = pred == self.labels
            fraction = self.episode_cost() / self.cost_all8
            reference = None
            if self._reference_bits is not None:
                reference = reference_predictions(self.net, self.split, self._reference_bits, self.indices)
            term = self.reward_fn.terminal(
                correct, logp[np.arange(self.num_envs), self.labels], fraction, pred, reference, self.labels
            )
            result.reward, result.terminal_reward = reward + term, term
            result.prediction, result.correct, result.logits = pred, correct, logits.cpu().numpy()
        return result

    @property
    def spent(self) -> np.ndarray:
        """Cost of the switchable layers so far, as a fraction of the all-8 configuration's cost."""
        return self.spent_units / self.cost_all8

    def episode_bitops(self) -> np.ndarray:
        """Exact total BitOps of each episode's configuration so far, fixed 8-bit layers included."""
        return (self.spent_ops + self.fixed_ops).astype(np.float64)

    def episode_cost(self) -> np.ndarray:
        """Total cost (the cost model's unit) of each episode's configuration so far, fixed layers included.

        Exact for the integer models (BitOps, BitFusion); a float table's sum is rounded as float64 sums are.
        """
        return (self.spent_units + self.cost_fixed).astype(np.float64)

    # Shared compute ----------------------------------------------------------------------------
    def _stats_writer(self, t: int) -> Callable[[torch.Tensor, torch.Tensor | None], None]:
        """Sums layer ``t``'s input over H x W into ``self._sums``: a whole batch, or one row group."""
        views: list = []  # built on first use (shapes come from x): sums, squares, scratch, both sums

        def write(x: torch.Tensor, rows: torch.Tensor | None) -> None:
            c = x.shape[1]
            if not views:
                layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else None
                key = (self.num_envs, *x.shape[1:], layout)
                if key not in self._scratch:
                    scratch = torch.empty((self.num_envs, *x.shape[1:]), device=x.device, dtype=x.dtype)
                    self._scratch[key] = scratch if layout is None else scratch.contiguous(memory_format=layout)
                views.extend([self._sums[:, 0, :c], self._sums[:, 1, :c], self._scratch[key], self._sums[:, :, :c]])
                self._stats_scale[t] = stats_scale(self._inv_range[t], x.shape[2], x.shape[3])
            sums, squares, scratch, both = views
            if rows is None:
                channel_sums(x, sums, squares, scratch)
                return
            # One row group: sum into the first rows of the group buffer, then copy them to the
            # group's batch rows (the sums, unlike the activations, stay in batch order).
            n = x.shape[0]
            part = self._group_sums[:n, :, :c]
            channel_sums(x, part[:, 0], part[:, 1], scratch[:n])
            both.index_copy_(0, rows, part)

        return write

    def _write_stats(self, x: torch.Tensor) -> None:
        # Turn the sums of the last layer run into the observation's (mean, std) part.
        c = x.shape[1]
        if c < self._stats_width or self._obs_full:
            # Zero the statistics of channels this layer does not have (C varies between layers).
            self._obs_stats[:, :, c:] = 0.0
        self._stats_width = c
        views = self._stats_views.get(c)
        if views is None or self._sums_host is None:
            sums = self._sums_host if self._sums_host is not None else self._sums.cpu().numpy()
            views = self._stats_views[c] = (sums[:, :, :c], self._obs_stats[:, :, :c])
        sums_view, stats_view = views
        # The scale of layer t was set when its output was first seen (see _stats_writer).
        write_stats(sums_view, stats_view, self._stats_scale[self.t], self._signed)  # type: ignore[arg-type]

    def _observe(self, stats_written: bool = False) -> np.ndarray:
        # A step changes the activation statistics (written during the step, see _stats_writer),
        # the layer columns, one bits_so_far column (written in step) and bitops_spent; reset and set_state
        # rewrite everything (_obs_full).
        assert self.state is not None, "reset() runs the stem first"  # for the type checker
        if not stats_written:
            rows = self.state.rows
            self._writers[self.t](self.state.x, None if rows is None else torch.from_numpy(rows).to(self.device))
        self._write_stats(self.state.x)
        return self._observe_parts()

    def _observe_parts(self) -> np.ndarray:
        # The parts but the activation statistics (the episode cache writes those), then a copy of it all.
        t, lay, obs = self.t, self.layout, self._obs
        obs[:, self._table_cols] = self._table[t]
        if self._obs_full:
            obs[:, lay.slices["bits_so_far"]] = self.chosen / REFERENCE_BITS
            obs[:, lay.slices["budget"].start] = self.budgets
            self._obs_full = False
        obs[:, self._spent_col] = self.spent_units / self.cost_all8
        return obs.copy()

    # Look-ahead and snapshots -------------------------------------------------------------------
    @torch.inference_mode()
    def lookahead(self, rest_bits: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Logits if the remaining layers ran at ``rest_bits``; changes nothing in the episodes.

        Args:
            rest_bits: (M, L - t) bit-widths (values, not action indices) for layers t..L-1;
                a 1-D array is used for every row.
            rows: (M,) which episode each line continues (default: all N, in order).

        Each evaluated line adds the MACs of the layers it runs to ``lookahead_macs`` of its
        episode, so callers can report the decision cost honestly.
        """
        if not self._started:
            raise RuntimeError("lookahead() called before reset(): call reset() to start an episode")
        if self.done:
            raise RuntimeError("the episode has ended: nothing is left to look ahead at; call reset()")
        rows = np.arange(self.num_envs) if rows is None else _int_array(rows, "rows", "episode indices")
        if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= self.num_envs)):
            raise EnvCallError(
                f"rows={rows.tolist()!r}: expected a 1-D int array of episode indices in [0, {self.num_envs})"
            )
        rest = _int_array(rest_bits, "rest_bits", "bit-width values such as 4")
        if rest.ndim == 1:
            rest = np.broadcast_to(rest, (len(rows), rest.shape[0]))
        if rest.shape != (len(rows), self.num_layers - self.t):
            raise EnvCallError(
                f"rest_bits must have shape ({len(rows)}, {self.num_layers - self.t}) at layer {self.t}, "
                f"got {rest.shape}"
            )
        bad = np.setdiff1d(np.unique(rest), self.net.bit_choices)
        if bad.size:
            raise EnvCallError(
                f"bit-widths {bad.tolist()} were not trained; use values from {list(self.net.bit_choices)}"
            )
        if self._cached is not None:
            self._cached.materialize(self)
        assert self.state is not None  # for the type checker
        state = self.state.select(rows)
        for j, t in enumerate(range(self.t, self.num_layers)):
            state = self.net.step(state, t, rest[:, j])
        np.add.at(self.lookahead_macs, rows, int(self.rest_macs[self.t]))
        return self.net.head(state).float().cpu().numpy()

    def get_state(self) -> dict:
        """A snapshot of the episodes (tensors cloned): pass it to :meth:`set_state` to rewind."""
        if self._cached is not None:
            self._cached.materialize(self)
        return {
            "t": self.t,
            "state": None if self.state is None else _copy_state(self.state),
            **{
                k: getattr(self, k).copy()
                for k in ("indices", "labels", "chosen", "spent_ops", "spent_units", "budgets", "lookahead_macs")
            },
            "budget_enabled": self._budget_enabled,
        }

    def set_state(self, snapshot: dict) -> None:
        """Restore a snapshot taken by :meth:`get_state` (of an engine with the same N)."""
        if snapshot["indices"].shape != (self.num_envs,):
            raise ValueError(
                f"snapshot is for {snapshot['indices'].shape[0]} episodes, this engine runs {self.num_envs}"
            )
        self.t = snapshot["t"]
        self.state = None if snapshot["state"] is None else _copy_state(snapshot["state"])
        for k in ("indices", "labels", "chosen", "spent_ops", "spent_units", "budgets", "lookahead_macs"):
            getattr(self, k)[:] = snapshot[k]
        self._budget_enabled = snapshot["budget_enabled"]
        self._obs_full = True
        self._started = self.state is not None
        if self._cached is not None:
            self._cached.restored(self)


def _int_array(value: object, name: str, what: str) -> np.ndarray:
    """``value`` as an int64 array; floats and bools are refused rather than truncated or read as 0/1."""
    array = np.asarray(value)
    if array.dtype.kind not in "iu":
        raise EnvCallError(
            f"{name} must hold ints ({what}), got dtype {array.dtype}: floats would be truncated and bools read "
            f"as 0 and 1; pass an int array, e.g. np.asarray({name}, dtype=np.int64) once the values are whole"
        )
    return array.astype(np.int64, copy=False)


def _copy_state(state: State) -> State:
    # A NamedTuple rebuilt field by field: mypy cannot follow the types through the generator.
    fields = (None if v is None else v.clone() if isinstance(v, torch.Tensor) else v.copy() for v in state)
    return State(*fields)  # type: ignore[arg-type]
