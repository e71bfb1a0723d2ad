"""The arguments of ``abn-gym train`` (:class:`AgentTrainArgs`) and their checks.

Every argument is checked before anything is trained or written, each mistake with one message
that names the option and the fix (:func:`check_args`). :func:`train_overrides` turns the
arguments that change the env into the env's keyword arguments.
"""

from __future__ import annotations

import inspect
import json
import math
from dataclasses import dataclass
from typing import Any

from abn_gym.registration import DEFAULT_ENV_ID, env_kwargs
from agents.controllers.algorithms import ALGOS, algo_class, algorithm
from supernets.foundation.cliargs import arg
from supernets.foundation.devices import check_device
from supernets.foundation.errors import UsageError

LR_SCHEDULES = ("constant", "linear")
"""The learning-rate schedules of ``--lr-schedule``."""


@dataclass
class AgentTrainArgs:
    """Arguments of ``abn-gym train``."""

    algo: str = arg("ppo", "SB3 / sb3-contrib algorithm", choices=ALGOS)
    env: str = arg(DEFAULT_ENV_ID, "environment id")
    timesteps: int = arg(
        200_000,
        "total environment steps to train for. SB3 stops at the first whole rollout at or past it (a multiple of "
        "n_steps x num_envs for PPO/A2C/TRPO, of num_envs for DQN), so a few more may run: the card records the "
        "steps that ran. On a finished run, a larger value trains it further",
    )
    seed: int = arg(0, "seed of the model and the environments")
    out: str = arg("runs/ppo", "run directory: checkpoints/, model.zip, card.json, tensorboard/")
    num_envs: int = arg(64, "sub-envs of the native batched env")
    learning_rate: float = arg(3e-4, "optimizer learning rate")
    lr_schedule: str = arg(
        "constant",
        "learning-rate schedule: constant, or linear from --learning-rate down to 0 at --timesteps (rl-zoo3's "
        "lin_<lr>); a resumed run stays on the line, a run trained further follows the line to its new --timesteps",
        choices=LR_SCHEDULES,
    )
    n_steps: int = arg(
        72, "rollout length per sub-env (PPO/A2C); a multiple of the decisions per episode keeps them whole"
    )
    batch_size: int = arg(1152, "minibatch size (PPO/DQN)")
    n_epochs: int = arg(4, "PPO epochs per rollout")
    ent_coef: float = arg(0.01, "entropy bonus (PPO/A2C)")
    gamma: float = arg(1.0, "discount: episodes are 18 steps, so no discounting by default")
    net_arch: str = arg("64,64", "hidden layer sizes of policy and value nets, comma-separated")
    algo_kwargs: str | None = arg(None, 'more algorithm arguments as a JSON object, e.g. {"gae_lambda": 0.9}')
    normalize_obs: bool = arg(
        False,
        "standardise observations with running statistics (SB3 VecNormalize, observations only); the statistics "
        "are saved beside the model and applied, frozen, wherever it is loaded",
    )
    decide_at: str | None = arg(
        None, "decide only at these layers, comma-separated from 0, e.g. 0,7,13 (env option decide_at; default: all)"
    )
    group_size: int = arg(1, "K consecutive sub-envs share an image, group-relative terminal reward (training only)")
    budget: str | None = arg(
        None, "Budget ids: the BitOps budget (fraction of all-8), or low,high drawn per episode, e.g. 0.1,0.45"
    )
    keep_best_every: int = arg(
        0,
        "every this many steps, score the policy on --eval-episodes val images and keep the one with the largest "
        "gap to the static mixtures as model.zip (agents/app/selection.py); 0 keeps the last",
    )
    cost_coef: float | None = arg(
        None,
        "train on another BitOps price (default: the id's cost_coef); like --reward a training signal only: the "
        "model is scored and benchmarked on the id's reward",
    )
    reward: str | None = arg(None, "train on another reward, e.g. logprob (default: the id's); eval uses the id's")
    checkpoint_every: int = arg(
        50_000,
        "save a checkpoint every this many steps, between two rollouts; the same command resumes from the last one, "
        "exactly (see docs/guides/training.md)",
    )
    eval_episodes: int = arg(5000, "val-split episodes for the model card (0 to skip)")
    device: str = arg("cpu", "torch device of the policy")
    publish: bool = arg(
        False, "developer step: also copy model and card over the shipped agents/policies/<algo>-<env> policy"
    )


