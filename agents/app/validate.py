"""`abn-gym validate`: replay every recorded configuration through the supernet and check the figures.

Like CompilerGym's validation, nothing in a results file is taken on trust: each episode's
bits are run again on its input, and its correctness, BitOps and reward must match; each
leaderboard row's accuracy and mean BitOps must match its episodes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from abn_gym.config import make_config, reward_fn
from abn_gym.engine import EpisodeEngine
from supernets.foundation.errors import ABNGymError
from supernets.registry import load_supernet, load_supernet_split, read_supernet_card

CHUNK = 512


class ResultsMismatchError(ABNGymError, ValueError):
    """A results file cannot be validated against this installation (e.g. another supernet)."""


def validate(path: str | Path, progress: bool = True) -> dict:
    """Replay a ``results.json``; returns {"ok", "episodes", "errors": [...]}."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise ResultsMismatchError(f"cannot read results file {path}: {exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsMismatchError(f"{path} is not a JSON file (abn-gym bench writes results.json): {exc}") from None
    if not isinstance(doc, dict):
        raise ResultsMismatchError(f"{path} is not an abn-gym results file (it holds a JSON {type(doc).__name__})")
    for key in ("supernet", "supernet_sha256", "split", "env_kwargs", "records", "rows"):
        if key not in doc:
            raise ResultsMismatchError(f"{path} is not an abn-gym results file (no {key!r})")
    # A card path is kept in env_kwargs; "supernet" holds the name inside the card.
    ref = doc["env_kwargs"].get("supernet", doc["supernet"]) if isinstance(doc["env_kwargs"], dict) else doc["supernet"]
    sha = read_supernet_card(ref)["sha256"]
    if doc["supernet_sha256"] != sha:
        raise ResultsMismatchError(
            f"{path} was produced with another {doc['supernet']} checkpoint (sha256 {doc['supernet_sha256'][:12]}..., "
            f"installed {sha[:12]}...): results can only be validated against the supernet that made them"
        )
    net = load_supernet(ref)
    split = load_supernet_split(ref, doc["split"], doc["env_kwargs"].get("data_dir"))
    cfg = make_config(**{k: tuple(v) if isinstance(v, list) else v for k, v in doc["env_kwargs"].items()})
    reward = reward_fn(cfg, net)
    records = doc["records"]
    errors: list[str] = []
    bar = tqdm(total=len(records), desc="validate", unit="ep", file=sys.stderr, disable=not progress)
    for start in range(0, len(records), CHUNK):
        chunk = records[start : start + CHUNK]
        engine = EpisodeEngine(net, split, net.bit_choices, reward, len(chunk))
        engine.reset(np.array([r["index"] for r in chunk]))
        bits = np.array([r["bits"] for r in chunk])
        total = np.zeros(len(chunk))
        for t in range(net.num_switchable):
            res = engine.step(np.searchsorted(net.bit_choices, bits[:, t]))
            total += res.reward
        ops = engine.episode_bitops()
        for k, r in enumerate(chunk):
            where = f"record {start + k} ({r['agent']}, image {r['index']})"
            if bool(res.correct[k]) != r["correct"]:
                errors.append(f"{where}: recorded correct={r['correct']}, replay gives {bool(res.correct[k])}")
            if ops[k] != r["bitops"]:
                errors.append(f"{where}: recorded {r['bitops']:.0f} BitOps, replay gives {ops[k]:.0f}")
            if cfg.budget is None and not np.isclose(total[k], r["reward"], atol=1e-6):
                errors.append(f"{where}: recorded reward {r['reward']:.6f}, replay gives {total[k]:.6f}")
        bar.update(len(chunk))
    bar.close()
    for row in doc["rows"]:
        name = row["agent"].split(" [")[0]
        eps = [r for r in records if r["agent"] == name]
        if not eps:
            errors.append(f"row {name!r} has no episodes")
            continue
        if row["seeds"] == 1:
            acc = float(np.mean([r["correct"] for r in eps]))
            if not np.isclose(acc, row["accuracy"], atol=1e-9):
                errors.append(f"row {name!r}: accuracy {row['accuracy']:.6f}, its episodes give {acc:.6f}")
        ops = float(np.mean([r["bitops"] for r in eps]))
        if not np.isclose(ops, row["bitops"], rtol=1e-9):
            errors.append(f"row {name!r}: mean BitOps {row['bitops']:.0f}, its episodes give {ops:.0f}")
    # The static front the verdicts were judged against, listed or not: each of its rows from its episodes.
    for row in doc.get("front", []):
        eps = [r for r in records if r["agent"] == row["agent"]]
        if not eps:
            errors.append(f"front row {row['agent']!r} has no episodes")
            continue
        acc = float(np.mean([r["correct"] for r in eps]))
        ops = float(np.mean([r["bitops"] for r in eps]))
        if not (np.isclose(acc, row["accuracy"], atol=1e-9) and np.isclose(ops, row["bitops"], rtol=1e-9)):
            errors.append(
                f"front row {row['agent']!r}: accuracy {row['accuracy']:.6f} at {row['bitops']:.0f} BitOps, "
                f"its episodes give {acc:.6f} at {ops:.0f}"
            )
    return {"ok": not errors, "episodes": len(records), "errors": errors}
