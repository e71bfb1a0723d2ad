"""Agent names accepted by ``abn-gym bench --agents``: baselines, shipped policies, trained models, user classes."""

from __future__ import annotations

import importlib
import inspect
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from abn_gym.config import make_config
from abn_gym.registration import DEFAULT_ENV_ID, env_kwargs
from abn_gym.vector import ABNVectorEnv
from agents.controllers.base import Agent, AgentFailedError, check_agent
from agents.controllers.baselines import FixedAgent, GreedyAgent, OracleAgent, RandomAgent, StaticAgent
from agents.controllers.escalation import EscalationAgent, load_policy
from agents.controllers.safe_load import card_env_allowed, parse_plain_model
from agents.controllers.static_configs import (
    DEFAULT_TARGETS,
    FRONT_TARGETS,
    POLICY_DIR,
    find_result,
    search_for_bench,
    target_name,
)
from supernets.foundation.errors import ABNGymError, CheckpointError, UnknownNameError, UsageError
from supernets.foundation.files import sha256
from supernets.registry import read_supernet_card, supernet_name

FIXED_AGENT_BITS = (2, 3, 4, 5, 6, 7, 8)
"""The bit-widths b of the ``fixed-<b>`` rows of the default leaderboard."""
SHIPPED_POLICIES = {"ppo": "zip", "escalation": "pt"}
"""Leaderboard name -> file suffix of the trained agents shipped per env as ``agents/policies/<name>-<env id>``."""


def shipped_policy(name: str, env_id: str) -> Path:
    """Where the shipped ``name`` policy of ``env_id`` lives (it may not exist)."""
    return POLICY_DIR / f"{name}-{env_id}.{SHIPPED_POLICIES[name]}"


@dataclass(frozen=True)
class BenchContext:
    """What agent factories may need to know about the benchmarked environment.

    Args:
        env_id: the benchmarked env id.
        supernet: its supernet's name.
        bit_choices: its actions' bit-widths.
        env_overrides: env arguments the bench changes from the id's registered ones (a model's card).
    """

    env_id: str
    supernet: str
    bit_choices: tuple[int, ...]
    env_overrides: tuple[tuple[str, Any], ...] = ()
    static_from: str | None = None
    """Folder of a ``static-search --out`` result to reuse
    (see :func:`agents.controllers.static_configs.find_result`)."""
    trust_pickle: bool = False
    """Load model zips through stable-baselines3, unpickling (running) what they carry (``--trust-pickle``)."""
    trust_card_env: bool = False
    """Let a model card's ``module:ID`` env import its module (``--trust-card-env``)."""


MODEL_ENV_ARGS = ("supernet", "bit_choices", "reward", "cost_coef", "gamma", "budget", "obs_mode")
"""Env arguments that make a model's env: what it sees, what it may do, how it is scored. The others
say where and how episodes run (split, sampling, device, data_dir; the bench sets them) or shape
training only (group_size). decide_at does not either: a policy trained with it repeats its decision
between its decision layers (``SB3Agent.decide_at``), which gives its own env's episodes on the plain
env (tests/agents/app/test_selection.py), so it is ranked beside every other row."""


