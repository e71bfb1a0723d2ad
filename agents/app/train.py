"""Train an SB3 agent on the batched vector env; resumable, with checkpoints and a model card.

Reads top to bottom: environment, model (new or resumed), learning, evaluation on the val split,
model card; the arguments and their checks are in :mod:`agents.app.train_args`. Everything goes
into ``--out`` (default ``runs/ppo``); only ``--publish``, a developer step in a source checkout,
writes into ``agents/policies``.
One run, one folder: a folder that holds another run (other settings, with or without
checkpoints) is refused before anything is written. The same settings resume an interrupted
run from its last checkpoint; rerunning a finished command does nothing and says so; training
a finished run further takes a larger ``--timesteps``. ``--normalize-obs`` standardises the
observations (SB3 ``VecNormalize``, observations only); the statistics are saved beside every
checkpoint and beside ``model.zip`` (:mod:`agents.controllers.normalization`), hashed in the card, and
applied frozen wherever the model is loaded.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecNormalize
from tqdm import tqdm

from abn_gym.config import forget_supernets
from abn_gym.registration import DEFAULT_ENV_ID, env_kwargs
from abn_gym.sb3 import make_sb3_env
from agents.app.bench import run_agent
from agents.app.selection import KeepBestOnVal, kept_model, read_selection
from agents.app.static_search import check_source_checkout
from agents.app.train_args import (
    RESUMABLE,
    AgentTrainArgs,
    check_args,
    option_name,
    parse_algo_kwargs,
    parse_net_arch,
    train_overrides,
)
from agents.app.train_resume import (
    ExactCheckpoints,
    exact_for,
    load_state,
    load_zip_weights,
    restore,
    state_path,
    zip_data,
)
from agents.controllers.algorithms import algo_class, algorithm
from agents.controllers.normalization import ObsNormalizer, stats_path
from agents.controllers.safe_load import policy_spec
from agents.controllers.sb3_agent import SB3Agent, card_obs_norm
from agents.controllers.static_configs import POLICY_DIR
from supernets.foundation.errors import CheckpointError, OutputNotWritableError, UsageError
from supernets.foundation.files import atomic_write_json, output_lock, sha256, writing
from supernets.registry import read_supernet_card

NORMALIZE_CLIP = 10.0
"""VecNormalize's defaults: standardised observations are clipped to [-10, 10], variance + 1e-8."""
NORMALIZE_EPSILON = 1e-8


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
        self.close()

    def close(self) -> None:
        """End the bar's line (twice is harmless)."""
        if self.bar is not None:
            self.bar.close()


def checkpoint_steps(path: Path) -> int:
    """The step count in a checkpoint's name (``model_<steps>_steps.zip``)."""
    return int(re.search(r"_(\d+)_steps", path.name).group(1))


def latest_checkpoint(out: Path) -> Path | None:
    """The checkpoint zip with the most steps in ``out/checkpoints``: of those with a state file, when any has one.

    A checkpoint's state file is written last, so a checkpoint without one (killed while writing it, or of an
    older version) is used only when no checkpoint has one.
    """
    folder = out / "checkpoints"
    states = list(folder.glob("state_*_steps.pt"))
    if states:
        newest = max(states, key=checkpoint_steps)
        return folder / f"model_{checkpoint_steps(newest)}_steps.zip"
    ckpts = list(folder.glob("model_*_steps.zip"))
    if not ckpts:
        return None
    return max(ckpts, key=checkpoint_steps)


def learning_rate(args: AgentTrainArgs) -> float | LinearSchedule:
    """``--learning-rate`` under ``--lr-schedule``: SB3 calls a schedule with the fraction of the run left.

    SB3 measures progress as the steps done over the run's total, both counted from the run's start, so
    a resumed run's learning rate continues where its checkpoint stopped.
    """
    if args.lr_schedule == "linear":
        return LinearSchedule(args.learning_rate, 0.0, 1.0)
    return args.learning_rate


