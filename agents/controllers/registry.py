"""Agent names accepted by ``abn-gym bench --agents``: baselines, shipped policies, trained models, user classes."""

from __future__ import annotations

import importlib
import inspect
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from abn_gym.registration import DEFAULT_ENV_ID
from agents.controllers.base import Agent, AgentFailedError, check_agent
from agents.controllers.baselines import FixedAgent, GreedyAgent, OracleAgent, RandomAgent, StaticAgent
from agents.controllers.conditioned import ENVELOPE_KIND, EnvelopeSweep, read_card
from agents.controllers.escalation import EscalationAgent, load_policy
from agents.controllers.model_agents import (
    SHIPPED_POLICIES,
    BenchContext,
    check_model_env,
    env_spaces,
    load_model_agent,
    load_plain_model,
)
from agents.controllers.safe_load import parse_plain_model
from agents.controllers.static_configs import (
    DEFAULT_TARGETS,
    FRONT_TARGETS,
    POLICY_DIR,
    find_result,
    search_for_bench,
    target_name,
)
from agents.controllers.sweepables import BudgetSweep, EscalationSweep
from supernets.foundation.errors import CheckpointError, UnknownNameError, UsageError
from supernets.foundation.files import sha256
from supernets.registry import read_supernet_card, supernet_name

SWEEPABLE_POLICIES = {"ppo-budget": "zip", "envelope": "pt", "escalation": "pt"}
"""Curve name -> file suffix of the conditioned policies shipped per env as ``agents/policies/<name>-<env id>``
(``<name>@sweep``; see :mod:`agents.controllers.conditioned`)."""

FIXED_AGENT_BITS = (2, 3, 4, 5, 6, 7, 8)
"""The bit-widths b of the ``fixed-<b>`` rows of the default leaderboard."""


def shipped_policy(name: str, env_id: str) -> Path:
    """Where the shipped ``name`` policy of ``env_id`` lives (it may not exist)."""
    return POLICY_DIR / f"{name}-{env_id}.{SHIPPED_POLICIES[name]}"


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
    "<curve>@sweep": f"one conditioned policy as a curve of K points (curves: {', '.join(SWEEPABLE_POLICIES)})",
    "PATH.pt": "an escalation policy saved by `abn-gym train-escalation`, e.g. runs/escalation/policy.pt",
    "PATH.zip": "an SB3 model saved by `abn-gym train`, e.g. runs/ppo/model.zip; its card.json names the algorithm",
    "ALGO:PATH.zip@NAME": "an SB3 model without a card (plain `model.save`), e.g. ppo:mine.zip@my-ppo; needs --env",
    "module:Class": "your own agent class (no arguments), e.g. myagent:MyAgent; the current folder is searched too",
    "escalation@sweep": "a curve: the escalation controller at K prices (also PATH.pt@sweep), beside the table",
    "PATH.zip@sweep": "a curve: a model trained on a Budget id at K budgets, beside the table",
    "module:Class@sweep": "a curve: your SweepableAgent (agents.controllers.sweeps) at K knob values; --isolation none",
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
        *(f"{n}@sweep" for n in SWEEPABLE_POLICIES),
    ]


_STATIC_CACHE: dict[tuple, dict] = {}


def default_static_rows(ctx: BenchContext, progress: bool = True) -> list[str]:
    """The ``static-<b>`` rows of :data:`DEFAULT_TARGETS` the static search found a configuration for.

    A target the search left without a row (its ``unmet``: nothing undominated within that cost) is
    left out, so every caller that runs the default static rows runs the same ones.
    """
    unmet = static_configs(ctx, progress).get("unmet", {})
    return [f"static-{target_name(b)}" for b in DEFAULT_TARGETS if target_name(b) not in unmet]


def static_configs(ctx: BenchContext, progress: bool = True) -> dict:
    """Static search result for the env's supernet and action set: a saved one if it matches, else searched.

    A search run here says so on stderr, and its seconds are counted (see :func:`static_search_seconds`).
    """
    sha = read_supernet_card(ctx.supernet)["sha256"]
    key = (ctx.supernet, sha, ctx.bit_choices, ctx.static_from, ctx.cost_model)
    if key not in _STATIC_CACHE:
        found = find_result(ctx.supernet, sha, ctx.bit_choices, ctx.static_from, ctx.cost_model)
        _STATIC_CACHE[key] = (
            found if found is not None else search_for_bench(ctx.supernet, ctx.bit_choices, progress, ctx.cost_model)
        )
    return _STATIC_CACHE[key]