def _env_args(env_id: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The :data:`MODEL_ENV_ARGS` of ``env_id`` with ``overrides``, defaults filled in, lists as tuples."""
    kwargs = make_config(**env_kwargs(env_id, **(overrides or {}))).kwargs()
    return {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items() if k in MODEL_ENV_ARGS}


def is_builtin_name(name: str) -> bool:
    """Whether ``name`` is, or has the form of, a built-in agent's row name."""
    return name in {"random", "greedy", "oracle", *SHIPPED_POLICIES} or name.startswith(
        ("fixed-", "static-", "greedy@", "escalation@")
    )


def is_model_path(spec: str) -> bool:
    """Whether an ``--agents`` entry names a saved model or policy file (not a built-in or a class)."""
    return spec.endswith((".pt", ".zip")) or os.sep in spec or parse_plain_model(spec) is not None


def model_file(spec: str) -> str:
    """The file an ``--agents`` model entry names: the path itself, or the PATH of ``ALGO:PATH.zip@NAME``."""
    plain = parse_plain_model(spec)
    return spec if plain is None else plain[1]


def model_env(
    spec: str | Path, trust_card_env: bool = False, user_env: str | None = None
) -> tuple[str, dict[str, Any]]:
    """The env a saved model belongs on, from its card: (env id, arguments that differ from the id's).

    A ``train`` card records the env arguments it trained with; a reward given to ``train --reward``
    and a BitOps price given to ``train --cost-coef`` are training signals only (``train`` scores the
    model on the id's reward, and so does the bench), so they are not part of the model's env.
    A card's ``module:ID`` env is refused unless ``trust_card_env`` or ``user_env`` names it too:
    reading a card never imports code.
    """
    plain = parse_plain_model(str(spec))
    if plain is not None:
        raise UsageError(
            f"agent {str(spec)!r} is a model without a card, so its env is unknown; name it with --env "
            f"(e.g. abn-gym bench --env {DEFAULT_ENV_ID} --agents {spec})"
        )
    path = Path(spec)
    if not path.is_file():
        raise UsageError(f"agent {str(spec)!r}: no such model file")
    card_path, card = _model_card(path)
    env_id = card.get("env")
    if not isinstance(env_id, str):
        raise CheckpointError(f"model card {card_path} names no env (an `env` id); it cannot be benchmarked")
    card_env_allowed(env_id, trust_card_env, user_env)
    recorded = dict(card.get("env_kwargs") or {})
    for signal in ("reward", "cost_coef"):  # `train --reward` / `--cost-coef`: how it learned, not where it runs
        if (card.get("args") or {}).get(signal) is not None:
            recorded.pop(signal, None)
    registered = _env_args(env_id)
    try:
        mine = _env_args(env_id, {k: v for k, v in recorded.items() if k in MODEL_ENV_ARGS})
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"model card {card_path} records env arguments that are not valid: {exc}") from None
    return env_id, {k: v for k, v in mine.items() if v != registered[k]}


def _describe_env(env_id: str, overrides: dict[str, Any]) -> str:
    extra = ", ".join(f"{k}={v!r}" for k, v in sorted(overrides.items()))
    return f"{env_id} ({extra})" if extra else env_id


def check_model_env(spec: str | Path, ctx: BenchContext) -> None:
    """Refuse a saved model on another env than its card's, naming both envs and what differs.

    A model without a card (``ALGO:PATH.zip``) has only its spaces to check: its loader does that.
    """
    if parse_plain_model(str(spec)) is not None:
        return
    env_id, overrides = model_env(spec, ctx.trust_card_env, ctx.env_id)
    mine = _env_args(env_id, overrides)
    bench = _env_args(ctx.env_id, dict(ctx.env_overrides))
    differ = [k for k in MODEL_ENV_ARGS if mine[k] != bench[k]]
    if differ:
        detail = "; ".join(f"{k} {mine[k]!r} there, {bench[k]!r} here" for k in differ)
        raise UsageError(
            f"{spec} belongs on {_describe_env(env_id, overrides)}, its card's env, but the bench runs "
            f"{_describe_env(ctx.env_id, dict(ctx.env_overrides))} ({detail}); leave out --env to benchmark it "
            "on its own env"
        )


def default_agent_names(env_id: str = DEFAULT_ENV_ID) -> list[str]:
    """The default leaderboard of ``env_id``: every baseline plus the policies shipped for it."""
    names = [
        "random",
        *(f"fixed-{b}" for b in FIXED_AGENT_BITS),
        *(f"static-{target_name(b)}" for b in DEFAULT_TARGETS),
        "greedy",
        "oracle",
    ]
    names += [n for n in SHIPPED_POLICIES if shipped_policy(n, env_id).is_file()]
    return names


