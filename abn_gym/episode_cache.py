"""What the engine remembers of the network's work: episodes (``episode_cache``) and reference predictions.

**Remembered episodes.** With coarse decisions (``decide_at`` with few points) an episode's
observations depend only on the image and the bit-widths applied so far, and its outcome only on
the image and a handful of actions, so training visits each (image, actions) prefix many times.
:class:`CachedRows` keys each row by its image and the actions applied so far (after any budget
clipping) and remembers, per prefix, the activation statistics the next observation shows and,
after the last layer, the classifier's logits. Everything else (the layer table, ``bits_so_far``,
the cost spent, the budget, the reward and its per-image reference) is computed from the prefix as
without the cache. A hit skips the supernet for its row. The rows that miss run as one smaller
batch: their activations come from the last step, or are recomputed from the stem for a row whose
earlier steps were hits (such a row costs what it costs without the cache). The frozen path's
results do not depend on the batch a row runs in, so cached episodes equal uncached ones bit for bit.

The bound (:class:`EpisodeCache`, least recently used first out) counts each entry's numbers and
its bookkeeping. ``episode_cache="auto"`` (the env's default) is on, at
:data:`DEFAULT_EPISODE_CACHE_MB` MB, for ``decide_at`` with at most :data:`AUTO_MAX_DECISIONS` points
and random sampling; ``0`` turns it off and a number of MB sizes it. The default of deciding at
every layer keeps the cache off (and its path unchanged). The cache belongs to one engine, in its
process: it is never shared through memory or files. Training in several processes
(``SubprocVecEnv``, the zoo's Ray tasks) gives each process its own.

**Reference predictions.** The rewards with a per-image reference remember the image's prediction
at a fixed configuration, per process (:func:`reference_predictions`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from abn_gym.errors import EnvArgumentError
from abn_gym.observations import channel_sums, stats_scale, write_stats
from supernets.data import Split
from supernets.supernet import State, Supernet

EpisodeEngine = Any
"""An :class:`abn_gym.engine.EpisodeEngine` (named, not imported: the engine imports this module)."""

DEFAULT_EPISODE_CACHE_MB = 256
"""The size of ``episode_cache="auto"`` where it is on (a bound, not an allocation)."""
AUTO_MAX_DECISIONS = 3
"""``episode_cache="auto"`` is on for ``decide_at`` with at most this many decision points (and random sampling)."""
ENTRY_OVERHEAD_BYTES = 256
"""What one entry costs besides its numbers (its key, its array object, the ordered dict's slot), measured
with tracemalloc on CPython 3.11 (about 250 bytes); the bound counts it with every entry."""


def check_episode_cache(value: Any) -> str | float:
    """``episode_cache`` validated: ``"auto"``, or a size in MB >= 0 (0: off)."""
    if isinstance(value, str) and value == "auto":
        return value
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not number or not np.isfinite(value) or value < 0:
        raise EnvArgumentError(
            f"invalid episode_cache={value!r}: expected 'auto' (on, {DEFAULT_EPISODE_CACHE_MB} MB, for decide_at with "
            f"at most {AUTO_MAX_DECISIONS} points and random sampling), 0 (off) or a size in MB, e.g. 512"
        )
    return float(value)


def episode_cache_mb(value: str | float, decisions: int, sampling: str) -> float:
    """The cache size in MB that a validated ``episode_cache`` gives an env of ``decisions`` steps (0: off)."""
    if value == "auto":
        on = decisions <= AUTO_MAX_DECISIONS and sampling == "random"
        return float(DEFAULT_EPISODE_CACHE_MB) if on else 0.0
    return float(value)


_REFERENCE_PREDICTIONS: dict[tuple[int, str, int], np.ndarray] = {}


def forget_reference_predictions() -> None:
    """Drop the remembered reference predictions (keyed by the network object, which a reload replaces)."""
    _REFERENCE_PREDICTIONS.clear()


@torch.inference_mode()
def reference_predictions(net: Supernet, split: Split, bits: int, indices: np.ndarray) -> np.ndarray:
    """Predictions of uniform-``bits`` for images ``indices`` of ``split``, remembered per process.

    The rewards with a per-image reference need the same image's prediction at a fixed
    configuration. It depends on the image only, and training revisits images, so each one is
    computed once (frozen inference is exact: batch composition does not change a prediction).
    """
    key = (id(net), split.name, int(bits))
    known = _REFERENCE_PREDICTIONS.get(key)
    if known is None:
        known = _REFERENCE_PREDICTIONS[key] = np.full(len(split), -1, dtype=np.int64)
    missing = np.unique(indices[known[indices] < 0])
    if len(missing):
        device = next(net.parameters()).device
        x = split.inputs(torch.from_numpy(missing), device)
        logits = net.run_layers(net.stem_forward(x), [int(bits)] * net.num_switchable)
        known[missing] = logits.argmax(1).cpu().numpy()
    return known[indices]


class EpisodeCache:
    """Integer keys to float32 rows, least recently used first out once ``limit_bytes`` is exceeded.

    Attributes:
        hits, misses: lookups that found an entry, or did not (one per row and step).
        evictions: entries dropped to stay within the bound.
        nbytes: the entries' numbers plus :data:`ENTRY_OVERHEAD_BYTES` each.
    """

    def __init__(self, limit_mb: float) -> None:
        self.limit_bytes = int(limit_mb * 2**20)
        self._entries: OrderedDict[int, np.ndarray] = OrderedDict()
        self.hits = self.misses = self.evictions = 0
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, keys: list[int]) -> list[np.ndarray | None]:
        """The entry of each key (None where there is none); found ones become the most recently used."""
        entries, found = self._entries, []
        for key in keys:
            value = entries.get(key)
            if value is not None:
                entries.move_to_end(key)
            found.append(value)
        hits = sum(v is not None for v in found)
        self.hits += hits
        self.misses += len(keys) - hits
        return found

    def insert(self, keys: list[int], rows: np.ndarray) -> None:
        """Remember ``rows[i]`` (copied) under ``keys[i]``, then drop the least recently used beyond the bound."""
        entries = self._entries
        for key, row in zip(keys, rows):
            old = entries.pop(key, None)
            if old is not None:  # the same prefix twice in one batch: keep one
                self.nbytes -= old.nbytes + ENTRY_OVERHEAD_BYTES
            entries[key] = value = row.copy()
            self.nbytes += value.nbytes + ENTRY_OVERHEAD_BYTES
        while self.nbytes > self.limit_bytes and entries:
            _, value = entries.popitem(last=False)
            self.nbytes -= value.nbytes + ENTRY_OVERHEAD_BYTES
            self.evictions += 1

    def clear(self) -> None:
        """Forget every entry (the counters stay)."""
        self._entries.clear()
        self.nbytes = 0

    def stats(self) -> dict[str, int]:
        """Counters and size, for logs and benchmarks."""
        return {
            "entries": len(self),
            "hits": self.hits,
            "misses": self.misses,
            "evictions": self.evictions,
            "nbytes": self.nbytes,
            "limit_bytes": self.limit_bytes,
        }


class CachedRows:
    """The engine's side of the cache: each row's key, the rows whose activations it holds, and the
    supernet run for the rows that miss (see :class:`~abn_gym.engine.EpisodeEngine`'s ``episode_cache``).

    A key is ``image * key_base + code``, where a row's code has one base-(K + 1) digit (action + 1)
    per decision made, so prefixes of different lengths never share one. An entry holds the
    (mean, std) statistics of the next observation, and after the last layer the logits too.
    The engine's supernet and split are fixed for its life, so they need no place in the key.
    """

    def __init__(self, engine: EpisodeEngine, limit_mb: float) -> None:
        self.radix = len(engine.bit_choices) + 1
        self.key_base = self.radix**engine.horizon
        if not engine.net.frozen:
            raise EnvArgumentError("episode_cache needs a frozen supernet (its exact integer path); pass 0")
        if self.key_base >= 2**62:
            raise EnvArgumentError(
                f"episode_cache cannot key {engine.horizon} decisions of {len(engine.bit_choices)} actions; pass 0"
            )
        self.keys_fit = len(engine.split) * self.key_base < 2**62  # else Python ints
        self.store = EpisodeCache(limit_mb)
        self.channels = [0] * (engine.num_layers + 1)  # channels of each layer's observed input, once seen
        self.codes = np.zeros(engine.num_envs, dtype=np.int64)
        self.live = np.zeros(0, dtype=np.int64)  # the batch rows engine.state holds, in its order
        self.everyone = np.arange(engine.num_envs)

    def reset(self, engine: EpisodeEngine) -> None:
        """New images: no activations held; write the stem's statistics."""
        self.codes[:] = 0
        engine.state, self.live = None, self.live[:0]
        self.advance(engine, 0, 0, None)

    def step(
        self, engine: EpisodeEngine, t: int, end: int, actions: np.ndarray, bits: np.ndarray
    ) -> torch.Tensor | None:
        """Layers ``t..end-1`` at ``bits``: writes the statistics of layer ``end``; the logits after the last layer."""
        self.codes *= self.radix
        self.codes += actions + 1
        return self.advance(engine, t, end, bits)

    def advance(self, engine: EpisodeEngine, start: int, end: int, bits: np.ndarray | None) -> torch.Tensor | None:
        """Write every row's statistics of layer ``end``'s input, running layers ``start..end-1`` where missed.

        ``start == end == 0`` is the reset (the stem's output). Returns the (N, classes) logits after the last layer.
        """
        idx = engine.indices
        if self.keys_fit:
            keys = (idx * self.key_base + self.codes).tolist()
        else:
            keys = [i * self.key_base + c for i, c in zip(idx.tolist(), self.codes.tolist())]
        found = self.store.lookup(keys)
        missed = np.fromiter((f is None for f in found), dtype=bool, count=len(found))
        terminal = end == engine.num_layers
        computed = None
        if missed.any():
            state, order = self._state_at(engine, start, missed)
            m = len(order)
            write = self._writer(engine, end, m)
            if start == end:
                write(state.x, None)
            else:
                assert bits is not None
                run_bits = bits[order]
                for j in range(start, end):
                    out = engine._outputs[j]
                    observe = write if j == end - 1 else None
                    state = engine.net.step(state, j, run_bits, observe, None if out is None else out[:m])
            c = self.channels[end]
            stats = np.empty((m, 2, c), dtype=np.float32)
            sums = engine._sums[:m, :, :c].cpu().numpy()
            write_stats(sums, stats, engine._stats_scale[end], engine._signed)
            computed = stats.reshape(m, 2 * c)
            if terminal:
                computed = np.concatenate([computed, engine.net.head(state).float().cpu().numpy()], axis=1)
            self.store.insert([keys[i] for i in order.tolist()], computed)
            engine.state, self.live = state, order
        else:
            engine.state, self.live = None, self.live[:0]
        n, c = engine.num_envs, self.channels[end]
        block = np.empty((n, 2 * c + (engine.net.fc.out_features if terminal else 0)), dtype=np.float32)
        hit = np.flatnonzero(~missed)
        if len(hit):
            block[hit] = np.stack([found[i] for i in hit.tolist()])
        if computed is not None:
            block[self.live] = computed
        engine._obs_stats[:, :, :c] = block[:, : 2 * c].reshape(n, 2, c)
        engine._obs_stats[:, :, c:] = 0.0
        return torch.from_numpy(np.ascontiguousarray(block[:, 2 * c :])) if terminal else None

    def _state_at(self, engine: EpisodeEngine, t: int, rows: np.ndarray) -> tuple[State, np.ndarray]:
        """Activations at layer ``t`` of the batch rows where ``rows`` (bool, (N,)) is True, and their order.

        Rows the last step computed are taken from ``engine.state``; the others (an earlier hit
        skipped them) are recomputed from the stem at their chosen bit-widths.
        """
        live, held = self.live, engine.state
        kept = live[rows[live]] if held is not None else live[:0]
        if held is not None and len(kept) == len(live) == rows.sum():
            return held, live
        lost_mask = rows.copy()
        lost_mask[kept] = False
        lost = np.flatnonzero(lost_mask)
        parts, order = [], []
        if len(kept):
            assert held is not None
            positions = np.full(engine.num_envs, -1, dtype=np.int64)
            positions[live] = np.arange(len(live))
            parts.append(held.select(positions[kept]))
            order.append(kept)
        if len(lost):
            x = engine.split.inputs(torch.from_numpy(engine.indices[lost]), engine.device)
            state = engine.net.stem_forward(x)
            for j in range(t):
                state = engine.net.step(state, j, engine.chosen[lost, j])
            parts.append(state)
            order.append(lost)
        return (parts[0] if len(parts) == 1 else _cat_states(parts)), np.concatenate(order)

    def _writer(self, engine: EpisodeEngine, t: int, m: int) -> Callable[[torch.Tensor, torch.Tensor | None], None]:
        """The engine's statistics writer (``EpisodeEngine._stats_writer``) for a batch of ``m`` rows."""

        def write(x: torch.Tensor, rows: torch.Tensor | None) -> None:
            c = x.shape[1]
            if engine._stats_scale[t] is None:
                engine._stats_scale[t] = stats_scale(engine._inv_range[t], x.shape[2], x.shape[3])
            self.channels[t] = c
            layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else None
            key = (engine.num_envs, *x.shape[1:], layout)
            if key not in engine._scratch:
                scratch = torch.empty((engine.num_envs, *x.shape[1:]), device=x.device, dtype=x.dtype)
                engine._scratch[key] = scratch if layout is None else scratch.contiguous(memory_format=layout)
            scratch = engine._scratch[key]
            if rows is None:
                channel_sums(x, engine._sums[:m, 0, :c], engine._sums[:m, 1, :c], scratch[:m])
                return
            n = x.shape[0]
            part = engine._group_sums[:n, :, :c]
            channel_sums(x, part[:, 0], part[:, 1], scratch[:n])
            engine._sums[:m, :, :c].index_copy_(0, rows, part)

        return write

    def materialize(self, engine: EpisodeEngine) -> None:
        """Hold every row's activations in ``engine.state``, in batch order (for look-ahead and snapshots)."""
        if not engine._started or (engine.state is not None and np.array_equal(self.live, self.everyone)):
            return
        state, order = self._state_at(engine, engine.t, np.ones(engine.num_envs, dtype=bool))
        if not np.array_equal(order, self.everyone):
            state = state.select(np.argsort(order))
        engine.state, self.live = state, self.everyone

    def restored(self, engine: EpisodeEngine) -> None:
        """After ``set_state``: every row's activations are held; the codes follow from the bits chosen."""
        self.live = self.everyone if engine.state is not None else self.live[:0]
        self.codes[:] = 0
        for p in engine.decision_points:
            if p >= engine.t:
                break
            self.codes *= self.radix
            self.codes += np.searchsorted(engine.bit_choices, engine.chosen[:, p]) + 1


def _cat_states(parts: list[State]) -> State:
    """States of disjoint rows, one after the other, as one state in batch order."""
    parts = [p if p.rows is None and p.shortcut_rows is None else p.select(np.arange(p.x.shape[0])) for p in parts]
    x = torch.cat([p.x for p in parts])
    shortcut = None if parts[0].shortcut is None else torch.cat([p.shortcut for p in parts])  # type: ignore[misc]
    return State(x, shortcut)