def make_model(args: AgentTrainArgs, env):
    """A new SB3 model with the arguments' hyper-parameters."""
    cls, family = algo_class(args.algo), algorithm(args.algo).family
    arch = parse_net_arch(args.net_arch)
    common = dict(
        learning_rate=learning_rate(args),
        gamma=args.gamma,
        seed=args.seed,
        device=args.device,
        verbose=0,
        policy_kwargs={"net_arch": arch},
    )
    if family == "ppo":
        common.update(n_steps=args.n_steps, batch_size=args.batch_size, n_epochs=args.n_epochs, ent_coef=args.ent_coef)
    elif family == "a2c":
        common.update(n_steps=args.n_steps, ent_coef=args.ent_coef)
    elif family == "trpo":
        common.update(n_steps=args.n_steps, batch_size=args.batch_size)
    else:  # the DQN family
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
    if algorithm(args.algo).recurrent:
        policy = policy.replace("Policy", "LstmPolicy")
    extra = parse_algo_kwargs(args)
    policy = extra.pop("policy", policy)
    common.update(extra)
    return cls(policy, env, **common)


def evaluate_on_val(model, args: AgentTrainArgs, episodes: int, obs_norm: ObsNormalizer | None = None) -> dict:
    """Accuracy, BitOps and return of the deterministic policy on the first val images.

    ``obs_norm``: the frozen observation statistics the model is evaluated with (None: its own
    ``VecNormalize``'s, frozen now, if it trains with one).
    """
    agent = SB3Agent(model, args.algo, obs_norm=obs_norm)
    # Scored on the id's own reward: --reward and --cost-coef are training signals only, as in the bench.
    records = run_agent(agent, args.env, "val", episodes, seed=args.seed, progress=False)
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
    """The settings a run in ``out`` started with: its run.json, else its card.json's (None if neither).

    A setting the run did not record (it predates the option) has the option's default.
    """
    fixed = run_settings(AgentTrainArgs())
    if (out / "run.json").is_file():
        found = json.loads((out / "run.json").read_text())["settings"]
    elif (out / "card.json").is_file():
        found = {k: v for k, v in read_run_card(out).get("args", {}).items() if k in fixed}
    else:
        return None
    return {**fixed, **found}


def model_settings(data: dict[str, Any], algo: str) -> dict[str, Any]:
    """The settings a saved model holds itself (for runs that recorded none): from its zip's plain JSON entries."""
    found: dict[str, Any] = {k: data[v] for k, v in (("gamma", "gamma"), ("seed", "seed"), ("num_envs", "n_envs"))}
    if isinstance(data.get("learning_rate"), float):
        found["learning_rate"] = data["learning_rate"]
    arch = (data.get("policy_kwargs") or {}).get("net_arch")
    if isinstance(arch, list) and all(isinstance(x, int) for x in arch):
        found["net_arch"] = ",".join(map(str, arch))
    a = algorithm(algo)
    if a.family in ("ppo", "a2c") and not a.recurrent:
        found.update(n_steps=data["n_steps"], ent_coef=data["ent_coef"])
    if a.family == "ppo" and not a.recurrent:
        found.update(batch_size=data["batch_size"], n_epochs=data["n_epochs"])
    return {k: v for k, v in found.items() if v is not None}


def check_resume(args: AgentTrainArgs, original: dict[str, Any], where: Path) -> None:
    """Refuse to resume a run with settings other than its own, naming each that differs."""
    given = run_settings(args)
    differ = [
        f"{option_name(k)} {given[k]!r} (the run has {v!r})"
        for k, v in original.items()
        if k in given and given[k] != v
    ]
    if differ:
        raise UsageError(
            f"{where} holds another run, with other settings: you gave {'; '.join(differ)}. Its files are left "
            "as they are: repeat the run's settings to resume or extend it, or choose another --out."
        )


def _tensorboard_dir(out: Path) -> str | None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        print("note: tensorboard is not installed, so no TensorBoard logs (pip install tensorboard)", file=sys.stderr)
        return None
    print(f"TensorBoard logs: tensorboard --logdir {out / 'tensorboard'}", file=sys.stderr)
    return str(out / "tensorboard")


def read_run_card(run_dir: str | Path) -> dict[str, Any]:
    """The model card (card.json) of a finished training run."""
    return json.loads((Path(run_dir) / "card.json").read_text())


