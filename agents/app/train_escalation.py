"""Training of the escalation controller: ``abn-gym train-escalation``.

The controller (:mod:`agents.controllers.escalation`) runs every layer at ``low`` bits and, at
layer ``decide_at``, escalates the remaining layers to ``high`` bits when a small MLP predicts it
pays. This module fits that MLP: it collects rollouts of the train split both ways, labels each
input by whether escalating helps, hurts or changes nothing, fits the classifier, and reports the
result on val.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

import agents.controllers.escalation as controller
from abn_gym.config import build_engine, make_config
from abn_gym.registration import DEFAULT_ENV_ID
from agents.app.static_search import check_source_checkout
from agents.controllers.escalation import EscalationAgent, EscalationModel, escalation_env_kwargs, rest_cost_fraction
from agents.controllers.registry import shipped_policy
from supernets.data import check_count
from supernets.foundation.cliargs import add_command, arg, dataclass_from_args
from supernets.foundation.devices import check_device
from supernets.foundation.errors import UsageError
from supernets.foundation.files import atomic_torch_save, atomic_write_json, sha256
from supernets.registry import load_supernet_split, read_supernet_card, supernet_name


@dataclass
class EscalationArgs:
    """Arguments of ``abn-gym train-escalation``."""

    env: str = arg(DEFAULT_ENV_ID, "environment id (its supernet, actions and cost_coef are used)")
    supernet: str | None = arg(None, "supernet instead of the env's: a shipped name or a published card DIR/NAME.json")
    decide_at: int = arg(0, "layer whose observation decides, after a low-bit prefix (0: the stem's output)")
    low: int = arg(2, "bit-width of every layer when not escalated")
    high: int = arg(4, "bit-width of the layers from decide_at on when escalated")
    train_images: int = arg(20_000, "first N images of the train split used to fit the model")
    val_images: int = arg(5_000, "first N images of the val split used to report the result")
    hidden: int = arg(64, "hidden units of the MLP")
    epochs: int = arg(40, "passes over the training rollouts")
    lr: float = arg(1e-3, "Adam learning rate")
    cost_coef: float | None = arg(None, "BitOps price of the decision (default: the env's cost_coef)")
    seed: int = arg(0, "seed of the MLP's initialisation and batch order")
    out: str = arg("runs/escalation", "output folder: policy.pt and card.json")
    batch: int = arg(1000, "episodes computed together while collecting rollouts")
    device: str = arg("cpu", "torch device of the supernet during the rollouts: cpu or cuda (the MLP fits on cpu)")


@torch.inference_mode()
def rollouts(
    env_id: str,
    split: str,
    n: int,
    decide_at: int,
    low: int,
    high: int,
    batch: int = 1000,
    progress: bool = True,
    supernet: str | None = None,
    device: str = "cpu",
) -> dict[str, np.ndarray]:
    """Observations at ``decide_at`` after a ``low`` prefix, and each input's outcome both ways.

    Returns arrays over the first ``n`` images of ``split``: ``obs``, ``correct_low`` /
    ``correct_high`` (all-low, or low prefix then high), ``bitops_low`` / ``bitops_high``.
    ``supernet`` replaces the env's (a name or a card path); ``device`` is where the supernet runs.
    """
    kwargs = {"split": split, "sampling": "sequential", "budget": None, "device": device}
    cfg = make_config(**{**escalation_env_kwargs(env_id, supernet), **kwargs})
    for b in (low, high):
        if b not in cfg.bit_choices:
            raise UsageError(f"{b} bits is not an action of {env_id} (bit_choices={cfg.bit_choices})")
    a_low, a_high = cfg.bit_choices.index(low), cfg.bit_choices.index(high)
    out: dict[str, list[np.ndarray]] = {
        k: [] for k in ("obs", "correct_low", "correct_high", "bitops_low", "bitops_high")
    }
    engines: dict[int, Any] = {}
    bar = tqdm(total=n, desc=f"rollouts ({split})", unit="img", file=sys.stderr, disable=not progress, leave=False)
    for start in range(0, n, batch):
        m = min(batch, n - start)
        engine = engines.setdefault(m, build_engine(cfg, m))
        if start == 0 and not 0 <= decide_at < engine.num_layers:
            raise UsageError(f"decide_at={decide_at}: choose a layer in [0, {engine.num_layers})")
        obs = engine.reset(np.arange(start, start + m))
        for _ in range(decide_at):
            obs = engine.step(np.full(m, a_low)).obs
        out["obs"].append(obs.copy())
        snapshot = engine.get_state()
        for name, action in (("low", a_low), ("high", a_high)):
            engine.set_state(snapshot)
            while not engine.done:
                res = engine.step(np.full(m, action))
            out[f"correct_{name}"].append(res.correct.copy())
            out[f"bitops_{name}"].append(engine.episode_bitops())
        bar.update(m)
    bar.close()
    return {k: np.concatenate(v) for k, v in out.items()}


def outcome_classes(correct_low: np.ndarray, correct_high: np.ndarray) -> np.ndarray:
    """0 where escalating hurts, 1 where it changes nothing, 2 where it helps."""
    return (1 + correct_high.astype(np.int64) - correct_low.astype(np.int64)).astype(np.int64)


def fit(obs: np.ndarray, classes: np.ndarray, hidden: int, epochs: int, lr: float, seed: int) -> EscalationModel:
    """Fit the (hurts, same, helps) classifier with cross-entropy on standardised observations."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x = torch.as_tensor(obs, dtype=torch.float32)
    y = torch.as_tensor(classes)
    model = EscalationModel(x.shape[1], hidden)
    model.mean.copy_(x.mean(0))
    model.scale.copy_(x.std(0) + 1e-3)  # constant columns (the layer descriptor) stay finite
    opt = torch.optim.Adam(model.net.parameters(), lr=lr, weight_decay=1e-4)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), 256):
            rows = order[i : i + 256]
            loss = F.cross_entropy(model(x[rows]), y[rows])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()