def static_search_seconds(ctx: BenchContext, agent_name: str, done: dict) -> float:
    """Seconds bench spent searching the static front, charged to the first static-<b> row (else 0)."""
    if not agent_name.startswith("static-") or any(n.startswith("static-") for n in done):
        return 0.0
    result = _STATIC_CACHE.get(
        (ctx.supernet, read_supernet_card(ctx.supernet)["sha256"], ctx.bit_choices, ctx.static_from, ctx.cost_model)
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
        result = static_configs(ctx, progress)
        configs, unmet = result["configs"], result.get("unmet", {})
        if name[7:] in unmet:
            raise UsageError(
                f"{name}: the static search for {ctx.supernet} has no row at target {name[7:]}: {unmet[name[7:]]}; "
                f"its rows are {', '.join(f'static-{b}' for b in configs) or 'none'}"
            )
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


def make_sweepable(name: str, ctx: BenchContext) -> Any:
    """A :class:`~agents.controllers.sweeps.SweepableAgent` from a curve's name (``ppo-budget``, ``envelope``,
    ``escalation``, with or without ``@sweep``) or a policy's path (a budget ``model.zip``, an Envelope or
    escalation ``.pt``), its files checked against their cards."""
    # lazy: SB3 costs about half a second at import, and only a budget policy needs it
    from agents.controllers.sb3_agent import SB3Agent

    name = name.removesuffix("@sweep")
    if name in SWEEPABLE_POLICIES:
        path = shipped_policy_path(name, ctx)
    elif name.endswith((".zip", ".pt")):
        path = Path(name)
        if not path.is_file():
            raise UsageError(f"curve {name!r}: no such policy file")
        name = path.stem if path.stem not in ("model", "policy") else path.parent.name
    else:
        raise UnknownNameError(
            f"unknown curve {name!r}; known curves: {', '.join(f'{n}@sweep' for n in SWEEPABLE_POLICIES)}, or a "
            "budget-conditioned model.zip, an Envelope policy.pt or an escalation policy.pt"
        )
    if path.suffix == ".zip":
        obs, act = env_spaces(ctx)
        agent = SB3Agent.load(path, "maskable-ppo", name, observation_space=obs, action_space=act)
        return budget_sweep_of(agent, name, read_card(path), ctx.env_id)
    card = read_card(path)
    if card.get("kind") == ENVELOPE_KIND:
        return EnvelopeSweep(path, name)
    return EscalationSweep(load_escalation(path, ctx), ctx.env_id, dict(ctx.env_overrides), name, source=str(path))


def shipped_policy_path(name: str, ctx: BenchContext) -> Path:
    """The shipped conditioned policy ``name`` of ``ctx``'s env, checked against its card."""
    path = POLICY_DIR / f"{name}-{ctx.env_id}.{SWEEPABLE_POLICIES[name]}"
    if not path.is_file():
        raise UnknownNameError(
            f"no {name} policy is shipped for {ctx.env_id} ({path.name}); train one (see "
            "docs/guides/learned-controllers.md, 'One policy for every budget') and give its path"
        )
    verify_policy(path, ctx)
    return path


def budget_sweep_of(agent: Any, name: str, card: dict[str, Any], env_id: str) -> BudgetSweep:
    """The :class:`BudgetSweep` of a model trained on a Budget id, from its card: its env arguments (less the budget),
    its decision layers, its trained budget range and its val calibration. Points run on ``env_id``."""
    trained = dict(card.get("env_kwargs") or {})
    budget = trained.pop("budget", None)
    if not isinstance(budget, (list, tuple)):
        raise UsageError(
            f"{name}: the policy was not trained with a budget range (its card's env_kwargs have none); train it "
            "with `abn-gym train --algo maskable-ppo --env ABN-ResNet20Quarter-Budget-v1 --budget LOW,HIGH`"
        )
    points = {} if trained.get("decide_at") is None else {"decide_at": tuple(int(t) for t in trained["decide_at"])}
    span = (float(budget[0]), float(budget[1]))
    return BudgetSweep(agent, name, points, env_id, card.get("calibration"), span)
