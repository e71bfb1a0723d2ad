"""`abn-gym validate`: replay every recorded configuration through the supernet and check the figures.

Like CompilerGym's validation, nothing in a results file is taken on trust: each episode's
bits are run again on its input, and its correctness, BitOps, cost (in the results' cost model) and
reward must match; each leaderboard row's accuracy, mean BitOps and mean cost must match its episodes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from abn_gym.config import make_config, reward_fn, table_of
from abn_gym.engine import EpisodeEngine
from supernets.foundation.errors import ABNGymError
from supernets.registry import DEFAULT_SUPERNET, load_supernet, load_supernet_split, read_supernet_card

CHUNK = 512


class ResultsMismatchError(ABNGymError, ValueError):
    """A results file cannot be validated against this installation (e.g. another supernet)."""


def replay(
    env_kwargs: dict, split: str, indices: np.ndarray, bits: np.ndarray, done: Callable[[int], Any] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run each (image, configuration) on a supernet loaded here: (correct, BitOps, reward, cost) per episode.

    The cost is in the env's ``cost_model`` (``env_kwargs``'; BitOps when it names none), which
    prices the reward too.

    The engine is exact and batch-independent, so an episode replays alike in any chunk.

    Args:
        env_kwargs: every env argument (``results.json``'s ``env_kwargs``).
        split: the data split the images come from.
        indices: (M,) image indices.
        bits: (M, L) bit-width of every switchable layer, per episode.
        done: called with the number of episodes of each chunk replayed (a progress bar).
    """
    ref = env_kwargs.get("supernet", DEFAULT_SUPERNET)
    net = load_supernet(ref)
    data = load_supernet_split(ref, split, env_kwargs.get("data_dir"))
    cfg = make_config(**{k: tuple(v) if isinstance(v, list) else v for k, v in env_kwargs.items()})
    reward = reward_fn(cfg, net)
    assert cfg.bit_choices is not None, "make_config resolves the bit-widths"
    # The env's actions and cost model, so that a reward priced in bricks or ms replays as recorded
    # (a user's cost table need only price the env's own actions).
    choices = np.asarray(cfg.bit_choices)
    if bits.size and not np.isin(bits, choices).all():
        raise ResultsMismatchError(
            f"recorded bit-widths {sorted(set(np.unique(bits)) - set(choices.tolist()))} are not actions of the env "
            f"(bit_choices={tuple(cfg.bit_choices)}): the results were not made on these env arguments"
        )
    costs = table_of(cfg.supernet, cfg.bit_choices, cfg.cost_model)
    m = len(indices)
    correct, ops, total, cost = np.zeros(m, dtype=bool), np.zeros(m), np.zeros(m), np.zeros(m)
    for start in range(0, m, CHUNK):
        stop = min(start + CHUNK, m)
        engine = EpisodeEngine(net, data, cfg.bit_choices, reward, stop - start, costs=costs)
        engine.reset(indices[start:stop])
        for t in range(net.num_switchable):
            res = engine.step(np.searchsorted(choices, bits[start:stop, t]))
            total[start:stop] += res.reward
        assert res.correct is not None  # the last step ends the episodes
        correct[start:stop], ops[start:stop] = res.correct, engine.episode_bitops()
        cost[start:stop] = engine.episode_cost()
        if done is not None:
            done(stop - start)
    return correct, ops, total, cost