RESUMABLE = ("timesteps", "out", "checkpoint_every", "eval_episodes", "device", "publish")
"""Settings that may change when a run resumes; every other one is fixed when the run starts."""


def option_name(name: str) -> str:
    """The command-line option of an argument, e.g. ``--num-envs`` for ``num_envs``."""
    return "--" + name.replace("_", "-")


def parse_net_arch(text: str) -> list[int]:
    """Hidden layer sizes from ``--net-arch`` ("64,64"; "" for none)."""
    sizes = [x.strip() for x in text.split(",") if x.strip()]
    if not all(x.isdigit() and int(x) > 0 for x in sizes):
        raise UsageError(f"--net-arch takes comma-separated positive layer sizes, e.g. 64,64; got {text!r}")
    return [int(x) for x in sizes]


def parse_algo_kwargs(args: AgentTrainArgs) -> dict[str, Any]:
    """``--algo-kwargs`` as a dict, every key an argument of the algorithm's class (or ``policy``)."""
    if not args.algo_kwargs:
        return {}
    try:
        extra = json.loads(args.algo_kwargs)
    except json.JSONDecodeError:
        extra = None
    if not isinstance(extra, dict):
        raise UsageError(f"--algo-kwargs must be a JSON object, got {args.algo_kwargs!r}")
    cls = algo_class(args.algo)
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "env", "_init_setup_model"}
    unknown = sorted(set(extra) - accepted)
    if unknown:
        raise UsageError(
            f"--algo-kwargs: {cls.__name__} ({args.algo}) has no argument {', '.join(map(repr, unknown))}; "
            f"its arguments are {sorted(accepted)}"
        )
    return extra


def check_args(args: AgentTrainArgs) -> None:
    """Refuse arguments that cannot train, each with one message naming the option and the fix."""
    if args.algo not in ALGOS:
        raise UsageError(f"unknown algo {args.algo!r}; choose one of {list(ALGOS)}")
    at_least = {"timesteps": 1, "num_envs": 1, "n_steps": 1, "batch_size": 1, "n_epochs": 1, "checkpoint_every": 1}
    for name, low in {**at_least, "group_size": 1, "eval_episodes": 0, "keep_best_every": 0}.items():
        if getattr(args, name) < low:
            raise UsageError(f"{option_name(name)} must be at least {low}, got {getattr(args, name)}")
    if not (math.isfinite(args.learning_rate) and args.learning_rate > 0):
        raise UsageError(f"--learning-rate must be a positive number, got {args.learning_rate}")
    if args.lr_schedule not in LR_SCHEDULES:
        raise UsageError(f"--lr-schedule must be one of {list(LR_SCHEDULES)}, got {args.lr_schedule!r}")
    if not args.ent_coef >= 0:
        raise UsageError(f"--ent-coef must be at least 0, got {args.ent_coef}")
    if not 0 <= args.gamma <= 1:
        raise UsageError(f"--gamma must be in [0, 1], got {args.gamma}")
    parse_net_arch(args.net_arch)
    parse_algo_kwargs(args)
    check_device(args.device, auto=True)
    kwargs = env_kwargs(args.env, **train_overrides(args))
    if algorithm(args.algo).masked and kwargs.get("budget") is None:
        raise UsageError(
            f"--algo {args.algo} needs action masks, and {args.env} has none (no BitOps budget); use a Budget id "
            "such as ABN-ResNet-Budget-v0, or another --algo"
        )


def train_overrides(args: AgentTrainArgs) -> dict:
    """Environment arguments the training run changes from the id's registered ones."""
    out: dict = {}
    if args.cost_coef is not None:
        out["cost_coef"] = args.cost_coef
    if args.reward is not None:
        out["reward"] = args.reward
    if args.decide_at is not None:
        try:
            out["decide_at"] = tuple(int(x) for x in args.decide_at.split(",") if x.strip())
        except ValueError:
            raise UsageError(
                f"--decide-at takes comma-separated layer indices, e.g. 0,7,13; got {args.decide_at!r}"
            ) from None
    if args.group_size != 1:
        out["group_size"] = args.group_size
    if args.budget is not None:
        try:
            values = [float(x) for x in args.budget.split(",")]
        except ValueError:
            raise UsageError(
                f"--budget takes a fraction or low,high, e.g. 0.25 or 0.1,0.45; got {args.budget!r}"
            ) from None
        out["budget"] = values[0] if len(values) == 1 else tuple(values)
    return out
