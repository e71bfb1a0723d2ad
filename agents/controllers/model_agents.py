"""Saved models as agents: which env a model belongs on (its card), the checks, and the loading.

A model zip is read by :mod:`agents.controllers.safe_load`, which unpickles nothing; its card
never imports code unless the user opts in. :mod:`agents.controllers.registry` makes agents of
every other kind from their names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from abn_gym.config import make_config
from abn_gym.registration import DEFAULT_ENV_ID, env_kwargs
from abn_gym.vector import ABNVectorEnv
from agents.controllers.safe_load import card_env_allowed, parse_plain_model
from supernets.foundation.errors import ABNGymError, CheckpointError, UsageError
from supernets.foundation.files import sha256
from supernets.registry import read_supernet_card

SHIPPED_POLICIES = {"ppo": "zip", "escalation": "pt"}
"""Leaderboard name -> file suffix of the trained agents shipped per env as ``agents/policies/<name>-<env id>``."""


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
    cost_model: str = "bitops"
    """The env's cost model (:func:`supernets.costs.cost_table`): the static front is searched under it."""


MODEL_ENV_ARGS = ("supernet", "bit_choices", "reward", "cost_coef", "gamma", "budget", "obs_mode", "cost_model")
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

    path = Path(path)
    card_path, card = check_model_card(path, ctx)
    algo = card.get("algo", "ppo")
    obs, act = env_spaces(ctx)
    agent = load_zip_agent(path, algo, name or str(path), (obs, act), ctx.trust_pickle, f"its card {card_path}")
    n_actions = getattr(agent.model.action_space, "n", None)
    if n_actions != len(ctx.bit_choices):
        raise UsageError(
            f"{path} chooses among {n_actions} actions, but {ctx.env_id} has bit_choices={ctx.bit_choices}; "
            f"benchmark it on the env it was trained on ({card.get('env')})"
        )
    return agent


def load_zip_agent(
    path: str | Path, algo: str, name: str, spaces: tuple[Any, Any], trust_pickle: bool, source: str
) -> Any:
    """:meth:`SB3Agent.load` on the env's spaces; a zip of another algorithm gets one clear error.

    Args:
        path: the model zip.
        algo: the algorithm to rebuild it as.
        name: the leaderboard row name.
        spaces: the env's single observation and action spaces (no env is built).
        trust_pickle: load through stable-baselines3, unpickling what the zip carries (``--trust-pickle``).
        source: what named the algorithm, for the message (``"its card PATH"``, ``"ALGO: on the command line"``).
    """
    # lazy: SB3 costs about half a second at import, and only a model needs it
    from agents.controllers.sb3_agent import SB3Agent

    try:
        return SB3Agent.load(
            path, algo, name, observation_space=spaces[0], action_space=spaces[1], trust_pickle=trust_pickle
        )
    except ABNGymError:
        raise  # already says what is wrong and what to do (a refusal naming --trust-pickle, say)
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        # A zip of another algorithm fails deep inside SB3 with whatever its loader trips on.
        raise CheckpointError(
            f"{path} does not load as {algo!r}, the algo {source} names ({type(exc).__name__}: {exc}); "
            "the zip belongs to another algorithm: retrain, or name its own algo"
        ) from None
