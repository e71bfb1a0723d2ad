"""Exact resume of ``abn-gym train``: checkpoints that hold everything the rest of the run depends on.

A checkpoint is taken between two rollouts (at the start of a rollout, and when training ends),
where the whole state of a run is small and known:

- the policy's weights and its optimizer's state;
- the step count, and SB3's ``_last_obs`` / ``_last_episode_starts`` (the observation the next
  rollout starts from: the env is not reset on resume);
- the torch, numpy and Python generators (PPO samples actions with torch's and shuffles its
  minibatches with numpy's), and the action space's generator;
- the env: every sub-env's episode in progress, its generator and its sampler position
  (:meth:`abn_gym.vector.ABNVectorEnv.get_state`);
- ``--keep-best-every``'s evaluations and kept step, and (in a file beside the checkpoint, as
  before) ``--normalize-obs``'s statistics.

It is saved as ``checkpoints/state_<n>_steps.pt``, a ``torch.save`` of tensors and plain Python
values only (numpy arrays become tensors), and read back with ``weights_only=True``: nothing is
unpickled. ``checkpoints/model_<n>_steps.zip`` is still written beside it, for people who load a
checkpoint with SB3; a resume never loads it, except from a run of an older version, which has
no state files (that resume is not exact, and the card says so).

The DQN family's replay buffer is not saved (hundreds of MB): its resume is not exact either.
"""

from __future__ import annotations

import json
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

from abn_gym.sb3 import SB3VecEnv
from agents.controllers.algorithms import algorithm
from agents.controllers.normalization import ObsNormalizer, stats_path
from supernets.foundation.errors import CheckpointError
from supernets.foundation.files import atomic_torch_save, safe_load, writing

FORMAT = 1
"""Version of the state file's layout."""
STATE_FILE = "state_{steps}_steps.pt"
"""A checkpoint's state, inside ``<out>/checkpoints``."""


def exact_for(algo: str) -> bool:
    """Whether a resumed run of ``algo`` ends with the same model as an uninterrupted one (no replay buffer)."""
    return algorithm(algo).family != "dqn"


