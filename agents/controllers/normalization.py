"""Observation normalisation carried with a trained model: SB3 ``VecNormalize``'s statistics, without pickle.

A model trained with ``abn-gym train --normalize-obs`` saw observations standardised by a
running mean and variance. Those statistics are part of the policy: the same model on raw
observations is another policy. They are stored beside the model as JSON (the stats of
``X.zip`` are ``X.obs_norm.json``: ``model.obs_norm.json`` beside ``model.zip``, one per
checkpoint, ``<stem>.obs_norm.json`` for a shipped policy), hashed in the model card, and
applied, frozen, by every loader (:meth:`agents.controllers.sb3_agent.SB3Agent.load`, hence ``bench`` and
the zoo). JSON rather than ``VecNormalize.save``'s pickle: loading it runs no code, and Python
writes floats so that they read back bit for bit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from supernets.foundation.errors import CheckpointError
from supernets.foundation.files import atomic_write_json, sha256

SUFFIX = ".obs_norm.json"
"""The statistics of ``X.zip`` live in ``X`` + SUFFIX."""
FORMAT = 1
BOX = ""
"""The key of the statistics of a plain (Box) observation; Dict observations use their own keys."""


def stats_path(model_path: str | Path) -> Path:
    """Where the normalisation statistics of the model ``model_path`` (``X.zip``) live: ``X.obs_norm.json``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name.removesuffix(".zip") + SUFFIX)


class ObsNormalizer:
    """Frozen observation standardisation, exactly as SB3's ``VecNormalize.normalize_obs`` computes it.

    Args:
        stats: per observation key (:data:`BOX` for a plain array) a dict with ``mean``, ``var`` (arrays of
            the key's shape) and ``count`` (the number of observations they summarise).
        clip: observations are clipped to [-clip, clip] after standardising.
        epsilon: added to the variance before the square root, so constant features do not divide by zero.
    """

    def __init__(self, stats: Mapping[str, Mapping[str, Any]], clip: float = 10.0, epsilon: float = 1e-8) -> None:
        self.stats = {
            key: {
                "mean": np.asarray(s["mean"], dtype=np.float64),
                "var": np.asarray(s["var"], dtype=np.float64),
                "count": float(s["count"]),
            }
            for key, s in stats.items()
        }
        self.clip, self.epsilon = float(clip), float(epsilon)

    @classmethod
    def from_vecnormalize(cls, venv: Any) -> ObsNormalizer:
        """A frozen copy of a ``VecNormalize``'s observation statistics (later updates do not change it)."""
        rms = venv.obs_rms if isinstance(venv.obs_rms, dict) else {BOX: venv.obs_rms}
        stats = {k: {"mean": r.mean.copy(), "var": r.var.copy(), "count": r.count} for k, r in rms.items()}
        return cls(stats, venv.clip_obs, venv.epsilon)

    def restore_into(self, venv: Any) -> None:
        """Put these statistics into a ``VecNormalize`` (to resume training where they were saved)."""
        rms = venv.obs_rms if isinstance(venv.obs_rms, dict) else {BOX: venv.obs_rms}
        if set(rms) != set(self.stats):
            raise CheckpointError(
                f"normalisation statistics for observation keys {sorted(self.stats)} do not fit an env whose "
                f"keys are {sorted(rms)}"
            )
        for key, r in rms.items():
            s = self.stats[key]
            if s["mean"].shape != r.mean.shape:
                raise CheckpointError(
                    f"normalisation statistics of shape {s['mean'].shape} do not fit observations of shape "
                    f"{r.mean.shape}"
                )
            r.mean, r.var, r.count = s["mean"].copy(), s["var"].copy(), s["count"]
        venv.clip_obs, venv.epsilon = self.clip, self.epsilon

    def check_fits(self, space: Any, what: str) -> None:
        """Refuse statistics whose keys or shapes are not those of the observation ``space`` of ``what``."""
        shapes = {k: sub.shape for k, sub in space.spaces.items()} if hasattr(space, "spaces") else {BOX: space.shape}
        mine = {k: s["mean"].shape for k, s in self.stats.items()}
        if any(k not in shapes or shapes[k] != shape for k, shape in mine.items()):
            raise CheckpointError(
                f"the normalisation statistics of {what} are for observations {mine}, but it observes {shapes}; "
                "they belong to another model"
            )

    def _one(self, obs: np.ndarray, key: str) -> np.ndarray:
        s = self.stats[key]
        # VecNormalize's own formula and casts, so a loaded model acts exactly as it did in training.
        return np.clip((obs - s["mean"]) / np.sqrt(s["var"] + self.epsilon), -self.clip, self.clip).astype(np.float32)

    def __call__(self, obs: np.ndarray | dict[str, np.ndarray]) -> np.ndarray | dict[str, np.ndarray]:
        """The standardised observation (a new array; ``obs`` is left as it is)."""
        if isinstance(obs, dict):
            return {k: self._one(v, k) if k in self.stats else v for k, v in obs.items()}
        return self._one(obs, BOX)

    def to_json(self) -> dict[str, Any]:
        """The statistics as a JSON object (floats round-trip exactly)."""
        return {
            "format": FORMAT,
            "kind": "VecNormalize observation statistics (norm_obs=True, norm_reward=False)",
            "clip": self.clip,
            "epsilon": self.epsilon,
            "stats": {
                k: {"shape": list(s["mean"].shape), "count": s["count"], "mean": s["mean"].ravel().tolist(),
                    "var": s["var"].ravel().tolist()}
                for k, s in self.stats.items()
            },
        }  # fmt: skip

    def save(self, path: str | Path) -> str:
        """Write the statistics atomically to ``path``; returns the file's sha256."""
        atomic_write_json(path, self.to_json())
        return sha256(path)

    @classmethod
    def load(cls, path: str | Path, expected_sha256: str | None = None) -> ObsNormalizer:
        """Read statistics written by :meth:`save`, refusing a file whose sha256 is not ``expected_sha256``."""
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"the observation normalisation statistics {path} are missing; restore the file")
        if expected_sha256 is not None and sha256(path) != expected_sha256:
            raise CheckpointError(
                f"{path} does not match the sha256 in the model card: the normalisation statistics changed after "
                "the card was written"
            )
        try:
            doc = json.loads(path.read_text())
            if doc.get("format") != FORMAT:
                raise ValueError(f"format {doc.get('format')!r}, expected {FORMAT}")
            stats = {}
            for key, s in doc["stats"].items():
                shape = tuple(int(n) for n in s["shape"])
                mean = np.asarray(s["mean"], dtype=np.float64).reshape(shape)
                var = np.asarray(s["var"], dtype=np.float64).reshape(shape)
                if not (np.isfinite(mean).all() and np.isfinite(var).all() and (var >= 0).all()):
                    raise ValueError("non-finite mean or negative variance")
                stats[key] = {"mean": mean, "var": var, "count": float(s["count"])}
            clip, epsilon = float(doc["clip"]), float(doc["epsilon"])
            if not (clip > 0 and math.isfinite(clip) and epsilon >= 0):
                raise ValueError(f"clip {clip} and epsilon {epsilon}")
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"{path} is not valid normalisation statistics: {exc}") from None
        return cls(stats, clip, epsilon)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ObsNormalizer):
            return NotImplemented
        return self.to_json() == other.to_json()

    def __repr__(self) -> str:
        count = next(iter(self.stats.values()))["count"] if self.stats else 0
        return f"ObsNormalizer(keys={sorted(self.stats)}, count={count:g}, clip={self.clip:g})"