AGENT_FORMS = {
    "random": "a uniformly random bit-width per layer (seeded)",
    "fixed-<b>": "every layer at b bits, e.g. fixed-4",
    "static-<b>": "one layer-wise configuration for all images, found on val, as cheap as fixed-<b> "
    f"(b in {', '.join(map(target_name, FRONT_TARGETS))}; 3 to 7 are listed by default)",
    "greedy": "look-ahead: the lowest bit-width that keeps the all-8 look-ahead's class (tau 0.5)",
    "greedy@<tau>": "greedy with minimum softmax confidence tau in [0, 1] for the kept class, e.g. greedy@0.9",
    "oracle": "uses labels: an upper bound, marked on the leaderboard",
    "ppo": "the PPO policy shipped for the env (agents/policies/ppo-<env id>.zip)",
    "escalation": "the escalation controller shipped for the env (agents/policies/escalation-<env id>.pt)",
    "escalation@<c>": "the same at another operating point: BitOps price c instead of its cost_coef",
    "PATH.pt": "an escalation policy saved by `abn-gym train-escalation`, e.g. runs/escalation/policy.pt",
    "PATH.zip": "an SB3 model saved by `abn-gym train`, e.g. runs/ppo/model.zip; its card.json names the algorithm",
    "ALGO:PATH.zip@NAME": "an SB3 model without a card (plain `model.save`), e.g. ppo:mine.zip@my-ppo; needs --env",
    "module:Class": "your own agent class (no arguments), e.g. myagent:MyAgent; the current folder is searched too",
}
"""Every form ``--agents`` accepts, with what it means (``abn-gym bench --list-agents``)."""


def describe_agent_names() -> str:
    """The accepted agent forms, one per line, with what each means."""
    width = max(map(len, AGENT_FORMS))
    return "\n".join(f"{form:<{width}}  {meaning}" for form, meaning in AGENT_FORMS.items())


def known_agent_names() -> list[str]:
    """Every built-in name (user classes are given as ``module:Class``)."""
    return [
        "random",
        *(f"fixed-{b}" for b in FIXED_AGENT_BITS),
        *(f"static-{target_name(b)}" for b in FRONT_TARGETS),
        "greedy",
        "greedy@<tau>",
        "oracle",
        *SHIPPED_POLICIES,
        "escalation@<c>",
    ]


_STATIC_CACHE: dict[tuple, dict] = {}


def static_configs(ctx: BenchContext, progress: bool = True) -> dict:
    """Static search result for the env's supernet and action set: a saved one if it matches, else searched.

    A search run here says so on stderr, and its seconds are counted (see :func:`static_search_seconds`).
    """
    sha = read_supernet_card(ctx.supernet)["sha256"]
    key = (ctx.supernet, sha, ctx.bit_choices, ctx.static_from)
    if key not in _STATIC_CACHE:
        found = find_result(ctx.supernet, sha, ctx.bit_choices, ctx.static_from)
        _STATIC_CACHE[key] = found if found is not None else search_for_bench(ctx.supernet, ctx.bit_choices, progress)
    return _STATIC_CACHE[key]


def static_search_seconds(ctx: BenchContext, agent_name: str, done: dict) -> float:
    """Seconds bench spent searching the static front, charged to the first static-<b> row (else 0)."""
    if not agent_name.startswith("static-") or any(n.startswith("static-") for n in done):
        return 0.0
    result = _STATIC_CACHE.get(
        (ctx.supernet, read_supernet_card(ctx.supernet)["sha256"], ctx.bit_choices, ctx.static_from)
    )
    return float(result.get("search_seconds", 0.0)) if result else 0.0


def verify_policy(path: Path, ctx: BenchContext) -> dict:
    """Check a shipped policy against its model card: checksum, and the supernet it was trained on."""
    card_path = path.with_suffix(".json")
    if not card_path.is_file():
        raise CheckpointError(f"policy {path} has no model card {card_path.name}; refusing to load it")
    card = json.loads(card_path.read_text())
    if sha256(path) != card.get("sha256"):
        raise CheckpointError(f"policy {path} does not match the sha256 in {card_path.name}: corrupt or replaced")
    trained_on = card.get("supernet_sha256")
    current = read_supernet_card(ctx.supernet)["sha256"]
    if trained_on is not None and trained_on != current:
        raise CheckpointError(
            f"policy {path} was trained on another version of {ctx.supernet}; retrain it with "
            f"`{card.get('command') or 'abn-gym train'}`"
        )
    return card