def episode_errors(
    where: str, record: dict, correct: bool, ops: float, reward: float, check_reward: bool, cost: float | None = None
) -> list[str]:
    """What of a recorded episode its replay does not reproduce: correctness, BitOps, cost, reward (without a budget).

    The cost is checked when the record holds one (results made before cost models have none).
    """
    errors = []
    if bool(correct) != record["correct"]:
        errors.append(f"{where}: recorded correct={record['correct']}, replay gives {bool(correct)}")
    if ops != record["bitops"]:
        errors.append(f"{where}: recorded {record['bitops']:.0f} BitOps, replay gives {ops:.0f}")
    if cost is not None and "cost" in record and cost != record["cost"]:
        errors.append(f"{where}: recorded cost {record['cost']!r}, replay gives {cost!r}")
    if check_reward and not np.isclose(reward, record["reward"], atol=1e-6):
        errors.append(f"{where}: recorded reward {record['reward']:.6f}, replay gives {reward:.6f}")
    return errors


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
    records = doc["records"]
    errors: list[str] = []
    bar = tqdm(total=len(records), desc="validate", unit="ep", file=sys.stderr, disable=not progress)
    indices = np.array([r["index"] for r in records], dtype=np.int64)
    bits = np.array([r["bits"] for r in records], dtype=np.int64) if records else np.zeros((0, 1), dtype=np.int64)
    kwargs = {**doc["env_kwargs"], "supernet": ref}
    correct, replayed, total, cost = replay(kwargs, doc["split"], indices, bits, bar.update)
    bar.close()
    errors += cost_model_errors(doc, kwargs)
    check_reward = doc["env_kwargs"].get("budget") is None
    for k, r in enumerate(records):
        where = f"record {k} ({r['agent']}, image {r['index']})"
        errors += episode_errors(where, r, correct[k], replayed[k], total[k], check_reward, cost[k])
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
        if "cost" in row and all("cost" in r for r in eps):
            mean = float(np.mean([r["cost"] for r in eps]))
            if not np.isclose(mean, row["cost"], rtol=1e-9):
                errors.append(f"row {name!r}: mean cost {row['cost']!r}, its episodes give {mean!r}")
    # The static front the verdicts were judged against, listed or not: each of its rows from its episodes.
    for row in doc.get("front", []):
        eps = [r for r in records if r["agent"] == row["agent"]]
        if not eps:
            errors.append(f"front row {row['agent']!r} has no episodes")
            continue
        acc = float(np.mean([r["correct"] for r in eps]))
        ops = float(np.mean([r["bitops"] for r in eps]))
        # The front's cost is its own entry only under a cost model other than BitOps.
        cost = float(np.mean([r.get("cost", r["bitops"]) for r in eps])) if "cost" in row else ops
        if not (
            np.isclose(acc, row["accuracy"], atol=1e-9)
            and np.isclose(ops, row["bitops"], rtol=1e-9)
            and np.isclose(cost, row.get("cost", ops), rtol=1e-9)
        ):
            errors.append(
                f"front row {row['agent']!r}: accuracy {row['accuracy']:.6f} at {row['bitops']:.0f} BitOps, "
                f"its episodes give {acc:.6f} at {ops:.0f}"
            )
    replayed_curves = _curve_errors(doc, ref, errors)
    return {"ok": not errors, "episodes": len(records) + replayed_curves, "errors": errors}


def _curve_errors(doc: dict, supernet: str, errors: list[str]) -> int:
    """Replay every curve's episodes (correctness, BitOps, cost; a point may run on another reward), check its points.

    Appends to ``errors``; returns the number of episodes replayed.
    """
    count = 0
    for curve in doc.get("curves", []):
        recs = curve["records"]
        if not recs:
            errors.append(f"curve {curve['name']!r} has no episodes")
            continue
        indices = np.array([r["index"] for r in recs], dtype=np.int64)
        bits = np.array([r["bits"] for r in recs], dtype=np.int64)
        correct, ops, _, cost = replay({**doc["env_kwargs"], "supernet": supernet}, doc["split"], indices, bits)
        for k, r in enumerate(recs):
            where = f"curve {curve['name']!r}, point {r['point']}, image {r['index']}"
            errors += episode_errors(where, r, correct[k], ops[k], 0.0, False, cost[k])
        for i, point in enumerate(curve["score"]["points"]):
            eps = [r for r in recs if r["point"] == i]
            acc = float(np.mean([r["correct"] for r in eps])) if eps else float("nan")
            cost = float(np.mean([r.get("cost_fraction", r["bitops_fraction"]) for r in eps])) if eps else float("nan")
            if not (np.isclose(acc, point["accuracy"], atol=1e-9) and np.isclose(cost, point["cost"], rtol=1e-9)):
                errors.append(
                    f"curve {curve['name']!r}, point {i}: accuracy {point['accuracy']:.6f} at cost "
                    f"{point['cost']:.6f}, its episodes give {acc:.6f} at {cost:.6f}"
                )
        count += len(recs)
    return count


def cost_model_errors(doc: dict, env_kwargs: dict) -> list[str]:
    """Whether the results' recorded ``cost_model`` is the one its env arguments price with here.

    A user's table is identified by its checksum: a table edited since the bench ran is reported.
    """
    recorded = doc.get("cost_model")
    if recorded is None:  # results made before cost models: BitOps
        return []
    cfg = make_config(**{k: tuple(v) if isinstance(v, list) else v for k, v in env_kwargs.items()})
    assert cfg.bit_choices is not None, "make_config resolves the bit-widths"
    here = table_of(cfg.supernet, cfg.bit_choices, cfg.cost_model).describe()
    if recorded != here:
        return [f"cost model: the results record {recorded}, their env arguments give {here} here"]
    return []
