"""The agent's side of the boundary: a process of its own that holds the agent and nothing of the env.

``abn-gym bench`` runs custom agents (``module:Class``) and model files (``PATH.zip``) here, in a
process started with multiprocessing's *spawn* context: a fresh interpreter that never held the
engine, the labels, the data or the supernet, and never loads them. Per decision step the bench
sends the observations, the action mask, the layer index and ``bit_choices``; the worker answers
with the actions. A look-ahead (agents that declare ``uses_lookahead``) or the labels (agents that
declare ``uses_label``) are requests the bench answers, checks and counts.

Messages cross the pipe as bytes in one plain format (:func:`encode`): a JSON header and raw numpy
buffers of an allowed dtype. Nothing is ever unpickled from the worker, so an agent cannot make the
bench run code by what it sends back.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import types
from collections.abc import Iterator
from typing import Any

import numpy as np

from agents.controllers.base import LabelAccessError, LookaheadAccessError, check_agent
from agents.controllers.sources import user_module_files
from supernets.foundation.errors import ABNGymError

MAX_MESSAGE = 1 << 30
"""The largest message the bench accepts from a worker (bytes)."""
DTYPES = frozenset(
    np.dtype(t).str for t in ("bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64")
) | frozenset(np.dtype(t).str for t in ("float16", "float32", "float64"))
"""Array dtypes a message may carry: numbers only, never objects."""


class WorkerMessageError(ABNGymError, ValueError):
    """A message over the agent pipe is not in the expected format."""


def encode(msg: dict[str, Any]) -> bytes:
    """A message as bytes: JSON fields, and numpy arrays (or dicts of them, one level) as raw buffers."""
    fields: dict[str, Any] = {}
    arrays: dict[str, list] = {}
    buffers: list[bytes] = []
    offset = 0

    def put(key: str, value: Any) -> None:
        nonlocal offset
        a = np.ascontiguousarray(value)
        if a.dtype.str not in DTYPES:
            raise WorkerMessageError(f"{key}: arrays of dtype {a.dtype} cannot cross the agent pipe; use numbers")
        arrays[key] = [a.dtype.str, list(a.shape), offset, a.nbytes]
        buffers.append(a.tobytes())
        offset += a.nbytes

    for key, value in msg.items():
        if isinstance(value, (np.ndarray, np.generic)):
            put(key, value)
        elif isinstance(value, dict) and value and all(isinstance(v, np.ndarray) for v in value.values()):
            fields[key] = {"__arrays__": list(value)}
            for sub, v in value.items():
                put(f"{key}/{sub}", v)
        else:
            fields[key] = value
    header = json.dumps({"fields": fields, "arrays": arrays}).encode()
    return len(header).to_bytes(8, "little") + header + b"".join(buffers)


def decode(data: bytes) -> dict[str, Any]:
    """The message :func:`encode` made; anything else is refused (no code runs, whatever the bytes)."""
    try:
        size = int.from_bytes(data[:8], "little")
        head = json.loads(data[8 : 8 + size])
        fields, arrays = head["fields"], head["arrays"]
        body = memoryview(data)[8 + size :]
        out: dict[str, Any] = dict(fields)
        decoded: dict[str, np.ndarray] = {}
        for key, (dtype, shape, start, nbytes) in arrays.items():
            if dtype not in DTYPES or start < 0 or start + nbytes > len(body):
                raise ValueError(f"array {key!r} of dtype {dtype!r} at {start}+{nbytes}")
            decoded[key] = np.frombuffer(body[start : start + nbytes], dtype=np.dtype(dtype)).reshape(shape).copy()
        for key, value in list(out.items()):
            if isinstance(value, dict) and set(value) == {"__arrays__"}:
                out[key] = {sub: decoded.pop(f"{key}/{sub}") for sub in value["__arrays__"]}
        out.update(decoded)
        return out
    except (ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError) as exc:
        raise WorkerMessageError(f"a message over the agent pipe is malformed ({exc})") from None


@contextlib.contextmanager
def spawn_without_main() -> Iterator[None]:
    """Processes spawned inside this context do not import the parent's ``__main__`` (the CLI, a script).

    Spawn runs the parent's main module again in the child unless it has neither a spec nor a file;
    what a worker or the pool runs is a module function, so the main module is never needed there,
    and importing it costs seconds per process (the CLI imports every command).
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def measured_act(agent: Any, obs: Any, infos: dict[str, Any]) -> tuple[Any, int]:
    """``agent.act(obs, infos)`` and the multiply-accumulates of the PyTorch ops it ran (FLOPs / 2).

    ``torch.utils.flop_counter.FlopCounterMode`` counts matrix products and convolutions, which is
    where a network's decision cost lies; an agent that runs no PyTorch measures 0.
    """
    # lazy: the flop counter pulls in torch's dispatch machinery, needed only for agents we measure
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        actions = agent.act(obs, infos)
    return actions, int(counter.get_total_flops()) // 2