def _safe(obj: Any) -> Any:
    """``obj`` in the types ``torch.load(weights_only=True)`` reads: numpy arrays as tensors, tuples marked."""
    if isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        wide = a.astype(np.int64) if a.dtype == np.uint32 else a  # torch has no full uint32 support
        return {"__ndarray__": torch.from_numpy(wide.copy()), "dtype": str(a.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _safe(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return {"__tuple__": [_safe(v) for v in obj]}
    if isinstance(obj, list):
        return [_safe(v) for v in obj]
    return obj


def _unsafe(obj: Any) -> Any:
    """The inverse of :func:`_safe`."""
    if isinstance(obj, dict):
        if "__ndarray__" in obj:
            return obj["__ndarray__"].numpy().astype(obj["dtype"])
        if "__tuple__" in obj:
            return tuple(_unsafe(v) for v in obj["__tuple__"])
        return {k: _unsafe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unsafe(v) for v in obj]
    return obj


def _sb3_env(env: Any) -> SB3VecEnv:
    """The :class:`SB3VecEnv` under SB3's wrappers (VecMonitor, VecNormalize)."""
    while not isinstance(env, SB3VecEnv):
        env = env.venv
    return env


def capture(model: Any, keep_best: dict[str, Any] | None, resumes: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything the rest of a run depends on, between two rollouts (see the module's docstring).

    Args:
        model: the SB3 model.
        keep_best: ``--keep-best-every``'s state (:meth:`KeepBestOnVal.state`), or None.
        resumes: the run's earlier resumes, recorded in the card.
    """
    state: dict[str, Any] = {
        "format": FORMAT,
        "num_timesteps": int(model.num_timesteps),
        "n_updates": int(getattr(model, "_n_updates", 0)),
        "episode_num": int(getattr(model, "_episode_num", 0)),
        "progress_remaining": float(model._current_progress_remaining),
        "policy": model.policy.state_dict(),
        "optimizer": model.policy.optimizer.state_dict(),
        "last_obs": model._last_obs,
        "last_episode_starts": model._last_episode_starts,
        "last_original_obs": getattr(model, "_last_original_obs", None),
        "lstm_states": getattr(model, "_last_lstm_states", None),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy_rng": np.random.get_state(),
        "python_rng": random.getstate(),
        "action_space_rng": model.action_space.np_random.bit_generator.state,
        "env": _sb3_env(model.env).venv.get_state(),
        "keep_best": keep_best,
        "resumes": resumes,
    }
    return _safe(state)


def save_state(path: Path, model: Any, keep_best: dict[str, Any] | None, resumes: list[dict[str, Any]]) -> None:
    """Write :func:`capture` to ``path`` atomically (an OS error is an ``OutputWriteError``)."""
    atomic_torch_save(capture(model, keep_best, resumes), path)


def load_state(path: Path) -> dict[str, Any]:
    """A state file read back safely (``weights_only``), in the types :func:`capture` saw."""
    state = safe_load(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a training state of this version of abn-gym; remove it (and the checkpoint files of "
            "the same step) to resume from the one before, or choose another --out"
        )
    return _unsafe(state)


def restore(model: Any, state: dict[str, Any]) -> None:
    """Put a :func:`load_state` state into a model freshly made with the run's settings (and its env)."""
    model.policy.load_state_dict(state["policy"])
    model.policy.optimizer.load_state_dict(state["optimizer"])
    model.num_timesteps = state["num_timesteps"]
    model._n_updates, model._episode_num = state["n_updates"], state["episode_num"]
    model._current_progress_remaining = state["progress_remaining"]
    model._last_obs, model._last_episode_starts = state["last_obs"], state["last_episode_starts"]
    if state["last_original_obs"] is not None:
        model._last_original_obs = state["last_original_obs"]
    if state["lstm_states"] is not None:
        kind = type(model._last_lstm_states)
        model._last_lstm_states = kind(*state["lstm_states"])
    # The env first: building its engine loads the supernet, whose blank weights draw from torch's stream.
    env = _sb3_env(model.env)
    env.venv.set_state(state["env"])
    env._reset_seeds()  # the seeds of the run's first reset are spent
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    np.random.set_state(state["numpy_rng"])
    version, internal, gauss = state["python_rng"]
    random.setstate((version, tuple(internal), gauss))
    model.action_space.np_random.bit_generator.state = state["action_space_rng"]


def zip_data(path: Path) -> dict[str, Any]:
    """The plain JSON entries of an SB3 model zip's ``data`` (its pickled entries are left out, unread)."""
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path} is not a readable SB3 model zip ({exc}); choose another --out") from None
    return {k: v for k, v in data.items() if not (isinstance(v, dict) and ":serialized:" in v)}


def load_zip_weights(model: Any, path: Path) -> None:
    """Load an SB3 zip's policy weights and optimizer state into ``model`` with ``weights_only``: nothing unpickled."""
    try:
        with zipfile.ZipFile(path) as archive:
            for name, target in (("policy.pth", model.policy), ("policy.optimizer.pth", model.policy.optimizer)):
                with archive.open(name) as f:
                    target.load_state_dict(torch.load(f, map_location="cpu", weights_only=True))
    except (OSError, KeyError, RuntimeError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(
            f"{path} could not be loaded as this run's model ({type(exc).__name__}: {exc}); it is corrupt or "
            "belongs to another run: choose another --out"
        ) from None


def state_path(checkpoint: Path) -> Path:
    """The state file of a checkpoint zip ``model_<n>_steps.zip``."""
    return checkpoint.with_name(checkpoint.name.replace("model_", "state_", 1).removesuffix(".zip") + ".pt")


class ExactCheckpoints(BaseCallback):
    """A checkpoint every ``every`` steps, between two rollouts: the model zip, its statistics, then its state.

    The state file is written last: a checkpoint counts only once it is there.

    Args:
        every: environment steps between checkpoints.
        folder: the run's ``checkpoints`` folder.
        keep: the run's ``KeepBestOnVal`` callback (its state is saved, its stale files pruned), or None.
        resumes: the run's resumes so far (recorded in every later checkpoint and in the card).
    """

    def __init__(self, every: int, folder: Path, keep: Any = None, resumes: list[dict[str, Any]] | None = None):
        super().__init__()
        self.every, self.folder, self.keep = every, Path(folder), keep
        self.resumes = resumes or []
        self.next_save = every

    def _on_training_start(self) -> None:
        self.next_save = (self.num_timesteps // self.every + 1) * self.every

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        if self.num_timesteps >= self.next_save:
            self.save()

    def _on_training_end(self) -> None:
        if self.num_timesteps >= self.next_save:
            self.save()

    def save(self) -> Path:
        """Write the checkpoint of the current step; returns its state file."""
        self.next_save = (self.num_timesteps // self.every + 1) * self.every
        zip_path = self.folder / f"model_{self.num_timesteps}_steps.zip"
        with writing(self.folder):
            self.folder.mkdir(parents=True, exist_ok=True)
        venv = self.model.get_vec_normalize_env()
        if venv is not None:
            ObsNormalizer.from_vecnormalize(venv).save(stats_path(zip_path))
        tmp = zip_path.with_name(zip_path.name.removesuffix(".zip") + ".tmp.zip")
        with writing(zip_path):
            self.model.save(str(tmp))
            tmp.replace(zip_path)
        path = state_path(zip_path)
        keep_state = None if self.keep is None else self.keep.state()
        save_state(path, self.model, keep_state, self.resumes)
        if self.keep is not None:
            self.keep.prune()  # only now: the kept file this checkpoint names must outlive it
        return path