def plan_run(args: AgentTrainArgs, out: Path) -> tuple[str, Path | None, ObsNormalizer | None]:
    """What to do in ``out``, decided before anything is written: ("new" | "resume" | "finished", model, stats).

    Refuses a folder that holds another run (other settings, or a model without a card), and a
    finished run asked for fewer steps than it was trained for.
    """
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder; choose another --out")
    saved = saved_settings(out)
    ckpt = latest_checkpoint(out) if out.is_dir() else None
    if saved is not None:
        check_resume(args, saved, out)
    elif ckpt is None and (out / "model.zip").is_file():  # with checkpoints, the model's own settings are checked
        raise UsageError(
            f"{out} holds a model.zip without the card.json or run.json of `abn-gym train`, so whether it is this "
            "run cannot be told; its files are left as they are: choose another --out"
        )
    if (out / "card.json").is_file():
        card = read_run_card(out)
        steps = int(card["timesteps"])
        asked = int(card.get("args", {}).get("timesteps", steps))
        if args.timesteps < asked:
            raise UsageError(
                f"{out} holds a finished run of {steps} steps (--timesteps {asked}); --timesteps {args.timesteps} "
                f"asks for fewer, and a run is not untrained: give more than {steps} to train it further, or "
                "choose another --out"
            )
        if args.timesteps <= steps:
            return "finished", out / "model.zip", None
        if ckpt is None or checkpoint_steps(ckpt) <= steps:  # else an interrupted extension: its checkpoint is newer
            model = out / "model.zip"
            if card.get("sha256") is not None and sha256(model) != card["sha256"]:
                raise CheckpointError(
                    f"{model} does not match the sha256 in {out / 'card.json'}; it cannot be extended"
                )
            return "resume", model, card_obs_norm(model, out / "card.json", card)
    if ckpt is None:
        return "new", None, None
    start = state_path(ckpt) if state_path(ckpt).is_file() else ckpt  # the state: an exact resume
    if args.normalize_obs:
        return "resume", start, ObsNormalizer.load(stats_path(ckpt))
    return "resume", start, None


def train_agent(args: AgentTrainArgs, command: str = "", callbacks: list[BaseCallback] | None = None) -> Path:
    """Train (or resume, or extend) and write model.zip and card.json into ``args.out``; returns model.zip.

    Every argument and the folder are checked before anything is trained or written. Rerunning a
    finished command returns its model.zip untouched.

    ``callbacks`` are SB3 callbacks added to the progress bar and the checkpoints (e.g. the zoo's val curve).
    """
    check_args(args)
    if args.publish:
        check_source_checkout(POLICY_DIR)
    with output_lock(args.out):  # one run per folder: a second is refused while this one runs
        return _train(args, command, callbacks)


def _resume(model: Any, start: Path, args: AgentTrainArgs, out: Path) -> tuple[dict[str, Any] | None, list[dict]]:
    """Put a checkpoint (its state file: exact) or a model zip (weights only: not exact) into ``model``.

    Returns the keep-best state to restore, and the run's resumes with this one appended.
    """
    if start.suffix == ".pt":
        if saved_settings(out) is None:  # a run that recorded no settings: check them against its checkpoint zip
            zipped = start.with_name(start.name.replace("state_", "model_", 1).removesuffix(".pt") + ".zip")
            check_resume(args, model_settings(zip_data(zipped), args.algo), out)
        state = load_state(start)
        restore(model, state)
        exact = exact_for(args.algo)
        return state["keep_best"], [*state["resumes"], {"from": model.num_timesteps, "exact": exact}]
    data = zip_data(start)
    if saved_settings(out) is None:
        check_resume(args, model_settings(data, args.algo), out)
    load_zip_weights(model, start)
    model.num_timesteps = int(data.get("num_timesteps", 0))
    if start.name == "model.zip":  # trained further: a new stretch of the run, not a resume after a crash
        return None, list(read_run_card(out).get("resumes", []))
    return None, [{"from": model.num_timesteps, "exact": False}]