class AgentView:
    """The worker's ``infos["view"]``: the episode's shape, and look-ahead and labels as requests.

    The bench answers a request only when the agent declared it (``uses_lookahead``, ``uses_label``);
    it counts every look-ahead pass in the agent's decision cost.

    Args:
        conn: the worker's end of the pipe.
        layer: the layer the next action decides.
        num_layers: the number of switchable layers.
        bit_choices: the bit-width of each action index.
        trained_bits: every bit-width the supernet can run (valid in look-ahead configurations).
    """

    def __init__(
        self, conn: Any, layer: int, num_layers: int, bit_choices: tuple[int, ...], trained_bits: tuple[int, ...]
    ) -> None:
        self._conn = conn
        self.layer, self.num_layers = layer, num_layers
        self.bit_choices, self.trained_bits = bit_choices, trained_bits

    def _ask(self, msg: dict[str, Any]) -> dict[str, Any]:
        self._conn.send_bytes(encode(msg))
        reply = decode(self._conn.recv_bytes())
        if reply.get("op") == "refused":
            cls = LabelAccessError if reply.get("what") == "labels" else LookaheadAccessError
            raise cls(str(reply.get("message")))
        if reply.get("op") == "failed":
            raise ValueError(str(reply.get("message")))
        return reply

    def lookahead(self, rest_bits: Any, rows: Any = None) -> np.ndarray:
        """Logits if layers ``layer..`` ran at ``rest_bits`` (bit values); counted as decision cost."""
        msg: dict[str, Any] = {"op": "lookahead", "rest_bits": np.asarray(rest_bits, dtype=np.int64)}
        if rows is not None:
            msg["rows"] = np.asarray(rows, dtype=np.int64)
        return self._ask(msg)["logits"]

    @property
    def labels(self) -> np.ndarray:
        """True labels of the current episodes (only for agents that declare ``uses_label``)."""
        return self._ask({"op": "labels"})["labels"]


def _load(request: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The agent a load request names, and what the bench needs to know of it."""
    if request["kind"] == "class":
        # lazy: the registry imports every built-in agent; only the worker's first message needs it
        from agents.controllers.registry import load_user_agent

        agent = load_user_agent(request["spec"])
        builtin_cost = False
    else:
        # lazy: the model loader imports SB3 (about half a second), and only a model needs it
        from agents.controllers.model_agents import load_zip_agent

        spaces = (request["observation_space"], request["action_space"])
        source = request.get("source", "its card")
        agent = load_zip_agent(
            request["path"], request["algo"], request["name"], spaces, bool(request.get("trust_pickle")), source
        )
        builtin_cost = True  # SB3Agent counts its policy's layers itself
    check_agent(agent)
    meta = {
        "name": agent.name,
        "uses_label": bool(getattr(agent, "uses_label", False)),
        "uses_lookahead": bool(getattr(agent, "uses_lookahead", False)),
        "stochastic": bool(getattr(agent, "stochastic", True)),
        "decision_macs_per_step": int(getattr(agent, "decision_macs_per_step", 0) or 0),
        "decision_macs_per_episode": int(getattr(agent, "decision_macs_per_episode", 0) or 0),
        "builtin_cost": builtin_cost,
    }
    return agent, meta


def _failure(exc: BaseException, where: str) -> dict[str, Any]:
    # lazy: describe_exception lives with the registry, imported by _load already
    from agents.controllers.registry import describe_exception

    if isinstance(exc, ABNGymError):
        return {"op": "error", "where": where, "type": type(exc).__name__, "message": str(exc)}
    return {"op": "error", "where": where, "type": "", "message": describe_exception(exc)}


def serve(conn: Any, request: dict[str, Any]) -> None:
    """The worker's main loop: load the agent ``request`` names, then answer reset/act until close.

    Args:
        conn: the worker's end of a multiprocessing pipe.
        request: ``kind`` ("class" or "model"), ``spec``, and for a model ``algo`` and both spaces.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the bench's to handle: it closes the worker
    try:
        agent, meta = _load(request)
    except Exception as exc:
        conn.send_bytes(encode(_failure(exc, "load")))
        return
    conn.send_bytes(encode({"op": "ready", "meta": meta}))
    measure = not meta["builtin_cost"]
    shape = (request["num_layers"], tuple(request["bit_choices"]), tuple(request["trained_bits"]))
    while True:
        try:
            msg = decode(conn.recv_bytes())
        except EOFError:
            return
        op = msg.get("op")
        if op == "close":
            return
        try:
            if op == "sources":  # the user's files loaded so far: what a resumed row depends on
                conn.send_bytes(encode({"op": "sources", "files": user_module_files()}))
            elif op == "reset":
                agent.reset(int(msg["num_envs"]), int(msg["seed"]))
                conn.send_bytes(encode({"op": "done"}))
            elif op == "act":
                view = AgentView(conn, int(msg["layer"]), shape[0], shape[1], shape[2])
                infos = {"layer": view.layer, "action_mask": msg["action_mask"], "bit_choices": shape[1], "view": view}
                if measure:
                    raw, macs = measured_act(agent, msg["obs"], infos)
                else:
                    raw, macs = agent.act(msg["obs"], infos), 0
                actions = np.asarray(raw)
                if actions.dtype.str not in DTYPES:
                    raise TypeError(f"act() returned {type(raw).__name__} of dtype {actions.dtype}, not numbers")
                conn.send_bytes(encode({"op": "actions", "actions": actions, "macs": macs}))
        except Exception as exc:
            conn.send_bytes(encode(_failure(exc, str(op))))