def _import_agent_module(module_name: str, spec: str):
    """Import ``module_name``, looking in the current folder too (as ``python -m`` would)."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # A console script does not put the current folder on sys.path; a user's myagent.py lives there.
        missing_top = exc.name is not None and module_name.split(".")[0] == exc.name.split(".")[0]
        cwd = os.getcwd()
        if missing_top and cwd not in {os.path.abspath(p) for p in sys.path}:
            sys.path.append(cwd)
            return _import_agent_module(module_name, spec)
        raise UsageError(
            f"cannot import agent module {module_name!r} from {spec!r}: {exc} (looked in the current folder "
            f"{cwd} and on the Python path)"
        ) from None
    except ImportError as exc:
        raise UsageError(f"cannot import agent module {module_name!r} from {spec!r}: {exc}") from None


def load_user_agent(spec: str) -> Agent:
    """Instantiate ``package.module:ClassName`` (no arguments) and check it follows the protocol.

    The module is looked up on the Python path, then in the current folder.
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UsageError(f"agent {spec!r}: expected module:Class, e.g. myagent:MyAgent")
    module = _import_agent_module(module_name, spec)
    if not hasattr(module, attr):
        raise UsageError(f"module {module_name!r} has no attribute {attr!r} (from agent spec {spec!r})")
    obj = getattr(module, attr)
    if isinstance(obj, type):
        try:
            inspect.signature(obj).bind()
        except TypeError as exc:
            raise UsageError(
                f"agent {spec!r}: {attr}() needs arguments ({exc}); the bench creates agents without arguments: "
                f"give every parameter of {attr}.__init__ a default, or name an instance (module:instance)"
            ) from None
        except ValueError:
            pass  # no signature to read (a class implemented in C): let the call say what is wrong
        try:
            obj = obj()
        except Exception as exc:
            raise AgentFailedError(f"agent {spec!r}: {attr}() raised {describe_exception(exc)}") from None
    return check_agent(obj)


def describe_exception(exc: BaseException) -> str:
    """``Type: message (at file:line)``, where the line is the innermost frame: enough to find the fault."""
    where = ""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is not None:
        where = f" (at {tb.tb_frame.f_code.co_filename}:{tb.tb_lineno})"
    return f"{type(exc).__name__}: {exc}{where}"


def _model_card(path: Path) -> tuple[Path, dict]:
    """The model card of a saved SB3 model: ``<stem>.json`` (shipped form) or ``card.json`` (a train run)."""
    from agents.controllers.sb3_agent import find_card  # lazy: SB3 costs about half a second at import

    found = find_card(path)
    if found is not None:
        return found
    raise CheckpointError(
        f"{path} has no model card ({path.with_suffix('.json').name} or card.json beside it), so its algorithm "
        "is unknown; models saved by `abn-gym train` have one. For a model saved by plain SB3, give its algorithm, "
        f"a row name and the env: --agents ppo:{path}@my-ppo --env ENV_ID (docs/agents.md)"
    )


def env_spaces(ctx: BenchContext) -> tuple[Any, Any]:
    """The bench env's single observation and action spaces (from the architecture: no supernet is loaded)."""
    probe = ABNVectorEnv(1, **env_kwargs(ctx.env_id, **dict(ctx.env_overrides)))
    return probe.single_observation_space, probe.single_action_space


def check_plain_model(spec: str) -> tuple[str, str, str]:
    """A model without a card, ``ALGO:PATH.zip[@NAME]``, checked: its algorithm, file and row name."""
    parsed = parse_plain_model(spec)
    assert parsed is not None  # callers route only these here
    algo, path, name = parsed
    if is_builtin_name(name):
        raise UsageError(
            f"agent {spec!r}: the row name {name!r} is a built-in agent's; one name, one row: choose another after "
            f"the @, e.g. --agents {algo}:{path}@my-{algo}"
        )
    if not Path(path).is_file():
        raise UsageError(f"agent {spec!r}: no such model file {path}")
    if Path(path).with_suffix(".json").is_file() or (Path(path).parent / "card.json").is_file():
        raise UsageError(
            f"agent {spec!r}: {path} has a model card, which names its algorithm and env; list it as {path}"
        )
    return algo, path, name