def score_escalation(
    agent_policy: dict, data: dict[str, np.ndarray], cost_coef: float | None = None
) -> dict[str, float]:
    """Accuracy, mean BitOps and escalation rate of a policy on collected rollouts (no env needed)."""
    agent = EscalationAgent(agent_policy, cost_coef=cost_coef)
    up = agent.model.gain(data["obs"]) > agent.threshold
    correct = np.where(up, data["correct_high"], data["correct_low"])
    bitops = np.where(up, data["bitops_high"], data["bitops_low"])
    return {"accuracy": float(correct.mean()), "bitops": float(bitops.mean()), "escalated": float(up.mean())}


def train_escalation(args: EscalationArgs, command: str = "", progress: bool = True) -> Path:
    """Collect train rollouts, fit the model, report on val; writes ``policy.pt`` and ``card.json``."""
    check_device(args.device)
    cfg = make_config(**escalation_env_kwargs(args.env, args.supernet))
    cost_coef = cfg.cost_coef if args.cost_coef is None else float(args.cost_coef)
    if not args.low < args.high:
        raise UsageError(f"--low {args.low} must be below --high {args.high}")
    # Both counts are checked before any rollout: a user's split may be smaller than the defaults.
    for split, n, flag in (("train", args.train_images, "--train-images"), ("val", args.val_images, "--val-images")):
        check_count(n, split, len(load_supernet_split(cfg.supernet, split, cfg.data_dir)), flag)
    where = (args.batch, progress, args.supernet, args.device)
    train = rollouts(args.env, "train", args.train_images, args.decide_at, args.low, args.high, *where)
    model = fit(
        train["obs"],
        outcome_classes(train["correct_low"], train["correct_high"]),
        args.hidden,
        args.epochs,
        args.lr,
        args.seed,
    )
    supernet = supernet_name(cfg.supernet)  # a card path is recorded by the name inside it
    policy = {
        "kind": "escalation",
        "model": model.state_dict(),
        "obs_dim": model.obs_dim,
        "hidden": model.hidden,
        "decide_at": args.decide_at,
        "low": args.low,
        "high": args.high,
        "cost_coef": cost_coef,
        "rest_cost_fraction": rest_cost_fraction(args.env, args.decide_at, args.low, args.high, args.supernet),
        "env": args.env,
        "supernet": supernet,
    }
    out = Path(args.out)
    path = out / "policy.pt"
    atomic_torch_save(policy, path)
    val = rollouts(args.env, "val", args.val_images, args.decide_at, args.low, args.high, *where)
    result = score_escalation(policy, val)
    card = {
        "kind": "escalation",
        "env": args.env,
        "supernet": supernet,
        "supernet_sha256": read_supernet_card(cfg.supernet)["sha256"],
        # The env it belongs on: the id's arguments, with the supernet it was trained on when that is not the id's.
        "env_kwargs": {} if args.supernet is None else {"supernet": args.supernet},
        "sha256": sha256(path),
        "args": asdict(args),
        "command": command,
        "decision_macs_per_input": EscalationModel(model.obs_dim, model.hidden).macs,
        "val": {
            **result,
            "images": len(val["obs"]),
            "all_low_accuracy": float(val["correct_low"].mean()),
            "all_high_accuracy": float(val["correct_high"].mean()),
        },
    }
    atomic_write_json(out / "card.json", card)
    return path