def _train(args: AgentTrainArgs, command: str, callbacks: list[BaseCallback] | None) -> Path:
    out = Path(args.out)
    action, start, obs_norm = plan_run(args, out)
    model_path = out / "model.zip"
    if action == "finished":
        card = read_run_card(out)
        print(
            f"{out} already holds this run, finished at {card['timesteps']} steps: nothing to do "
            "(a larger --timesteps trains it further)",
            file=sys.stderr,
        )
        if args.publish:
            publish_policy(out, f"{args.algo}-{args.env}")
        return model_path
    forget_supernets()  # this run's random stream must not depend on the runs before it in the process
    overrides = train_overrides(args)
    env = make_sb3_env(args.env, num_envs=args.num_envs, seed=args.seed, **overrides)
    if args.normalize_obs:
        # Observations only: the reward is the env's own, so returns stay comparable across runs.
        env = VecNormalize(
            env, norm_obs=True, norm_reward=False, clip_obs=NORMALIZE_CLIP, gamma=args.gamma, epsilon=NORMALIZE_EPSILON
        )
        if obs_norm is not None:
            obs_norm.restore_into(env)

    model = make_model(args, env)
    keep_state: dict[str, Any] | None = None
    resumes: list[dict[str, Any]] = []
    if start is not None:
        keep_state, resumes = _resume(model, start, args, out)
        how = "exactly" if start.suffix == ".pt" and resumes[-1]["exact"] else "not exactly (see the training guide)"
        print(f"resuming from {start} at {model.num_timesteps} steps, {how}", file=sys.stderr)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputNotWritableError(f"--out {out} cannot be created ({exc.strerror}); choose another folder") from None
    if start is None:
        atomic_write_json(out / "run.json", {"settings": run_settings(args), "command": command})
    model.tensorboard_log = _tensorboard_dir(out)
    remaining = args.timesteps - model.num_timesteps
    if remaining > 0:
        keep = None
        if args.keep_best_every:
            keep = KeepBestOnVal(args.algo, args.env, args.keep_best_every, args.eval_episodes or 5000, out, args.seed)
            keep.restored = keep_state
            callbacks = [*(callbacks or []), keep]
        bar = TqdmCallback(args.timesteps)
        callbacks = [
            *(callbacks or []),
            bar,
            ExactCheckpoints(args.checkpoint_every, out / "checkpoints", keep, resumes),
        ]
        try:
            model.learn(remaining, callback=callbacks, reset_num_timesteps=start is None, tb_log_name=args.algo)
        finally:  # an error's line must not land on the progress bar's
            bar.close()
        if keep is not None:
            keep.prune()
    final_norm, norm_entry, selected = None, None, None
    if args.keep_best_every:
        kept, trained = kept_model(out), model.num_timesteps
        if kept is not None:  # the best policy on val becomes model.zip; the card keeps the steps trained
            load_zip_weights(model, kept[0])
            model.num_timesteps = trained
            if kept[1] is not None:
                kept[1].restore_into(env)
            selected = read_selection(out)
    if args.normalize_obs:
        final_norm = ObsNormalizer.from_vecnormalize(env)
        norm_path = stats_path(model_path)
        norm_entry = {"file": norm_path.name, "sha256": final_norm.save(norm_path)}
    tmp = out / "model.tmp.zip"
    with writing(model_path):
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
        "obs_norm": norm_entry,
        "policy": policy_spec(model, args.algo),  # what bench rebuilds the model from, unpickling nothing
        "selected_on_val": selected,
        "resumes": resumes,  # [{"from": steps, "exact": bool}] of each resume after an interruption
        "val": evaluate_on_val(model, args, args.eval_episodes, final_norm) if args.eval_episodes else None,
    }
    atomic_write_json(out / "card.json", card)  # last: it marks the run finished
    if args.publish:
        publish_policy(out, f"{args.algo}-{args.env}")
    return model_path


def bench_command(card: dict[str, Any], model_path: Path) -> str:
    """The ``abn-gym bench`` command that ranks a trained model on the test split, on the env it was trained on."""
    env = "" if card["env"] == DEFAULT_ENV_ID else f" --env {card['env']}"
    return f"abn-gym bench{env} --agents {model_path},fixed-4,static-4,fixed-8 --out {model_path.parent / 'bench'}"


def publish_policy(run_dir: str | Path, stem: str) -> Path:
    """Developer step: copy a finished run's model.zip and card.json to agents/policies/<stem>.{zip,json}."""
    run_dir = Path(run_dir)
    check_source_checkout(POLICY_DIR / f"{stem}.zip")
    target = POLICY_DIR / f"{stem}.zip"
    with writing(target):
        POLICY_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run_dir / "model.zip", target.with_suffix(".zip.tmp"))
        target.with_suffix(".zip.tmp").replace(target)
    card = json.loads((run_dir / "card.json").read_text())
    card["file"] = target.name
    if card.get("obs_norm"):
        norm_target = stats_path(target)
        with writing(norm_target):
            shutil.copyfile(run_dir / card["obs_norm"]["file"], norm_target.with_name(norm_target.name + ".tmp"))
            norm_target.with_name(norm_target.name + ".tmp").replace(norm_target)
        card["obs_norm"] = {**card["obs_norm"], "file": norm_target.name}
    atomic_write_json(target.with_suffix(".json"), card)
    return target