def load_plain_model(spec: str, ctx: BenchContext) -> Any:
    """A model without a card, ``ALGO:PATH.zip[@NAME]``, on the bench's env (its spaces checked)."""
    # lazy: SB3 costs about half a second at import, and only a model needs it
    from agents.controllers.sb3_agent import SB3Agent

    algo, path, name = check_plain_model(spec)
    obs, act = env_spaces(ctx)
    return SB3Agent.load(path, algo, name, observation_space=obs, action_space=act, trust_pickle=ctx.trust_pickle)


def check_model_card(path: Path, ctx: BenchContext) -> tuple[Path, dict]:
    """A saved model's card, checked against the file (sha256), the bench's env and its supernet; reads no model."""
    if not path.is_file():
        raise UsageError(f"agent {str(path)!r}: no such model file")
    card_path, card = _model_card(path)
    check_model_env(path, ctx)
    if card.get("sha256") is not None and sha256(path) != card["sha256"]:
        raise CheckpointError(f"{path} does not match the sha256 in {card_path}: it changed after the card was written")
    trained_on = card.get("supernet_sha256")
    if trained_on is not None and trained_on != read_supernet_card(ctx.supernet)["sha256"]:
        raise CheckpointError(
            f"{path} was trained on another supernet than {ctx.env_id}'s {ctx.supernet}; benchmark it on the env it "
            f"was trained on ({card.get('env')}) or retrain it"
        )
    return card_path, card


def load_model_agent(path: str | Path, ctx: BenchContext, name: str | None = None) -> Any:
    """A trained SB3 model from its path, with the algorithm read from its model card.

    The card's checksum and supernet must match, and the model's actions must be the env's.
    The leaderboard name is the path as given, unless ``name`` is.
    """
    # lazy: SB3 costs about half a second at import, and only a model needs it
    from agents.controllers.sb3_agent import SB3Agent

    path = Path(path)
    card_path, card = check_model_card(path, ctx)
    algo = card.get("algo", "ppo")
    obs, act = env_spaces(ctx)
    try:
        agent = SB3Agent.load(
            path, algo, name or str(path), observation_space=obs, action_space=act, trust_pickle=ctx.trust_pickle
        )
    except ABNGymError:
        raise  # already says what is wrong and what to do (a refusal naming --trust-pickle, say)
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        # A zip of another algorithm fails deep inside SB3 with whatever its loader trips on.
        raise CheckpointError(
            f"{path} does not load as {algo!r}, the algo its card {card_path} names ({type(exc).__name__}: {exc}); "
            "the card belongs to another model: retrain, or correct the card's algo"
        ) from None
    n_actions = getattr(agent.model.action_space, "n", None)
    if n_actions != len(ctx.bit_choices):
        raise UsageError(
            f"{path} chooses among {n_actions} actions, but {ctx.env_id} has bit_choices={ctx.bit_choices}; "
            f"benchmark it on the env it was trained on ({card.get('env')})"
        )
    return agent


def load_escalation(path: str | Path, ctx: BenchContext) -> dict:
    """An escalation policy for ``ctx``'s env: checksum, supernet and actions checked."""
    policy = load_policy(path)
    if policy.get("supernet") != supernet_name(ctx.supernet):
        raise UsageError(f"{path} controls {policy.get('supernet')}, not {ctx.env_id}'s {ctx.supernet}")
    missing = {policy["low"], policy["high"]} - set(ctx.bit_choices)
    if missing:
        raise UsageError(f"{path} uses {sorted(missing)} bits, not actions of {ctx.env_id} ({ctx.bit_choices})")
    return policy


