"""Train an SB3 agent on the batched vector env; resumable, with checkpoints and a model card.

Reads top to bottom: arguments, environment, model (new or resumed), learning, evaluation on
the val split, model card. Everything goes into ``--out`` (default ``runs/ppo``); only
``--publish``, a developer step in a source checkout, writes into ``agents/policies``.
A run resumes when its folder holds checkpoints; its settings are then the run's own (only
``--timesteps`` and the other :data:`RESUMABLE` options may change), else it is refused.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback
from tqdm import tqdm

from abn_gym.registration import env_kwargs
from abn_gym.sb3 import make_sb3_env
from agents.sb3_agent import ALGOS, RECURRENT, algo_class
from agents.static_search import POLICY_DIR, check_source_checkout
from supernets.checkpoint import atomic_write_json, sha256
from supernets.cliargs import arg
from supernets.errors import UsageError
from supernets.registry import read_card as read_supernet_card


@dataclass
class AgentTrainArgs:
    """Arguments of ``abn-gym train``."""

    algo: str = arg("ppo", f"SB3 algorithm, one of {list(ALGOS)}")
    env: str = arg("ABN-ResNet-v0", "environment id")
    timesteps: int = arg(200_000, "total environment steps to train for")
    seed: int = arg(0, "seed of the model and the environments")
    out: str = arg("runs/ppo", "run directory: checkpoints/, model.zip, card.json, tensorboard/")
    num_envs: int = arg(64, "sub-envs of the native batched env")
    learning_rate: float = arg(3e-4, "optimizer learning rate")
    n_steps: int = arg(72, "rollout length per sub-env (PPO/A2C); a multiple of 18 keeps episodes whole")
    batch_size: int = arg(1152, "minibatch size (PPO/DQN)")
    n_epochs: int = arg(4, "PPO epochs per rollout")
    ent_coef: float = arg(0.01, "entropy bonus (PPO/A2C)")
    gamma: float = arg(1.0, "discount: episodes are 18 steps, so no discounting by default")
    net_arch: str = arg("64,64", "hidden layer sizes of policy and value nets, comma-separated")
    algo_kwargs: str | None = arg(None, 'more algorithm arguments as a JSON object, e.g. {"gae_lambda": 0.9}')
    cost_coef: float | None = arg(None, "override the env's cost_coef (default: the id's)")
    reward: str | None = arg(None, "train on another reward, e.g. logprob (default: the id's); eval uses the id's")
    checkpoint_every: int = arg(50_000, "save a checkpoint every this many steps")
    eval_episodes: int = arg(5000, "val-split episodes for the model card (0 to skip)")
    device: str = arg("cpu", "torch device of the policy")
    publish: bool = arg(
        False, "developer step: also copy model and card over the shipped agents/policies/<algo>-<env> policy"
    )


RESUMABLE = ("timesteps", "out", "checkpoint_every", "eval_episodes", "device", "publish")
"""Settings that may change when a run resumes; every other one is fixed when the run starts."""


class TqdmCallback(BaseCallback):
    """A tqdm progress bar over environment steps (resumes from the model's step count).

    After each rollout it shows the mean return of the last 100 finished episodes.
    """

    def __init__(self, total: int) -> None:
        super().__init__()
        self.total = total
        self.bar: tqdm | None = None

    def _on_training_start(self) -> None:
        self.bar = tqdm(
            total=self.total,
            initial=self.model.num_timesteps,
            unit="step",
            desc="train",
            file=sys.stderr,
            dynamic_ncols=True,
        )

    def _on_step(self) -> bool:
        self.bar.update(self.training_env.num_envs)
        return True

    def _on_rollout_end(self) -> None:
        episodes = self.model.ep_info_buffer
        if episodes:
            self.bar.set_postfix({"return": f"{np.mean([e['r'] for e in episodes]):.4f}"}, refresh=False)

    def _on_training_end(self) -> None:
        self.bar.close()


def train_overrides(args: AgentTrainArgs) -> dict:
    """Environment arguments the training run changes from the id's registered ones."""
    out: dict = {}
    if args.cost_coef is not None:
        out["cost_coef"] = args.cost_coef
    if args.reward is not None:
        out["reward"] = args.reward
    return out


def latest_checkpoint(out: Path) -> Path | None:
    """The checkpoint with the most steps in ``out/checkpoints``."""
    ckpts = list((out / "checkpoints").glob("model_*_steps.zip"))
    if not ckpts:
        return None
    return max(ckpts, key=lambda p: int(re.search(r"_(\d+)_steps", p.name).group(1)))


def make_model(args: AgentTrainArgs, env):
    """A new SB3 model with the arguments' hyper-parameters."""
    cls = algo_class(args.algo)
    arch = [int(x) for x in args.net_arch.split(",") if x]
    common = dict(
        learning_rate=args.learning_rate,
        gamma=args.gamma,
        seed=args.seed,
        device=args.device,
        verbose=0,
        policy_kwargs={"net_arch": arch},
    )
    if args.algo in ("ppo", "maskable-ppo", "recurrent-ppo"):
        common.update(n_steps=args.n_steps, batch_size=args.batch_size, n_epochs=args.n_epochs, ent_coef=args.ent_coef)
    elif args.algo == "a2c":
        common.update(n_steps=args.n_steps, ent_coef=args.ent_coef)
    elif args.algo == "trpo":
        common.update(n_steps=args.n_steps, batch_size=args.batch_size)
    else:  # dqn, qrdqn
        common.update(
            batch_size=min(args.batch_size, 256),
            buffer_size=200_000,
            learning_starts=1000,
            train_freq=1,
            gradient_steps=1,
            target_update_interval=2000,
            exploration_fraction=0.3,
        )
    policy = "MultiInputPolicy" if isinstance(env.observation_space, spaces.Dict) else "MlpPolicy"
    if args.algo in RECURRENT:
        policy = policy.replace("Policy", "LstmPolicy")
    if args.algo_kwargs:
        try:
            extra = json.loads(args.algo_kwargs)
        except json.JSONDecodeError:
            extra = None
        if not isinstance(extra, dict):
            raise UsageError(f"--algo-kwargs must be a JSON object, got {args.algo_kwargs!r}")
        policy = extra.pop("policy", policy)
        common.update(extra)
    return cls(policy, env, **common)


def evaluate_on_val(model, args: AgentTrainArgs, episodes: int) -> dict:
    """Accuracy, BitOps and return of the deterministic policy on the first val images."""
    from agents.bench import run_agent
    from agents.sb3_agent import SB3Agent

    agent = SB3Agent(model, args.algo)
    overrides = {} if args.cost_coef is None else {"cost_coef": args.cost_coef}  # scored on the id's reward
    records = run_agent(agent, args.env, "val", episodes, seed=args.seed, env_overrides=overrides, progress=False)
    return {
        "split": "val",
        "episodes": len(records),
        "accuracy": float(np.mean([r["correct"] for r in records])),
        "bitops": float(np.mean([r["bitops"] for r in records])),
        "bitops_fraction": float(np.mean([r["bitops_fraction"] for r in records])),
        "reward": float(np.mean([r["reward"] for r in records])),
        "decision_macs": float(np.mean([r["decision_macs"] for r in records])),
    }


def run_settings(args: AgentTrainArgs) -> dict[str, Any]:
    """The settings fixed when a run starts (every argument but the :data:`RESUMABLE` ones)."""
    return {k: v for k, v in asdict(args).items() if k not in RESUMABLE}


def saved_settings(out: Path) -> dict[str, Any] | None:
    """The settings a run in ``out`` started with: its run.json, else its card.json's (None if neither)."""
    if (out / "run.json").is_file():
        return json.loads((out / "run.json").read_text())["settings"]
    if (out / "card.json").is_file():
        fixed = run_settings(AgentTrainArgs())
        return {k: v for k, v in read_card(out).get("args", {}).items() if k in fixed}
    return None


def model_settings(model: Any, algo: str) -> dict[str, Any]:
    """The settings a saved model holds itself (for runs that recorded none)."""
    found: dict[str, Any] = {"gamma": model.gamma, "seed": model.seed, "num_envs": model.n_envs}
    if isinstance(model.learning_rate, float):
        found["learning_rate"] = model.learning_rate
    arch = (model.policy_kwargs or {}).get("net_arch")
    if isinstance(arch, list) and all(isinstance(x, int) for x in arch):
        found["net_arch"] = ",".join(map(str, arch))
    if algo in ("ppo", "maskable-ppo", "a2c"):
        found.update(n_steps=model.n_steps, ent_coef=model.ent_coef)
    if algo in ("ppo", "maskable-ppo"):
        found.update(batch_size=model.batch_size, n_epochs=model.n_epochs)
    return found


def check_resume(args: AgentTrainArgs, original: dict[str, Any], where: Path) -> None:
    """Refuse to resume a run with settings other than its own, naming each that differs."""
    given = run_settings(args)
    differ = [
        f"--{k.replace('_', '-')} {given[k]!r} (the run has {v!r})"
        for k, v in original.items()
        if k in given and given[k] != v
    ]
    if differ:
        raise UsageError(
            f"{where} holds a run with other settings, and resuming keeps the run's own: you gave "
            f"{'; '.join(differ)}. Repeat the run's settings to resume it, or start a new run with another --out."
        )


def _tensorboard_dir(out: Path) -> str | None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        print("note: tensorboard is not installed, so no TensorBoard logs (pip install tensorboard)", file=sys.stderr)
        return None
    print(f"TensorBoard logs: tensorboard --logdir {out / 'tensorboard'}", file=sys.stderr)
    return str(out / "tensorboard")


def read_card(run_dir: str | Path) -> dict[str, Any]:
    """The model card (card.json) of a finished training run."""
    return json.loads((Path(run_dir) / "card.json").read_text())


def train_agent(args: AgentTrainArgs, command: str = "", callbacks: list[BaseCallback] | None = None) -> Path:
    """Train (or resume) and write model.zip and card.json into ``args.out``; returns model.zip.

    ``callbacks`` are SB3 callbacks added to the progress bar and the checkpoints (e.g. the zoo's val curve).
    """
    if args.algo not in ALGOS:
        raise UsageError(f"unknown algo {args.algo!r}; choose one of {list(ALGOS)}")
    if args.publish:
        check_source_checkout(POLICY_DIR)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    resume = latest_checkpoint(out)
    saved = saved_settings(out)
    if resume is not None and saved is not None:
        check_resume(args, saved, out)
    overrides = train_overrides(args)
    env = make_sb3_env(args.env, num_envs=args.num_envs, seed=args.seed, **overrides)

    if resume is not None:
        model = algo_class(args.algo).load(str(resume), env=env, device=args.device)
        if saved is None:
            check_resume(args, model_settings(model, args.algo), out)
        print(f"resuming from {resume} at {model.num_timesteps} steps", file=sys.stderr)
    else:
        model = make_model(args, env)
        atomic_write_json(out / "run.json", {"settings": run_settings(args), "command": command})
    model.tensorboard_log = _tensorboard_dir(out)
    remaining = args.timesteps - model.num_timesteps
    if remaining > 0:
        callbacks = [
            *(callbacks or []),
            TqdmCallback(args.timesteps),
            CheckpointCallback(
                max(args.checkpoint_every // args.num_envs, 1), str(out / "checkpoints"), name_prefix="model"
            ),
        ]
        model.learn(remaining, callback=callbacks, reset_num_timesteps=resume is None, tb_log_name=args.algo)
    model_path = out / "model.zip"
    tmp = out / "model.tmp.zip"
    model.save(str(tmp))
    tmp.replace(model_path)
    kwargs = env_kwargs(args.env, **overrides)
    card = {
        "algo": args.algo,
        "env": args.env,
        "env_kwargs": kwargs,
        "supernet": kwargs.get("supernet", "resnet20-fashionmnist"),
        "supernet_sha256": read_supernet_card(kwargs.get("supernet", "resnet20-fashionmnist"))["sha256"],
        "seed": args.seed,
        "timesteps": int(model.num_timesteps),
        "args": asdict(args),
        "command": command,
        "sha256": sha256(model_path),
        "val": evaluate_on_val(model, args, args.eval_episodes) if args.eval_episodes else None,
    }
    atomic_write_json(out / "card.json", card)
    if args.publish:
        publish_policy(out, f"{args.algo}-{args.env}")
    return model_path


def publish_policy(run_dir: str | Path, stem: str) -> Path:
    """Developer step: copy a finished run's model.zip and card.json to agents/policies/<stem>.{zip,json}."""
    run_dir = Path(run_dir)
    check_source_checkout(POLICY_DIR / f"{stem}.zip")
    POLICY_DIR.mkdir(parents=True, exist_ok=True)
    target = POLICY_DIR / f"{stem}.zip"
    shutil.copyfile(run_dir / "model.zip", target.with_suffix(".zip.tmp"))
    target.with_suffix(".zip.tmp").replace(target)
    card = json.loads((run_dir / "card.json").read_text())
    card["file"] = target.name
    atomic_write_json(target.with_suffix(".json"), card)
    return target
