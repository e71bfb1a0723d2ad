"""The bench's side of the boundary: an agent in a worker process, driven one decision step at a time.

:class:`IsolatedAgent` follows the agent protocol in the bench process, but the agent it stands
for lives in a worker (:mod:`agents.controllers.worker`) started with the *spawn* context, so it
never held the engine, the labels, the data or the supernet. Per step it sends the observations,
the action mask and the layer, and receives actions; it answers the worker's look-ahead and label
requests only when the agent declared them, through the bench's view, which counts every
look-ahead pass. Replies are decoded from plain bytes, never unpickled.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from pathlib import Path
from typing import Any

import numpy as np

from agents.controllers.base import (
    AgentActionError,
    AgentFailedError,
    AgentProtocolError,
    LabelAccessError,
    LookaheadAccessError,
    lookahead_refused,
)
from agents.controllers.model_agents import BenchContext, check_model_card, check_plain_model, is_model_path
from agents.controllers.safe_load import UnsafeModelError, parse_plain_model
from agents.controllers.worker import MAX_MESSAGE, WorkerMessageError, decode, encode, serve, spawn_without_main
from supernets.foundation.errors import ABNGymError, CheckpointError, UsageError

ISOLATION = ("worker", "none")
"""``--isolation``: user agents and model files in a worker process, or everything in the bench process."""
CLOSE_TIMEOUT = 5.0
"""Seconds a worker gets to exit after ``close`` before it is terminated, then killed."""

_ERRORS: dict[str, type[ABNGymError]] = {
    cls.__name__: cls
    for cls in (
        UsageError,
        CheckpointError,
        UnsafeModelError,
        AgentFailedError,
        AgentProtocolError,
        AgentActionError,
        LabelAccessError,
        LookaheadAccessError,
    )
}
"""The project errors a worker may report by name; any other becomes :class:`AgentFailedError`."""


class AgentWorkerError(ABNGymError, RuntimeError):
    """An agent's worker process died, or broke the pipe's protocol."""


def isolated_kind(spec: str) -> str | None:
    """``"class"`` or ``"model"`` when ``--isolation worker`` runs ``spec`` in a worker, else None.

    Escalation policies (``.pt``) are weights read with ``weights_only=True`` into a built-in
    class; they stay in the bench process like the other built-ins.
    """
    if is_model_path(spec):
        return None if spec.endswith(".pt") else "model"
    if ":" in spec:
        return "class"
    return None


def _model_request(spec: str, ctx: BenchContext, spaces: tuple[Any, Any]) -> dict[str, Any]:
    """Check a model file against its card in the bench process (no model code runs here)."""
    if parse_plain_model(spec) is not None:  # ALGO:PATH.zip@NAME, a zip without a card
        algo, file, name = check_plain_model(spec)
        found = {"algo": algo, "path": file, "name": name, "source": f"{algo}: on the command line"}
        return {**found, "observation_space": spaces[0], "action_space": spaces[1]}
    card_path, card = check_model_card(Path(spec), ctx)
    found = {"algo": card.get("algo", "ppo"), "path": spec, "name": spec, "source": f"its card {card_path}"}
    return {**found, "observation_space": spaces[0], "action_space": spaces[1]}


class IsolatedAgent:
    """An agent in a spawned worker process, with the agent protocol on the bench's side.

    Use it as a context manager, or call :meth:`close`: the worker is shut down on exit, on an
    error and on Ctrl-C (it ignores SIGINT itself, so the bench decides).

    Args:
        spec: the ``--agents`` entry (``module:Class`` or a model's path).
        ctx: the benchmarked env.
        kind: ``"class"`` or ``"model"`` (see :func:`isolated_kind`).
        spaces: the env's single observation and action spaces (a model is built on them, not on an env).
        num_layers: switchable layers per episode.
        trained_bits: every bit-width the supernet can run.
    """

    def __init__(
        self,
        spec: str,
        ctx: BenchContext,
        kind: str,
        spaces: tuple[Any, Any],
        num_layers: int,
        trained_bits: tuple[int, ...],
    ) -> None:
        self.spec = spec
        self.name = spec
        self.refused: ABNGymError | None = None
        request: dict[str, Any] = {
            "kind": kind,
            "spec": spec,
            "num_layers": int(num_layers),
            "bit_choices": [int(b) for b in ctx.bit_choices],
            "trained_bits": [int(b) for b in trained_bits],
        }
        self.kind = kind
        if kind == "model":
            request.update(_model_request(spec, ctx, spaces), trust_pickle=ctx.trust_pickle)
        mp = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing of this process is inherited
        self._conn, child = mp.Pipe()
        self._proc = mp.Process(target=serve, args=(child, request), name=f"abn-gym agent {spec}")
        with spawn_without_main():
            self._proc.start()
        child.close()
        try:
            meta = self._call(None, "load")["meta"]
            self._set_meta(meta, kind)
        except BaseException:
            self.close()
            raise

    def _set_meta(self, meta: Any, kind: str) -> None:
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
            raise AgentWorkerError(f"the worker of agent {self.spec!r} described its agent wrongly: {meta!r:.200}")
        self.name = meta["name"]
        self.uses_label = meta.get("uses_label") is True
        self.uses_lookahead = meta.get("uses_lookahead") is True
        self.stochastic = meta.get("stochastic") is not False
        self.decision_macs_per_step = max(0, int(meta.get("decision_macs_per_step") or 0))
        self.decision_macs_per_episode = max(0, int(meta.get("decision_macs_per_episode") or 0))
        self.builtin_cost = kind == "model"  # only our own SB3 loader's layer count is trusted

    def loaded_files(self) -> list[str]:
        """The files of the modules the worker loaded from outside the installation, so far (for resume)."""
        files = self._call({"op": "sources"}, "sources").get("files")
        return [str(f) for f in files if isinstance(f, str)] if isinstance(files, list) else []

    # The pipe ---------------------------------------------------------------------------------
    def _recv(self, method: str) -> dict[str, Any]:
        try:
            if not self._conn.poll(None):
                raise EOFError
            return decode(self._conn.recv_bytes(MAX_MESSAGE))
        except (EOFError, OSError):
            self._proc.join(1.0)
            code = self._proc.exitcode
            how = f"exit code {code}" if code is not None and code >= 0 else f"signal {-code}" if code else "no exit"
            raise AgentWorkerError(
                f"the worker process of agent {self.name!r} died in {method}() ({how}); the agent ended its own "
                "process or ran out of memory: fix the agent, or run trusted code with --isolation none to see "
                "its traceback"
            ) from None
        except WorkerMessageError as exc:
            raise AgentWorkerError(f"agent {self.name!r}: {exc}") from None

    def _call(self, msg: dict[str, Any] | None, method: str, view: Any = None) -> dict[str, Any]:
        """Send ``msg``, answer the worker's requests, and return its reply (or raise its error)."""
        if msg is not None:
            self._conn.send_bytes(encode(msg))
        while True:
            reply = self._recv(method)
            op = reply.get("op")
            if op == "error":
                cls = _ERRORS.get(str(reply.get("type")))
                text = str(reply.get("message"))
                if cls is not None:  # a mistake our own error already explains, as in the bench process
                    raise cls(text)
                raise AgentFailedError(f"agent {self.name!r} raised in {method}(): {text}")
            if op in ("lookahead", "labels") and view is not None:
                self._conn.send_bytes(encode(self._answer(reply, view)))
                continue
            if op in ("lookahead", "labels"):
                self._conn.send_bytes(encode({"op": "failed", "message": f"no {op} outside act()"}))
                continue
            return reply

    def _answer(self, request: dict[str, Any], view: Any) -> dict[str, Any]:
        if request["op"] == "labels":
            if not self.uses_label:
                self.refused = LabelAccessError(
                    f"agent {self.name!r} read infos['view'].labels without declaring uses_label = True; declare "
                    "it (the leaderboard then marks the agent as an upper bound), or do not read the labels"
                )
                return {"op": "refused", "what": "labels", "message": str(self.refused)}
            return {"op": "labels", "labels": np.asarray(view.labels, dtype=np.int64)}
        if not self.uses_lookahead:
            self.refused = lookahead_refused(self.name)
            return {"op": "refused", "what": "lookahead", "message": str(self.refused)}
        try:
            logits = view.lookahead(request.get("rest_bits"), request.get("rows"))
        except (ValueError, RuntimeError, IndexError, TypeError) as exc:
            return {"op": "failed", "message": f"lookahead: {exc}"}
        return {"op": "lookahead", "logits": logits}

    # The agent protocol -------------------------------------------------------------------------
    def reset(self, num_envs: int, seed: int) -> None:
        """Prepare the worker's agent for a batch of ``num_envs`` episodes."""
        self._call({"op": "reset", "num_envs": int(num_envs), "seed": int(seed)}, "reset")

    def act_measured(self, obs: Any, infos: dict[str, Any]) -> tuple[np.ndarray, int]:
        """The worker's actions, and the MACs it measured around ``act()`` (0 for a model or no torch)."""
        self.refused = None
        msg = {
            "op": "act",
            "obs": obs,
            "action_mask": np.asarray(infos["action_mask"]),
            "layer": int(infos["layer"]),
        }
        reply = self._call(msg, "act", infos.get("view"))
        if self.refused is not None:  # refused, though the agent caught the error: the row fails all the same
            raise self.refused
        actions = reply.get("actions")
        if not isinstance(actions, np.ndarray):
            raise AgentWorkerError(f"the worker of agent {self.name!r} sent no actions")
        return actions, max(0, int(reply.get("macs") or 0))

    def act(self, obs: Any, infos: dict[str, Any]) -> np.ndarray:
        """The worker's actions (see :meth:`act_measured`)."""
        return self.act_measured(obs, infos)[0]

    def close(self) -> None:
        """Shut the worker down: ask, then terminate, then kill."""
        with contextlib.suppress(OSError, ValueError):  # a worker that is gone already
            self._conn.send_bytes(encode({"op": "close"}))
        self._proc.join(CLOSE_TIMEOUT)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(CLOSE_TIMEOUT)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        self._conn.close()

    def __enter__(self) -> IsolatedAgent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