def _price(name: str) -> float | None:
    """The BitOps price c of ``escalation@<c>`` (None without one)."""
    if "@" not in name:
        return None
    text = name.split("@", 1)[1]
    try:
        cost_coef = float(text)
    except ValueError:
        cost_coef = float("nan")
    if not (math.isfinite(cost_coef) and cost_coef >= 0):
        raise UsageError(
            f"agent {name!r}: escalation@<c> takes c, the BitOps price (a finite number >= 0); got {text!r}"
        )
    return cost_coef


def _escalation(name: str, policy: dict, label: str) -> Any:
    return EscalationAgent(policy, label, _price(name))


def _greedy(name: str) -> GreedyAgent:
    if name == "greedy":
        return GreedyAgent()
    text = name.split("@", 1)[1]
    try:
        tau = float(text)
    except ValueError:
        tau = float("nan")
    if not 0.0 <= tau <= 1.0:
        raise UsageError(
            f"agent {name!r}: greedy@<tau> takes tau, the minimum softmax confidence of the kept class, "
            f"a number in [0, 1] (e.g. greedy@0.9); got {text!r}"
        )
    agent = GreedyAgent(tau)
    agent.name = name
    return agent


def make_agent(name: str, ctx: BenchContext, progress: bool = True) -> Any:
    """An agent from its leaderboard name, a saved model's path, or a ``module:Class`` spec."""
    if name.endswith(".pt"):
        check_model_env(name, ctx)  # a shipped one, named escalation, is looked up by the env's id instead
        return _escalation(name, load_escalation(name, ctx), name)
    if parse_plain_model(name) is not None:
        return load_plain_model(name, ctx)
    if name.endswith(".zip") or os.sep in name:
        return load_model_agent(name, ctx)
    if ":" in name:
        return load_user_agent(name)
    if name == "random":
        return RandomAgent()
    if name.startswith("fixed-") and name[6:].isdigit():
        bits = int(name[6:])
        if bits not in ctx.bit_choices:
            raise UsageError(f"{name}: {bits} bits is not an action of {ctx.env_id} (bit_choices={ctx.bit_choices})")
        return FixedAgent(bits)
    if name.startswith("static-") and name[7:] in {target_name(b) for b in FRONT_TARGETS}:
        configs = static_configs(ctx, progress)["configs"]
        if name[7:] not in configs:
            raise UsageError(
                f"{name}: the saved static search for {ctx.supernet} predates target {name[7:]}; continue it with "
                f"`abn-gym static-search --supernet {ctx.supernet} --resume PATH_OF_THAT_RESULT` (same --limit)"
            )
        return StaticAgent(configs[name[7:]], name)
    if name == "greedy" or name.startswith("greedy@"):
        return _greedy(name)
    if name == "oracle":
        return OracleAgent()
    if name == "escalation" or name.startswith("escalation@"):
        _price(name)
        path = shipped_policy("escalation", ctx.env_id)
        if not path.is_file():
            raise UnknownNameError(
                f"no escalation controller is shipped for {ctx.env_id}; train one with "
                "`abn-gym train-escalation` and give its policy.pt path"
            )
        return _escalation(name, load_escalation(path, ctx), name)
    if name in SHIPPED_POLICIES:
        # lazy: SB3 costs about half a second at import, and only a model needs it
        from agents.controllers.sb3_agent import SB3Agent

        path = shipped_policy(name, ctx.env_id)
        if not path.is_file():
            raise UnknownNameError(
                f"no {name} policy is shipped for {ctx.env_id} ({path.name}); train one with "
                "`abn-gym train` and give its model.zip path"
            )
        card = verify_policy(path, ctx)
        obs, act = env_spaces(ctx)
        return SB3Agent.load(
            path, card.get("algo", name), name, observation_space=obs, action_space=act, trust_pickle=ctx.trust_pickle
        )
    raise UnknownNameError(
        f"unknown agent {name!r}; known agents: {', '.join(known_agent_names())}, a trained model's path "
        "(runs/ppo/model.zip), or a class given as module:ClassName (`abn-gym bench --list-agents` explains each)"
    )
