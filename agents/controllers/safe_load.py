"""Load an SB3 model zip without unpickling anything: the one loader of ``bench``, ``SB3Agent.load`` and the zoo.

An SB3 zip holds ``data`` (JSON, in which SB3 stores Python objects as cloudpickled ``:serialized:``
entries), ``policy.pth`` (the weights) and the optimizer's state. ``BaseAlgorithm.load`` unpickles
every ``:serialized:`` entry, so a zip someone sent can run any code on load; ``custom_objects``
only skips the keys it names (stable-baselines3 2.9, ``save_util.json_to_data``). This loader reads
only the JSON-safe entries of ``data`` and the weights (``torch.load(weights_only=True)``) and
builds the model itself:

- the spaces come from the env (the caller passes them), checked against the zip's description;
- the algorithm from the model card, or the command line for a plain SB3 zip;
- the policy class and its keyword arguments from an allow-list (:data:`POLICY_KWARGS`): the card's
  ``policy`` entry (``abn-gym train`` writes it, :func:`policy_spec`), else the zip's JSON-safe
  ``policy_kwargs``, with the hidden sizes read from the weights' shapes when it gives none.

The optimizer is not loaded: evaluation does not need it. A zip this cannot load is refused with
:class:`UnsafeModelError`, which names the opt-in ``--trust-pickle`` (``trust_pickle=True``).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from agents.controllers.algorithms import ALGOS, algo_class
from supernets.foundation.errors import CheckpointError

TRUST_HINT = (
    "loading it through stable-baselines3 would unpickle the zip's objects, which runs any code they carry: "
    "only if you trust whoever sent it, pass --trust-pickle (bench) or trust_pickle=True (SB3Agent.load)"
)
"""How every refusal of :class:`UnsafeModelError` ends."""

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,
}
"""Activation functions a policy may use, by the name cards and ``--agents`` specs give them."""
_BY_CLASS = {cls.__name__: name for name, cls in ACTIVATIONS.items()}

POLICY_KWARGS = {
    "net_arch": "hidden layer sizes: a list of ints, or {'pi': [...], 'vf': [...]} / {'qf': [...]}",
    "activation_fn": f"one of {sorted(ACTIVATIONS)}",
    "normalize_images": "bool",
    "share_features_extractor": "bool",
    "ortho_init": "bool (initialisation only)",
    "lstm_hidden_size": "int (recurrent-ppo)",
    "n_lstm_layers": "int (recurrent-ppo)",
    "shared_lstm": "bool (recurrent-ppo)",
    "enable_critic_lstm": "bool (recurrent-ppo)",
    "n_quantiles": "int (qrdqn)",
}
"""The policy keyword arguments a model may set, with the values each takes. Anything else is refused."""
TRAINING_ONLY = ("optimizer_class", "optimizer_kwargs")
"""Policy keyword arguments that shape training only: dropped, the optimizer is not loaded."""
_DEFAULT_EXTRACTORS = ("FlattenExtractor", "CombinedExtractor")

PLAIN_MODEL = re.compile(r"(?P<algo>[a-z0-9-]+):(?P<path>.+\.zip)(?:@(?P<name>[^@]+))?")
"""``ALGO:PATH.zip[@NAME]``: an SB3 zip without a card (saved by plain SB3), its algorithm and row name given."""


def parse_plain_model(spec: str) -> tuple[str, str, str] | None:
    """(algo, path, row name) of a ``ALGO:PATH.zip[@NAME]`` entry (the name defaults to the path), else None."""
    found = PLAIN_MODEL.fullmatch(spec)
    if found is None or found["algo"] not in ALGOS:
        return None
    return found["algo"], found["path"], found["name"] or found["path"]


class UnsafeModelError(CheckpointError):
    """A model zip that cannot be loaded without unpickling (or running) code from it."""


def card_env_allowed(env_id: str, trust_card_env: bool, user_env: str | None = None) -> None:
    """Refuse a card's ``module:ID`` env (it would import ``module``) unless trusted or the user named it too.

    Args:
        env_id: the env the card names.
        trust_card_env: the user's opt-in (``--trust-card-env``).
        user_env: the env the user named on the command line (``--env``): importing it is the user's choice.
    """
    module = env_id.split(":", 1)[0] if ":" in env_id else ""
    if module and module != "abn_gym" and not trust_card_env and env_id != user_env:
        raise UnsafeModelError(
            f"a model card names the env {env_id!r}, which would import the module {module!r}: a card never makes "
            f"abn-gym import code. Register the env yourself and give --env {env_id}, or, only if you trust the "
            "card's author, pass --trust-card-env (trust_card_env=True)"
        )


@dataclass
class PolicySpec:
    """The policy of a model, as a card records it: an SB3 alias and allow-listed keyword arguments.

    Args:
        cls: the algorithm's policy alias, e.g. ``MlpPolicy``.
        kwargs: keyword arguments from :data:`POLICY_KWARGS`; ``activation_fn`` by name.
    """

    cls: str = "MlpPolicy"
    kwargs: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The card's ``policy`` entry."""
        return {"class": self.cls, "kwargs": self.kwargs}


