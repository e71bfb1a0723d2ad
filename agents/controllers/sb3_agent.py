"""Plug stable-baselines3 models into the agent protocol, with their decision cost counted."""

from __future__ import annotations

import functools
import inspect
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from abn_gym.config import EnvConfig
from agents.controllers.algorithms import ALGOS, algo_class
from agents.controllers.base import BaseAgent, highest_allowed
from agents.controllers.normalization import ObsNormalizer, stats_path
from supernets.foundation.errors import CheckpointError, UsageError
from supernets.foundation.files import sha256


def find_card(path: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """The model card of a saved model: ``<stem>.json`` (a shipped policy) or ``card.json`` beside it (a run)."""
    path = Path(path)
    for card_path in (path.with_suffix(".json"), path.parent / "card.json"):
        if card_path.is_file():
            try:
                return card_path, json.loads(card_path.read_text())
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise CheckpointError(f"model card {card_path} is not valid JSON: {exc}") from None
    return None


def card_obs_norm(path: str | Path, card_path: Path, card: dict[str, Any]) -> ObsNormalizer | None:
    """The normalisation statistics a model card lists for the model ``path``, checked against its sha256.

    A card without them is refused when statistics lie beside the model: they would silently be dropped.
    """
    entry = card.get("obs_norm")
    if not entry:
        beside = stats_path(path)
        if beside.is_file():
            raise CheckpointError(
                f"{beside} lies beside {Path(path).name}, but {card_path} lists no normalisation statistics: the card "
                "or the folder was changed after training; retrain, or remove the file if the model never used it"
            )
        return None
    name = str(entry.get("file", ""))
    if not name or Path(name).name != name:
        raise CheckpointError(f"{card_path}: obs_norm.file must be a file name beside the model, got {name!r}")
    return ObsNormalizer.load(card_path.parent / name, entry.get("sha256") or "missing")


def _saved_settings(path: Path) -> tuple[set[str], str]:
    """The setting names an SB3 zip holds, and the qualified name of its policy's ``__init__``."""
    try:
        with zipfile.ZipFile(path) as zf:
            data = json.loads(zf.read("data"))
    except (OSError, KeyError, zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not a model saved by stable-baselines3: {exc}") from None
    init = str((data.get("policy_class") or {}).get("__init__", ""))
    found = re.match(r"<function (\S+)\.__init__", init)
    return set(data), found.group(1) if found else ""


@functools.cache
def _algo_settings(algo: str) -> tuple[frozenset[str], frozenset[str]]:
    """The settings a model of ``algo`` saves, and the policy classes it accepts."""
    cls = algo_class(algo)
    # Built without an env or networks: only the attributes are set, which is what a save writes.
    fresh = cls(next(iter(cls.policy_aliases)), None, _init_setup_model=False)
    policies = {p.__init__.__qualname__.removesuffix(".__init__") for p in cls.policy_aliases.values()}
    return frozenset(fresh.__dict__), frozenset(policies)


@functools.cache
def _settings_of_all() -> frozenset[str]:
    return frozenset().union(*(set(inspect.signature(algo_class(a).__init__).parameters) for a in ALGOS)) - {
        "self", "policy", "env", "device", "_init_setup_model"
    }  # fmt: skip


def model_matches_algo(path: str | Path, algo: str) -> bool:
    """Whether the SB3 zip ``path`` was saved by ``algo`` (its settings and policy class are that algorithm's)."""
    keys, policy = _saved_settings(Path(path))
    every = _settings_of_all()
    keys &= every
    expected, policies = _algo_settings(algo)
    expected &= every
    if policy and policy not in policies:
        return False
    if not keys <= expected:  # it holds a setting this algorithm does not have (PPO's n_epochs read as A2C)
        return False
    # A narrower algorithm explains it better (an A2C model read as PPO, which has every A2C setting and more).
    for other in ALGOS:
        other_keys, other_policies = _algo_settings(other)
        other_keys &= every
        if other != algo and keys <= other_keys < expected and (not policy or policy in other_policies):
            return False
    return True


def check_model_algo(path: str | Path, algo: str, source: str) -> None:
    """Refuse a model that ``algo`` (named by ``source``) did not train, naming the algorithm that did."""
    if model_matches_algo(path, algo):
        return
    actual = [a for a in ALGOS if a != algo and model_matches_algo(path, a)]
    what = f"was saved by {actual[0]}" if actual else "was saved by none of abn-gym's algorithms"
    raise CheckpointError(
        f"{path} {what}, but {source} says algo {algo!r}; "
        + (f"set the card's algo to {actual[0]!r}" if actual else f"choose one of {list(ALGOS)}")
    )


def _linear_macs(module: nn.Module | None) -> int:
    if module is None:
        return 0
    return sum(m.in_features * m.out_features for m in module.modules() if isinstance(m, nn.Linear))


def _lstm_macs(module: nn.Module | None) -> int:
    """MACs of one LSTM step: four gates, each over the input and the hidden state."""
    if not isinstance(module, nn.LSTM):
        return 0
    macs, size = 0, module.input_size
    for _ in range(module.num_layers):
        macs += 4 * module.hidden_size * (size + module.hidden_size)
        size = module.hidden_size
    return macs


def policy_macs(model: Any) -> int:
    """MACs of one action decision: the layers between observation and action (no value head)."""
    policy = model.policy
    if hasattr(policy, "q_net"):  # DQN
        return _linear_macs(policy.q_net)
    if hasattr(policy, "quantile_net"):  # QR-DQN
        return _linear_macs(policy.quantile_net)
    extractor = getattr(policy, "mlp_extractor", None)
    return (
        _lstm_macs(getattr(policy, "lstm_actor", None))  # RecurrentPPO
        + _linear_macs(getattr(extractor, "policy_net", None))
        + _linear_macs(getattr(policy, "action_net", None))
    )


def _training_decide_at(model: Any) -> tuple[int, ...] | None:
    """The ``decide_at`` of the abn-gym env a model trains on (None without one, or for every layer)."""
    env = getattr(model, "env", None)
    while env is not None:  # VecNormalize -> VecMonitor -> SB3VecEnv -> the native vector env
        config = getattr(env, "config", None)
        if isinstance(config, EnvConfig):
            return config.decide_at
        env = getattr(env, "venv", None)
    return None


class SB3Agent(BaseAgent):
    """A trained SB3 model as a leaderboard agent (deterministic actions by default).

    Args:
        model: an SB3 or sb3-contrib model (PPO, A2C, DQN, MaskablePPO, QR-DQN, TRPO, RecurrentPPO).
        name: leaderboard name.
        deterministic: take the most likely action instead of sampling.
        obs_norm: observation statistics the model was trained with, applied frozen before each decision;
            None takes a frozen copy from the model's own ``VecNormalize`` env if it has one (a model still
            in training), else the observations go in as they are.
    """

    card: dict[str, Any] | None = None
    """The model card it was loaded with (:meth:`load`), else None."""

    def __init__(
        self, model: Any, name: str = "ppo", deterministic: bool = True, obs_norm: ObsNormalizer | None = None
    ) -> None:
        super().__init__()
        if obs_norm is None and hasattr(model, "get_vec_normalize_env"):
            venv = model.get_vec_normalize_env()
            if venv is not None and venv.norm_obs:
                obs_norm = ObsNormalizer.from_vecnormalize(venv)
        self.obs_norm = obs_norm
        self.model, self.name, self.deterministic = model, name, deterministic
        self.stochastic = not deterministic
        self.decision_macs_per_step = policy_macs(model)
        self.decide_at = _training_decide_at(model)
        self._last = np.zeros(0, dtype=np.int64)
        self._maskable = type(model).__name__ == "MaskablePPO"
        self._recurrent = type(model).__name__ == "RecurrentPPO"
        self._state: Any = None
        self._starts = np.ones(0, dtype=bool)

    def reset(self, num_envs: int, seed: int) -> None:
        """New episodes: a recurrent policy starts from a fresh hidden state."""
        super().reset(num_envs, seed)
        self._state, self._starts = None, np.ones(num_envs, dtype=bool)

    @property
    def decide_at(self) -> tuple[int, ...] | None:
        """The layers the policy decides at (env option ``decide_at``), None for every layer.

        Between them it repeats its last decision, so it runs the same episodes on the plain env
        (whose observation at a decision layer is the decide_at env's) as on the env it trained on;
        its decision cost is then counted once per decision, per episode.
        """
        return self._decide_at

    @decide_at.setter
    def decide_at(self, layers: Any) -> None:
        self._decide_at = None if layers is None else tuple(int(x) for x in layers)
        per_decision = policy_macs(self.model)
        self.decision_macs_per_step = per_decision if self._decide_at is None else 0
        self.decision_macs_per_episode = 0 if self._decide_at is None else per_decision * len(self._decide_at)

    @property
    def env_id(self) -> str | None:
        """The env id the model was trained on (from its card), or None without a card."""
        return None if self.card is None else self.card.get("env")

    @property
    def env_kwargs(self) -> dict[str, Any] | None:
        """The env arguments the model was trained with (from its card), or None without one."""
        return None if self.card is None else self.card.get("env_kwargs")

    @classmethod
    def load(
        cls,
        path: str | Path,
        algo: str | None = None,
        name: str | None = None,
        deterministic: bool = True,
        observation_space: Any = None,
        action_space: Any = None,
    ) -> SB3Agent:
        """Load a saved model zip with what its model card records, checked.

        The card (``<stem>.json``, else ``card.json`` beside the model) gives the algorithm, the env
        (:attr:`env_id`, :attr:`env_kwargs`) and the observation normalisation; the model and the
        statistics must match the card's sha256. A model without a card (a checkpoint, or one saved by
        plain SB3) needs ``algo``; a checkpoint's statistics beside it are applied.

        Args:
            path: the model zip (``runs/ppo/model.zip``, ``agents/policies/ppo-<env id>.zip``, a checkpoint).
            algo: the ``--algo`` name; None reads it from the card. Given, it must agree with the card.
            name: leaderboard name (default: the algorithm).
            deterministic: take the most likely action instead of sampling.
            observation_space: the env's observation space, used instead of the one saved in the zip (a worker
                process builds no env to get it); None keeps the saved one.
            action_space: the env's action space, likewise.
        """
        path = Path(path)
        if not path.is_file():
            raise UsageError(f"no such model file: {path}")
        found = find_card(path)
        if found is None:
            if algo is None:
                raise CheckpointError(
                    f"{path} has no model card ({path.with_suffix('.json').name} or card.json beside it), so its "
                    f"algorithm is unknown; give it: SB3Agent.load(path, algo), algo one of {list(ALGOS)}"
                )
            beside = stats_path(path)
            obs_norm, card, source = (ObsNormalizer.load(beside) if beside.is_file() else None), None, "the caller"
        else:
            card_path, card = found
            card_algo = card.get("algo")
            if card_algo is not None and algo is not None and card_algo != algo:
                raise UsageError(f"{path} was trained with {card_algo} (its card {card_path} says so), not {algo}")
            algo = card_algo or algo
            if algo is None:
                raise CheckpointError(f"{card_path} names no algo; add the algorithm that trained {path.name}")
            if card.get("sha256") is not None and sha256(path) != card["sha256"]:
                raise CheckpointError(
                    f"{path} does not match the sha256 in {card_path}: it changed after the card was written"
                )
            obs_norm, source = card_obs_norm(path, card_path, card), f"its card {card_path}"
        if algo not in ALGOS:
            raise UsageError(f"unknown algo {algo!r} for {path}; choose one of {list(ALGOS)}")
        check_model_algo(path, algo, source)
        given = {"observation_space": observation_space, "action_space": action_space}
        custom = {k: v for k, v in given.items() if v is not None}
        model = algo_class(algo).load(str(path), device="cpu", custom_objects=custom or None)
        if obs_norm is not None:
            obs_norm.check_fits(model.observation_space, str(path))
        agent = cls(model, name or algo, deterministic, obs_norm=obs_norm)
        agent.card = card
        agent.decide_at = (card or {}).get("env_kwargs", {}).get("decide_at")
        return agent

    def act(self, obs: np.ndarray, infos: dict[str, Any]) -> np.ndarray:
        """The policy's action per episode, lowered to the allowed range."""
        n = len(infos["action_mask"])  # len(obs) would count the keys of a Dict observation
        if self._decide_at is not None and infos.get("layer") not in self._decide_at and len(self._last) == n:
            return highest_allowed(self._last, infos["action_mask"])
        if self.obs_norm is not None:
            obs = self.obs_norm(obs)
        if self._maskable:
            actions, _ = self.model.predict(obs, deterministic=self.deterministic, action_masks=infos["action_mask"])
        elif self._recurrent:
            if len(self._starts) != n:
                self._state, self._starts = None, np.ones(n, dtype=bool)
            actions, self._state = self.model.predict(
                obs, state=self._state, episode_start=self._starts, deterministic=self.deterministic
            )
            self._starts = np.zeros(n, dtype=bool)
        else:
            actions, _ = self.model.predict(obs, deterministic=self.deterministic)
        self._last = highest_allowed(np.asarray(actions, dtype=np.int64).reshape(n), infos["action_mask"])
        return self._last