def publish_escalation(run_dir: str | Path, env_id: str) -> Path:
    """Developer step: copy a trained policy and its card over ``agents/policies/escalation-<env id>``."""
    target = shipped_policy("escalation", env_id)
    check_source_checkout(target)
    card = json.loads((Path(run_dir) / "card.json").read_text())
    tmp = target.with_suffix(".pt.new")
    shutil.copyfile(Path(run_dir) / "policy.pt", tmp)
    tmp.replace(target)
    atomic_write_json(target.with_suffix(".json"), {**card, "file": target.name})
    return target


@dataclass
class EscalationCommand(EscalationArgs):
    """The options of ``abn-gym train-escalation``: the training's arguments, and what the command does after."""

    publish: bool = arg(False, "developer step: also ship it in agents/policies", action="store_true")
    progress: bool = arg(True, "hide progress bars", names=("--no-progress",), action="store_false")


def add_escalation_command(sub: argparse._SubParsersAction) -> None:
    """Register ``abn-gym train-escalation``."""
    add_command(
        sub,
        "train-escalation",
        EscalationCommand,
        _cmd_train_escalation,
        help="train the escalation controller (one learned decision per input: spend more bits or not)",
        description=(controller.__doc__ or "").split("\n\n")[1],
    )


def _cmd_train_escalation(ns: argparse.Namespace) -> int:
    command = dataclass_from_args(EscalationCommand, ns)
    args = dataclass_from_args(EscalationArgs, ns)
    path = train_escalation(args, ns.command_line, progress=command.progress)
    card = json.loads((path.parent / "card.json").read_text())
    v = card["val"]
    print(
        f"val ({v['images']} images): accuracy {100 * v['accuracy']:.2f}% at {v['bitops'] / 1e9:.4f} GBitOps, "
        f"{100 * v['escalated']:.1f}% of inputs escalated (all-{args.low} {100 * v['all_low_accuracy']:.2f}%, "
        f"escalating all {100 * v['all_high_accuracy']:.2f}%)"
    )
    on = f" --supernet {args.supernet}" if args.supernet else ""
    print(f"wrote {path}; benchmark it: abn-gym bench --env {args.env}{on} --agents fixed-{args.low},{path}")
    if command.publish:
        print(f"published {publish_escalation(path.parent, args.env)}")
    return 0