def policy_spec(model: Any, algo: str) -> dict[str, Any] | None:
    """The card's ``policy`` entry for a live model of ``algo``: what :func:`load_model` rebuilds it from.

    None when the policy is not one the allow-list describes (a custom class or argument): such a
    model loads only with ``--trust-pickle``.
    """
    aliases = _aliases(algo)
    alias = next((a for a, c in aliases.items() if c is type(model.policy)), None)
    kwargs: dict[str, Any] = {}
    for key, value in (model.policy_kwargs or {}).items():
        if key in TRAINING_ONLY:
            continue
        if key == "activation_fn":
            value = _BY_CLASS.get(getattr(value, "__name__", ""))
        if key not in POLICY_KWARGS or value is None:
            return None
        kwargs[key] = value
    if alias is None:
        return None
    try:
        return PolicySpec(alias, json.loads(json.dumps(kwargs))).to_json()
    except TypeError:  # a value JSON cannot hold
        return None


def _aliases(algo: str) -> dict[str, type]:
    """The policy classes ``algo`` accepts, by alias (``MlpPolicy``...): SB3's own, no others."""
    cls: Any = algo_class(algo)
    return dict(cls.policy_aliases)


def read_zip(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The ``data`` JSON of an SB3 zip (nothing decoded from its ``:serialized:`` entries) and its policy weights."""
    try:
        with zipfile.ZipFile(path) as zf:
            data = json.loads(zf.read("data"))
            weights = zf.read("policy.pth")
    except (OSError, KeyError, zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not a model saved by stable-baselines3: {exc}") from None
    try:
        state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses any pickled object: that is the point
        raise UnsafeModelError(
            f"{path}: its policy.pth is not plain weights ({type(exc).__name__}); {TRUST_HINT}"
        ) from None
    if not isinstance(data, dict) or not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a model saved by stable-baselines3 (no data dict or weights dict)")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise UnsafeModelError(f"{path}: its policy.pth holds more than named tensors; {TRUST_HINT}")
    return data, state


def _class_name(text: Any) -> str:
    """``Tanh`` from SB3's JSON-safe text of a class, ``"<class 'torch.nn.modules.activation.Tanh'>"``."""
    found = re.fullmatch(r"<class '(?:[\w.]+\.)?(\w+)'>", str(text))
    return found.group(1) if found else ""


def _zip_policy(path: Path, data: dict[str, Any], algo: str) -> PolicySpec:
    """The policy a plain zip describes in its JSON-safe entries (its class, its kwargs as JSON or text)."""
    entry = data.get("policy_class") or {}
    init = re.match(r"<function (\S+)\.__init__", str(entry.get("__init__", "")))
    qualname, module = (init.group(1) if init else ""), str(entry.get("__module__", ""))
    aliases = _aliases(algo)
    alias = next((a for a, c in aliases.items() if (c.__module__, c.__qualname__) == (module, qualname)), None)
    if alias is None:
        raise UnsafeModelError(
            f"{path} uses the policy class {module}.{qualname}, which is none of {algo}'s {sorted(aliases)}; "
            + TRUST_HINT
        )
    raw = data.get("policy_kwargs") or {}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key.startswith((":", "__")) or key in TRAINING_ONLY:
            continue  # SB3's own bookkeeping of a pickled dict, or the optimizer
        if key in ("features_extractor_class",) and _class_name(value) in _DEFAULT_EXTRACTORS:
            continue
        if key == "activation_fn":
            name = _BY_CLASS.get(_class_name(value)) if isinstance(value, str) else None
            if name is None:
                raise UnsafeModelError(f"{path}: activation {value!r} is none of {sorted(ACTIVATIONS)}; {TRUST_HINT}")
            value = name
        elif key not in POLICY_KWARGS:
            raise UnsafeModelError(
                f"{path} sets the policy argument {key!r}, which is not on the allow-list {sorted(POLICY_KWARGS)}; "
                + TRUST_HINT
            )
        kwargs[key] = value
    return PolicySpec(alias, kwargs)


def _card_policy(path: Path, entry: Any, algo: str) -> PolicySpec:
    if not isinstance(entry, dict) or not isinstance(entry.get("kwargs", {}), dict):
        raise CheckpointError(f"the card of {path}: `policy` must be {{'class': ..., 'kwargs': {{...}}}}")
    spec = PolicySpec(str(entry.get("class", "")), dict(entry.get("kwargs") or {}))
    aliases = _aliases(algo)
    if spec.cls not in aliases:
        raise CheckpointError(f"the card of {path} names the policy {spec.cls!r}; {algo} has {sorted(aliases)}")
    unknown = sorted(set(spec.kwargs) - set(POLICY_KWARGS))
    if unknown:
        raise UnsafeModelError(
            f"the card of {path} sets the policy arguments {unknown}, which are not on the allow-list "
            f"{sorted(POLICY_KWARGS)}; " + TRUST_HINT
        )
    return spec


def _layers(state: dict[str, torch.Tensor], prefix: str) -> list[int]:
    """Output sizes of the Linear layers ``prefix.<i>.weight``, in order."""
    pattern = re.compile(rf"{prefix}\.(\d+)\.weight")
    found = {int(m.group(1)): v.shape[0] for k, v in state.items() if (m := pattern.fullmatch(k))}
    return [int(found[i]) for i in sorted(found)]


def _from_weights(state: dict[str, torch.Tensor], n_actions: int) -> dict[str, Any]:
    """The architecture arguments the weights' shapes imply (hidden sizes; LSTM size; quantiles)."""
    derived: dict[str, Any] = {}
    if "mlp_extractor.policy_net.0.weight" in state or "action_net.weight" in state:
        derived["net_arch"] = {
            "pi": _layers(state, r"mlp_extractor\.policy_net"),
            "vf": _layers(state, r"mlp_extractor\.value_net"),
        }
    for prefix in ("q_net.q_net", "quantile_net.quantile_net"):
        sizes = _layers(state, re.escape(prefix))
        if sizes:
            derived["net_arch"] = sizes[:-1]
            if prefix.startswith("quantile") and n_actions:
                derived["n_quantiles"] = sizes[-1] // n_actions
    if "lstm_actor.weight_hh_l0" in state:
        derived["lstm_hidden_size"] = int(state["lstm_actor.weight_hh_l0"].shape[1])
        derived["n_lstm_layers"] = sum(1 for k in state if re.fullmatch(r"lstm_actor\.weight_hh_l\d+", k))
        derived["enable_critic_lstm"] = "lstm_critic.weight_hh_l0" in state
        derived["shared_lstm"] = not derived["enable_critic_lstm"] and "critic.weight" not in state
    return derived


def spaces_of(data: dict[str, Any]) -> tuple[spaces.Box | None, spaces.Discrete | None]:
    """The observation and action spaces a zip describes in its JSON-safe entries (None where it cannot tell).

    Only the shapes and the number of actions: bounds are not read (an MLP policy does not use them).
    """
    obs_entry, act_entry = data.get("observation_space") or {}, data.get("action_space") or {}
    obs = act = None
    if _class_name(obs_entry.get(":type:")) == "Box" and isinstance(obs_entry.get("_shape"), list):
        obs = spaces.Box(-np.inf, np.inf, tuple(int(n) for n in obs_entry["_shape"]), np.dtype(obs_entry["dtype"]))
    if _class_name(act_entry.get(":type:")) == "Discrete" and str(act_entry.get("n", "")).isdigit():
        act = spaces.Discrete(int(act_entry["n"]), start=int(act_entry.get("start") or 0))
    return obs, act


def check_spaces(path: Path, data: dict[str, Any], obs: spaces.Space, act: spaces.Space) -> None:
    """Refuse a model whose recorded spaces are not the env's (different shapes or numbers of actions)."""
    mine_obs, mine_act = spaces_of(data)
    if mine_obs is not None and getattr(obs, "shape", None) != mine_obs.shape:
        raise CheckpointError(
            f"{path} observes arrays of shape {mine_obs.shape}, but the env gives {getattr(obs, 'shape', obs)}: "
            "it was trained on another env; benchmark it on that env (--env)"
        )
    if mine_act is not None and getattr(act, "n", None) != mine_act.n:
        raise CheckpointError(
            f"{path} chooses among {mine_act.n} actions, but the env has {getattr(act, 'n', act)}: it was "
            "trained on another env; benchmark it on that env (--env)"
        )


def load_model(
    path: str | Path,
    algo: str,
    observation_space: spaces.Space,
    action_space: spaces.Space,
    policy: dict[str, Any] | None = None,
    activation: str | None = None,
) -> Any:
    """An SB3 model of ``algo`` rebuilt from the zip ``path``'s weights, unpickling nothing.

    Args:
        path: the model zip.
        algo: the ``--algo`` name that trained it.
        observation_space: the env's (single) observation space.
        action_space: the env's (single) action space.
        policy: the card's ``policy`` entry (:func:`policy_spec`); None reads the zip's JSON-safe entries.
        activation: activation name overriding the recorded one (default: recorded, else the algorithm's).
    """
    path = Path(path)
    data, state = read_zip(path)
    check_spaces(path, data, observation_space, action_space)
    spec = _zip_policy(path, data, algo) if policy is None else _card_policy(path, policy, algo)
    if activation is not None:
        if activation not in ACTIVATIONS:
            raise CheckpointError(f"activation {activation!r}: choose one of {sorted(ACTIVATIONS)}")
        spec.kwargs["activation_fn"] = activation
    kwargs = {**_from_weights(state, int(getattr(action_space, "n", 0))), **spec.kwargs}
    if "activation_fn" in kwargs:
        kwargs["activation_fn"] = ACTIVATIONS[kwargs["activation_fn"]]
    cls: Any = algo_class(algo)
    # Attributes only (no env, no networks): the policy is built below from the allow-listed arguments.
    model = cls(spec.cls, None, _init_setup_model=False)
    model.observation_space, model.action_space, model.n_envs = observation_space, action_space, 1
    try:
        net = cls.policy_aliases[spec.cls](observation_space, action_space, lambda _: 0.0, **kwargs)
        net.load_state_dict(state, strict=True)
    except (TypeError, ValueError, RuntimeError, KeyError) as exc:
        raise CheckpointError(
            f"{path} does not load as a {algo} {spec.cls} with {sorted(kwargs)} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0]}); check the algorithm and the env, or give "
            "the policy's activation if it is not the algorithm's default"
        ) from None
    net.set_training_mode(False)
    model.policy = net
    if hasattr(model, "_create_aliases"):
        model._create_aliases()  # DQN / QR-DQN keep q_net aliases on the model
    return model
