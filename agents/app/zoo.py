"""`abn-gym zoo`: every SB3 / sb3-contrib algorithm that fits the action space, several seeds, one table.

Reads top to bottom: the hyper-parameter file, the table of runs, one run (train, then score the
final policy), running the table locally or as Ray tasks, and the report (learning curves,
leaderboards with rliable's IQM over seeds).

- Hyper-parameters live in ``agents/hyperparams/zoo.yml``: one section per algorithm (named as
  rl-zoo3 names it), each an rl-zoo3 hyper-parameter file keyed by env id.
  ``--export-rl-zoo3 DIR`` writes the sections as rl-zoo3's one-file-per-algorithm layout.
- Each run trains with :func:`agents.app.train.train_agent` (checkpoints, resuming, model card) and
  records the deterministic policy's val return every ``timesteps / curve_points`` env steps.
- Resumable: a finished run (its ``result.json``) is skipped; an interrupted one resumes from its
  last checkpoint. Every file is written atomically.
- ``--ray local`` (or a cluster address) runs each training as a Ray task with one CPU.

Everything goes into ``--out`` (default ``results/zoo``)::

    runs/<env>/<algo>/seed-<s>/   model.zip, card.json, curve.json, records-<split>-<n>.json, result.json
    curves.csv, curves-<env>.png  val return against env steps, mean and 95% interval over seeds
    leaderboard-<env>.{csv,md}    baselines and each algorithm's final policies (IQM over seeds)
    zoo.md, summary.json          everything above in one page
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from supernets.foundation.cliargs import dataclass_from_args
from supernets.foundation.errors import UsageError
from supernets.foundation.files import atomic_write_bytes, atomic_write_json, atomic_write_text

HYPERPARAMS = Path(__file__).resolve().parent.parent / "hyperparams" / "zoo.yml"
RL_ZOO3_ALGOS = {
    "ppo": "ppo",
    "a2c": "a2c",
    "dqn": "dqn",
    "qrdqn": "qrdqn",
    "trpo": "trpo",
    "ppo_lstm": "recurrent-ppo",
    "ppo_mask": "maskable-ppo",
}
"""Section name in zoo.yml (rl-zoo3's ``--algo`` name) -> abn-gym's ``--algo`` name."""
NOT_IN_RL_ZOO3 = ("ppo_mask",)
"""Sections rl-zoo3 has no algorithm for: only ``abn-gym zoo`` trains them."""
ZOO_KEYS = ("n_timesteps", "policy", "n_envs", "normalize")
"""rl-zoo3's own keys; every other key of a section is a keyword argument of the algorithm."""
NORMALIZE_OBS = "{'norm_obs': True, 'norm_reward': False}"
"""The ``normalize`` value that turns on ``abn-gym train --normalize-obs``: rl-zoo3 reads this string as
VecNormalize's arguments, so both normalise the observations and leave the rewards as they are."""
RL_ZOO3_ONLY_KEYS = (
    "env_wrapper",
    "vec_env_wrapper",
    "frame_stack",
    "callback",
    "env_kwargs",
    "eval_env_kwargs",
    "normalize_kwargs",
)
"""rl-zoo3 keys that ``abn-gym zoo`` does not implement: refused rather than ignored."""
DEFAULT_BASELINES = (
    "random",
    "fixed-2",
    "fixed-3",
    "fixed-4",
    "fixed-5",
    "fixed-8",
    "static-3",
    "static-4",
    "static-5",
)


class ZooConfigError(UsageError):
    """The zoo's hyper-parameter file cannot be used; the message names the section and key."""


# hyper-parameters -----------------------------------------------------------------------------
def load_hyperparams(path: str | Path = HYPERPARAMS) -> dict[str, dict[str, dict[str, Any]]]:
    """zoo.yml as ``{rl-zoo3 algo: {env id: hyper-parameters}}``, each section checked."""
    path = Path(path)
    try:
        conf = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ZooConfigError(f"cannot read the zoo's hyper-parameters {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ZooConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(conf, dict) or not conf:
        raise ZooConfigError(f"{path}: expected one section per algorithm, e.g. `ppo: {{ABN-ResNet-v0: {{...}}}}`")
    for algo, section in conf.items():
        if algo not in RL_ZOO3_ALGOS:
            raise ZooConfigError(f"{path}: unknown algorithm section {algo!r}; known: {', '.join(RL_ZOO3_ALGOS)}")
        if not isinstance(section, dict) or not section:
            raise ZooConfigError(f"{path}: section {algo!r} must map env ids to hyper-parameters")
        for env_id, hp in section.items():
            check_section(algo, env_id, hp, where=str(path))
    return conf


def check_section(algo: str, env_id: str, hp: Any, where: str = "zoo.yml") -> None:
    """Check one rl-zoo3 entry: a known env id, the zoo keys, and keyword arguments the algorithm has."""
    from abn_gym.registration import env_kwargs
    from agents.controllers.sb3_agent import algo_class

    env_kwargs(env_id)  # an unknown id raises, listing the known ones
    if not isinstance(hp, dict):
        raise ZooConfigError(f"{where}: {algo}/{env_id} must be a mapping of hyper-parameters")
    missing = [k for k in ("n_timesteps", "policy") if k not in hp]
    if missing:
        raise ZooConfigError(f"{where}: {algo}/{env_id} lacks {', '.join(missing)} (rl-zoo3 requires them)")
    for key in ("n_timesteps", "n_envs"):
        value = hp.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 1:
            raise ZooConfigError(f"{where}: {algo}/{env_id}: {key} must be a positive whole number, got {value!r}")
    normalize_obs(hp, f"{where}: {algo}/{env_id}")
    refused = [k for k in hp if k in RL_ZOO3_ONLY_KEYS]
    if refused:
        raise ZooConfigError(f"{where}: {algo}/{env_id}: abn-gym zoo does not implement rl-zoo3's {refused}")
    cls = algo_class(RL_ZOO3_ALGOS[algo])
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "env"}
    unknown = [k for k in hp if k not in ZOO_KEYS and k not in accepted]
    if unknown:
        raise ZooConfigError(
            f"{where}: {algo}/{env_id}: {cls.__name__} has no argument {', '.join(map(repr, unknown))}"
        )
    if hp["policy"] not in getattr(cls, "policy_aliases", {}):
        raise ZooConfigError(
            f"{where}: {algo}/{env_id}: policy {hp['policy']!r} is not one of {cls.__name__}'s "
            f"{sorted(getattr(cls, 'policy_aliases', {}))}"
        )


def normalize_obs(hp: dict[str, Any], where: str = "zoo.yml") -> bool:
    """Whether a section's rl-zoo3 ``normalize`` key asks for observation normalisation (checked).

    ``false`` (or no key) is off; :data:`NORMALIZE_OBS` (rl-zoo3's string of VecNormalize arguments) is on.
    ``true`` is refused: rl-zoo3 would then normalise the rewards too, which abn-gym's training does not.
    """
    import ast

    value = hp.get("normalize", False)
    if value is False:
        return False
    fix = f'write normalize: "{NORMALIZE_OBS}" (observations only, as rl-zoo3 reads it too) or normalize: false'
    if value is True:
        raise ZooConfigError(
            f"{where}: normalize: true also normalises rewards in rl-zoo3, which abn-gym does not; {fix}"
        )
    try:
        kwargs = ast.literal_eval(value) if isinstance(value, str) else None
    except (ValueError, SyntaxError):
        kwargs = None
    if kwargs != {"norm_obs": True, "norm_reward": False}:
        raise ZooConfigError(f"{where}: normalize {value!r} is not supported; {fix}")
    return True


def export_rl_zoo3(conf: dict[str, dict], out: str | Path) -> list[Path]:
    """Write each section to ``out/<algo>.yml``: rl-zoo3's layout, for ``rl_zoo3.train --conf-file``."""
    out = Path(out)
    paths = []
    for algo, section in conf.items():
        head = f"# {algo} hyper-parameters exported from abn-gym's zoo.yml by `abn-gym zoo --export-rl-zoo3`\n"
        if algo in NOT_IN_RL_ZOO3:
            head += "# rl-zoo3 has no such algorithm; kept for reference\n"
        plain = json.loads(json.dumps(section))  # entries shared through YAML aliases are written out in full
        atomic_write_text(out / f"{algo}.yml", head + yaml.safe_dump(plain, sort_keys=False))
        paths.append(out / f"{algo}.yml")
    return paths


# the table of runs ----------------------------------------------------------------------------
@dataclass
class ZooArgs:
    """Arguments of ``abn-gym zoo``."""

    out: str = "results/zoo"
    conf: str = str(HYPERPARAMS)
    algos: list[str] = field(default_factory=list)
    envs: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    timesteps: int | None = None
    curve_points: int = 8
    eval_episodes: int = 1000
    split: str = "test"
    episodes: int | None = None
    baselines: list[str] = field(default_factory=lambda: list(DEFAULT_BASELINES))
    reference: str = "fixed-4"
    ray: str | None = None
    progress: bool = True
    command: str = ""


def plan(args: ZooArgs, conf: dict[str, dict]) -> list[dict[str, Any]]:
    """Every (algorithm, env, seed) run the arguments ask for, as picklable specs."""
    wanted = {RL_ZOO3_ALGOS.get(a, a) for a in args.algos}
    unknown = wanted - set(RL_ZOO3_ALGOS.values())
    if unknown:
        raise UsageError(
            f"--algos: unknown {sorted(unknown)}; choose from {', '.join(RL_ZOO3_ALGOS)} "
            f"(or abn-gym's names {', '.join(RL_ZOO3_ALGOS.values())})"
        )
    if not args.seeds:
        raise UsageError("--seeds: give at least one seed")
    out = Path(args.out).resolve()
    specs = []
    for zoo_algo, section in conf.items():
        algo = RL_ZOO3_ALGOS[zoo_algo]
        if wanted and algo not in wanted:
            continue
        for env_id, hp in section.items():
            if args.envs and env_id not in args.envs:
                continue
            timesteps = int(args.timesteps if args.timesteps is not None else hp["n_timesteps"])
            for seed in args.seeds:
                specs.append(
                    {
                        "algo": algo,
                        "zoo_algo": zoo_algo,
                        "env": env_id,
                        "seed": int(seed),
                        "hyperparams": json.loads(json.dumps(hp)),  # a copy: YAML aliases share entries
                        "timesteps": timesteps,
                        "run_dir": str(out / "runs" / env_id / algo / f"seed-{seed}"),
                        "eval_every": max(timesteps // max(args.curve_points, 1), 1),
                        "eval_episodes": int(args.eval_episodes),
                        "split": args.split,
                        "episodes": args.episodes,
                        "command": args.command,
                        "log_to_file": False,
                    }
                )
    if not specs:
        raise UsageError(
            f"no runs: {args.conf} has no entry for --algos {args.algos or 'all'} on --envs {args.envs or 'all'}"
        )
    return specs


def train_args(spec: dict[str, Any]):
    """The :class:`agents.app.train.AgentTrainArgs` of one run: the section's kwargs go in as ``algo_kwargs``."""
    from agents.app.train import AgentTrainArgs

    hp = {k: v for k, v in spec["hyperparams"].items() if k not in ("n_timesteps", "n_envs", "normalize")}
    n_envs = int(spec["hyperparams"].get("n_envs", 1))
    return AgentTrainArgs(
        algo=spec["algo"],
        env=spec["env"],
        timesteps=spec["timesteps"],
        seed=spec["seed"],
        out=spec["run_dir"],
        num_envs=n_envs,
        algo_kwargs=json.dumps(hp, sort_keys=True),
        checkpoint_every=max(spec["timesteps"] // 3, n_envs),
        normalize_obs=normalize_obs(spec["hyperparams"]),
        eval_episodes=spec["eval_episodes"],
    )


def _same_hyperparams(a: dict, b: dict) -> bool:
    return {k: v for k, v in a.items() if k != "n_timesteps"} == {k: v for k, v in b.items() if k != "n_timesteps"}


def finished(spec: dict[str, Any]) -> dict | None:
    """The run's result.json if it finished with these hyper-parameters and at least its steps, else None.

    A finished run with other hyper-parameters is refused: its folder holds another experiment.
    """
    path = Path(spec["run_dir"]) / "result.json"
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    if not _same_hyperparams(result["hyperparams"], spec["hyperparams"]):
        raise UsageError(
            f"{spec['run_dir']} holds a finished {spec['zoo_algo']} run with other hyper-parameters; "
            "use another --out, or delete that folder to retrain it"
        )
    return result if result["timesteps"] >= spec["timesteps"] else None


# one run -------------------------------------------------------------------------------------
def records_name(split: str, episodes: int | None) -> str:
    """File name of a run's scored episodes on ``split``."""
    return f"records-{split}-{'all' if episodes is None else episodes}.json"


def _pack(records: list[dict]) -> dict[str, list]:
    keys = ("index", "bits", "bitops", "bitops_fraction", "correct", "reward", "decision_macs")
    return {k: [r[k] for r in records] for k in keys}


def _unpack(packed: dict[str, list], agent: str, seed: int) -> list[dict]:
    keys = list(packed)
    return [{"agent": agent, "seed": seed, **dict(zip(keys, row))} for row in zip(*packed.values())]


def evaluate(agent: Any, env_id: str, split: str, episodes: int | None, seed: int = 0) -> dict[str, float]:
    """Mean return, accuracy and BitOps fraction of ``agent`` on the first images of ``split``."""
    from agents.app.bench import run_agent

    records = run_agent(agent, env_id, split, episodes, seed=seed, progress=False)
    return {
        "reward": float(np.mean([r["reward"] for r in records])),
        "accuracy": float(np.mean([r["correct"] for r in records])),
        "bitops_fraction": float(np.mean([r["bitops_fraction"] for r in records])),
    }


def val_curve_callback(spec: dict[str, Any]):
    """An SB3 callback that scores the deterministic policy on val every ``eval_every`` steps.

    The points go to ``curve.json`` (atomically) as they come; a resumed run keeps the points up
    to its checkpoint and continues from there.
    """
    from stable_baselines3.common.callbacks import BaseCallback

    from agents.controllers.sb3_agent import SB3Agent

    path = Path(spec["run_dir"]) / "curve.json"

    class ValCurve(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.points: list[dict[str, float]] = []
            self.next_eval = 0

        def _evaluate(self) -> None:
            agent = SB3Agent(self.model, spec["algo"])
            point = {"timesteps": int(self.num_timesteps)}
            point.update(evaluate(agent, spec["env"], "val", spec["eval_episodes"]))
            self.points.append(point)
            self.next_eval = self.num_timesteps + spec["eval_every"]
            atomic_write_json(path, {"split": "val", "eval_episodes": spec["eval_episodes"], "points": self.points})

        def _on_training_start(self) -> None:
            if path.is_file():
                old = json.loads(path.read_text())["points"]
                self.points = [p for p in old if p["timesteps"] <= self.num_timesteps]
            if self.points:
                self.next_eval = self.points[-1]["timesteps"] + spec["eval_every"]
            else:
                self._evaluate()  # the untrained policy: where every curve starts

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next_eval:
                self._evaluate()
            return True

    return ValCurve()


def train_run(spec: dict[str, Any]) -> dict[str, Any]:
    """Train one run (or resume it, or skip it when finished), then score its final policy on ``split``.

    Returns ``{"result": ..., "files": {name: bytes}}``: the files let a driver on another machine
    keep the model, its card, curve and scored episodes (a Ray cluster without a shared disk).
    """
    import torch

    from agents.app.bench import run_agent
    from agents.app.train import read_run_card, train_agent
    from agents.controllers.sb3_agent import SB3Agent

    torch.set_num_threads(1)
    run_dir = Path(spec["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    log = open(run_dir / "train.log", "a") if spec["log_to_file"] else None  # noqa: SIM115
    with contextlib.redirect_stderr(log) if log else contextlib.nullcontext():
        result = finished(spec)
        if result is None:
            curve = val_curve_callback(spec)
            train_agent(train_args(spec), command=spec["command"], callbacks=[curve])
            card = read_run_card(run_dir)
            points = list(curve.points)
            if card["val"] is not None and (not points or points[-1]["timesteps"] < card["timesteps"]):
                points.append(
                    {"timesteps": card["timesteps"], **{k: card["val"][k] for k in points[0] if k in card["val"]}}
                )
                atomic_write_json(
                    run_dir / "curve.json", {"split": "val", "eval_episodes": spec["eval_episodes"], "points": points}
                )
            result = {
                "algo": spec["algo"],
                "rl_zoo3_algo": spec["zoo_algo"],
                "env": spec["env"],
                "seed": spec["seed"],
                "timesteps": card["timesteps"],
                "hyperparams": spec["hyperparams"],
                "val": card["val"],
                "curve": points,
                "train_wall_s": time.perf_counter() - t0,
            }
        name = records_name(spec["split"], spec["episodes"])
        if not (run_dir / name).is_file():
            agent = SB3Agent.load(run_dir / "model.zip", spec["algo"], spec["algo"])
            records = run_agent(agent, spec["env"], spec["split"], spec["episodes"], seed=spec["seed"], progress=False)
            atomic_write_json(run_dir / name, _pack(records))
    if log:
        log.close()
    atomic_write_json(run_dir / "result.json", result)  # last: it marks the run finished
    names = ["model.zip", "card.json", "curve.json", name, "result.json"]
    if (run_dir / "model.obs_norm.json").is_file():  # --normalize-obs: the statistics travel with the model
        names.insert(1, "model.obs_norm.json")
    files = {n: (run_dir / n).read_bytes() for n in names}
    return {"result": result, "files": files}


def _keep_files(spec: dict[str, Any], files: dict[str, bytes]) -> None:
    """Write a run's returned files into its folder (a no-op change when the worker shared the disk)."""
    run_dir = Path(spec["run_dir"])
    for name in sorted(files, key=lambda n: n == "result.json"):  # result.json last: it marks the run done
        path = run_dir / name
        if not path.is_file() or path.read_bytes() != files[name]:
            atomic_write_bytes(path, files[name])


# running the table ----------------------------------------------------------------------------
def _run_local(todo: list[dict], progress: bool) -> None:
    for i, spec in enumerate(todo, 1):
        print(f"[{i}/{len(todo)}] {spec['algo']} on {spec['env']}, seed {spec['seed']}", file=sys.stderr, flush=True)
        out = train_run({**spec, "log_to_file": not progress})
        val = out["result"]["val"] or {}
        print(
            f"  done: {out['result']['timesteps']} steps, val return {val.get('reward', float('nan')):.4f}",
            file=sys.stderr,
            flush=True,
        )


def _run_ray(todo: list[dict], address: str, progress: bool) -> None:
    """Each run as a Ray task with one CPU; results come back as they finish."""
    from tqdm import tqdm

    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs Ray: pip install 'abn-gym[ray]' (Ray core)") from None
    started = not ray.is_initialized()
    if started:
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        ray.init(address=None if address == "local" else address, **kwargs)
    try:
        task = ray.remote(num_cpus=1)(train_run)
        pending = {task.remote({**spec, "log_to_file": True}): spec for spec in todo}
        bar = tqdm(total=len(todo), desc="zoo (ray)", unit="run", file=sys.stderr, disable=not progress)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            spec = pending.pop(ready[0])
            out = ray.get(ready[0])
            _keep_files(spec, out["files"])
            bar.set_postfix_str(f"{spec['algo']} {spec['env']} seed {spec['seed']}", refresh=False)
            bar.update(1)
        bar.close()
    finally:
        if started:
            ray.shutdown()


# the report ----------------------------------------------------------------------------------
def seed_interval(values: np.ndarray, reps: int = 2000, level: float = 0.95, seed: int = 0) -> tuple:
    """Mean over seeds (rows) and a percentile-bootstrap interval over seeds, per column."""
    values = np.asarray(values, dtype=np.float64)
    mean = values.mean(axis=0)
    if len(values) < 2:
        return mean, mean.copy(), mean.copy()
    rng = np.random.default_rng(seed)
    boot = values[rng.integers(0, len(values), (reps, len(values)))].mean(axis=1)
    lo, hi = np.percentile(boot, [100 * (1 - level) / 2, 100 * (1 + level) / 2], axis=0)
    return mean, lo, hi


def curve_table(results: list[dict]) -> list[dict]:
    """One row per (env, algo, seed, point) of the val curves."""
    return [{"env": r["env"], "algo": r["algo"], "seed": r["seed"], **p} for r in results for p in r["curve"]]


def curves_plot(results: list[dict], env_id: str, path: Path, references: dict[str, float] | None = None) -> Path:
    """Val return against env steps on one task: per algorithm the mean over seeds and its 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    algos = sorted({r["algo"] for r in results if r["env"] == env_id})
    for algo in algos:
        runs = [r for r in results if r["env"] == env_id and r["algo"] == algo]
        grid = np.array([p["timesteps"] for p in runs[0]["curve"]], dtype=float)
        ys = np.stack(
            [np.interp(grid, [p["timesteps"] for p in r["curve"]], [p["reward"] for p in r["curve"]]) for r in runs]
        )
        mean, lo, hi = seed_interval(ys)
        (line,) = ax.plot(grid, mean, label=f"{algo} ({len(runs)} seeds)")
        ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.2)
    for name, value in (references or {}).items():
        ax.axhline(value, ls="--", lw=1, color="grey")
        ax.annotate(name, (0, value), fontsize=7, color="grey", xytext=(2, 2), textcoords="offset points")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("val return per episode (deterministic policy)")
    ax.set_title(f"{env_id}: learning curves (mean and 95% bootstrap interval over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=130, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


def _baseline_records(name: str, env_id: str, ctx: Any, split: str, episodes: int | None, cache: Path) -> list[dict]:
    """A baseline's scored episodes, cached in ``cache`` so a rerun does not recompute them."""
    from agents.app.bench import run_agent
    from agents.controllers.registry import make_agent

    path = cache / _fingerprint(env_id, ctx, name) / f"{name}-{records_name(split, episodes)}"
    if path.is_file():
        return _unpack(json.loads(path.read_text()), name, 0)
    records = run_agent(make_agent(name, ctx, progress=False), env_id, split, episodes, seed=0, progress=False)
    atomic_write_json(path, _pack(records))
    return records


def _fingerprint(env_id: str, ctx: Any, name: str) -> str:
    """What a cached baseline's episodes depend on: the env's arguments, the supernet and a static config.

    A cache made under another ``cost_coef``, checkpoint or static search is never reused.
    """
    import hashlib

    from abn_gym.registration import env_kwargs
    from agents.controllers.static_configs import shipped_path
    from supernets.registry import read_supernet_card

    key = {"env_kwargs": env_kwargs(env_id), "supernet_sha256": read_supernet_card(ctx.supernet)["sha256"]}
    static = shipped_path(ctx.supernet)
    if name.startswith("static-") and static.is_file():
        key["static"] = hashlib.sha256(static.read_bytes()).hexdigest()
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _static_shipped(ctx: Any) -> bool:
    from agents.controllers.static_configs import load_shipped
    from supernets.registry import read_supernet_card

    return load_shipped(ctx.supernet, read_supernet_card(ctx.supernet)["sha256"], ctx.bit_choices) is not None


def env_report(env_id: str, results: list[dict], args: ZooArgs, out: Path) -> dict[str, Any]:
    """Leaderboard (baselines + each algorithm, IQM over seeds) and learning curves of one task."""
    import pandas as pd

    from abn_gym.registration import env_kwargs
    from abn_gym.vector import ABNVectorEnv
    from agents.app.bench import add_paired, format_markdown, leaderboard
    from agents.app.plots import pareto_plot
    from agents.controllers.registry import BenchContext

    probe = ABNVectorEnv(1, **env_kwargs(env_id, split=args.split))
    ctx = BenchContext(env_id, probe.config.supernet, probe.bit_choices)
    cache = out / "baselines" / env_id
    names = [n for n in args.baselines if not n.startswith("static-") or _static_shipped(ctx)]
    skipped = sorted(set(args.baselines) - set(names))
    records: list[dict] = []
    meta: dict[str, dict] = {}
    for name in names:
        t0 = time.perf_counter()
        records += _baseline_records(name, env_id, ctx, args.split, args.episodes, cache)
        meta[name] = {"uses_label": name == "oracle", "wall_s": time.perf_counter() - t0}
    runs = [r for r in results if r["env"] == env_id]
    for algo in sorted({r["algo"] for r in runs}):
        mine = sorted((r for r in runs if r["algo"] == algo), key=lambda r: r["seed"])
        for r in mine:
            packed = json.loads((Path(r["run_dir"]) / records_name(args.split, args.episodes)).read_text())
            records += _unpack(packed, algo, r["seed"])
        meta[algo] = {
            "uses_label": False,
            "wall_s": float(np.mean([r["train_wall_s"] for r in mine])),
            "seeds_run": [r["seed"] for r in mine],
        }
    table = leaderboard(records, meta, probe.engine.max_bitops)
    if args.reference in meta:
        table = add_paired(table, records, args.reference)
    stem = f"leaderboard-{env_id}"
    atomic_write_text(out / f"{stem}.csv", table.to_csv(index=False))
    markdown = format_markdown(table)
    atomic_write_text(out / f"{stem}.md", markdown + "\n")
    pareto_plot(table, out / f"pareto-{env_id}.png", title=f"{env_id}: zoo on {args.split}")
    # The best fixed bit-width on val, drawn across the learning curves as the bar to clear.
    refs = {}
    fixed = [f"fixed-{b}" for b in probe.bit_choices]
    vals = {n: _val_score(n, env_id, ctx, args.eval_episodes, cache) for n in fixed}
    best = max(vals, key=vals.get)
    refs[f"{best} (best fixed on val)"] = vals[best]
    curves_plot(runs, env_id, out / f"curves-{env_id}.png", refs)
    return {
        "env": env_id,
        "rows": json.loads(pd.DataFrame(table).to_json(orient="records")),
        "markdown": markdown,
        "skipped_baselines": skipped,
        "val_references": vals,
    }


def _val_score(name: str, env_id: str, ctx: Any, episodes: int, cache: Path) -> float:
    recs = _baseline_records(name, env_id, ctx, "val", episodes, cache)
    return float(np.mean([r["reward"] for r in recs]))


def compact_markdown(reports: list[dict], results: list[dict], args: ZooArgs) -> str:
    """One row per (task, algorithm): the learned rows of every leaderboard, beside the best baseline's reward."""
    lines = [
        f"| task | algorithm | steps | {args.split} accuracy % (IQM, 95% CI) | GBitOps | gap to static front, points "
        "(paired 95% CI) | return (IQM, 95% CI) | best baseline's return | train s / run |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for rep in reports:
        rows = {row["agent"]: row for row in rep["rows"]}
        base = [rows[n] for n in args.baselines if n in rows and not rows[n]["uses_label"]]
        best = max(base, key=lambda r: r["reward"])
        for algo in sorted({r["algo"] for r in results if r["env"] == rep["env"]}):
            row = rows[algo]
            steps = int(np.mean([r["timesteps"] for r in results if r["env"] == rep["env"] and r["algo"] == algo]))
            front = row.get("front") or {}
            gap = "-"
            if front.get("accuracy_gap") is not None:
                lo, hi = front["accuracy_gap_ci"]
                gap = f"{100 * front['accuracy_gap']:+.2f} ({100 * lo:+.2f} to {100 * hi:+.2f}) vs {front['against']}"
            lines.append(
                f"| {rep['env']} | {algo} | {steps} | {100 * row['accuracy']:.2f} ({100 * row['accuracy_ci'][0]:.2f}-"
                f"{100 * row['accuracy_ci'][1]:.2f}) | {row['bitops'] / 1e9:.3f} | {gap} | {row['reward']:.4f} "
                f"({row['reward_ci'][0]:.4f}-{row['reward_ci'][1]:.4f}) | {best['reward']:.4f} ({best['agent']}) | "
                f"{row['wall_s']:.0f} |"
            )
    return "\n".join(lines)


def write_report(args: ZooArgs, specs: list[dict], out: Path, wall_s: float) -> dict[str, Any]:
    """curves.csv, per-task leaderboards and curves, zoo.md and summary.json."""
    import pandas as pd

    results = []
    for spec in specs:
        result = json.loads((Path(spec["run_dir"]) / "result.json").read_text())
        results.append({**result, "run_dir": spec["run_dir"], "eval_episodes": spec["eval_episodes"]})
    atomic_write_text(out / "curves.csv", pd.DataFrame(curve_table(results)).to_csv(index=False))
    envs = list(dict.fromkeys(r["env"] for r in results))
    reports = [env_report(env_id, results, args, out) for env_id in envs]
    compact = compact_markdown(reports, results, args)
    atomic_write_text(out / "zoo-summary.md", compact + "\n")
    lines = [
        "# abn-gym zoo",
        "",
        compact,
        "",
        f"`{args.command or 'abn-gym zoo'}`: {len(results)} runs; leaderboards on the {args.split} split "
        f"({'all' if args.episodes is None else args.episodes} images), learned rows are rliable's IQM over seeds "
        f"with a 95% bootstrap interval over seeds; learning curves on the first {args.eval_episodes} val images. "
        "`wall s` is the mean training time per run for learned rows, the scoring time for baselines.",
        "",
    ]
    for rep in reports:
        env_id = rep["env"]
        lines += [f"## {env_id}", "", rep["markdown"], "", f"![learning curves](curves-{env_id}.png)", ""]
        if rep["skipped_baselines"]:
            lines += [
                f"Not run: {', '.join(rep['skipped_baselines'])} (no shipped static search for this supernet).",
                "",
            ]
    atomic_write_text(out / "zoo.md", "\n".join(lines))
    summary = {
        "command": args.command,
        "args": {k: v for k, v in asdict(args).items() if k != "command"},
        "wall_s": wall_s,
        "runs": [{k: v for k, v in r.items() if k not in ("run_dir",)} for r in results],
        "leaderboards": [{k: v for k, v in rep.items() if k != "markdown"} for rep in reports],
    }
    atomic_write_json(out / "summary.json", summary)
    return summary


def zoo(args: ZooArgs) -> dict[str, Any]:
    """Train every run of the table that is not finished, then write the report into ``args.out``."""
    t0 = time.perf_counter()
    if args.curve_points < 1 or args.eval_episodes < 1:
        raise UsageError("--curve-points and --eval-episodes must be at least 1")
    if args.timesteps is not None and args.timesteps < 1:
        raise UsageError(
            f"--timesteps {args.timesteps}: give a positive number of env steps per run, or leave it out to use "
            "each section's n_timesteps"
        )
    if args.reference not in args.baselines:
        raise UsageError(
            f"--reference {args.reference!r} must be one of the --baselines: {', '.join(args.baselines) or 'none'}"
        )
    conf = load_hyperparams(args.conf)
    specs = plan(args, conf)
    todo = [s for s in specs if finished(s) is None]
    out = Path(args.out)
    print(
        f"zoo: {len(specs)} runs ({len(specs) - len(todo)} finished, {len(todo)} to train) into {out}"
        + (f" as Ray tasks on {args.ray}" if args.ray and todo else ""),
        file=sys.stderr,
        flush=True,
    )
    if args.ray:
        _run_ray(todo, args.ray, args.progress)
    else:
        _run_local(todo, args.progress)
    for spec in specs:  # finished runs whose scored episodes on this split are missing
        if not (Path(spec["run_dir"]) / records_name(args.split, args.episodes)).is_file():
            train_run(spec)
    print("zoo: scoring baselines and writing the report", file=sys.stderr, flush=True)
    return write_report(args, specs, out, time.perf_counter() - t0)


# command line --------------------------------------------------------------------------------
def _list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _ints(text: str) -> list[int]:
    try:
        return [int(t) for t in _list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def add_zoo_command(sub: argparse._SubParsersAction) -> None:
    """Register ``abn-gym zoo``."""
    d = ZooArgs()
    p = sub.add_parser(
        "zoo",
        help="train every SB3 algorithm of agents/hyperparams/zoo.yml on several seeds, with curves and leaderboards",
        description="Train the algorithm zoo (hyper-parameters in rl-zoo3's format, agents/hyperparams/zoo.yml), "
        "record val learning curves, and put each final policy on a leaderboard with rliable's IQM over seeds. "
        "Resumable: rerunning skips finished runs and resumes interrupted ones.",
    )
    p.add_argument("--out", default=d.out, help=f"output folder (default: {d.out})")
    p.add_argument("--conf", default=d.conf, help="hyper-parameter file (default: the shipped zoo.yml)")
    p.add_argument("--algos", type=_list, default=[], help="comma-separated algorithms (default: every section)")
    p.add_argument("--envs", type=_list, default=[], help="comma-separated env ids (default: every id in the file)")
    p.add_argument("--seeds", type=_ints, default=d.seeds, help="comma-separated training seeds (default: 0,1,2)")
    p.add_argument("--timesteps", type=int, default=None, help="override every n_timesteps (for quick runs)")
    p.add_argument("--curve-points", type=int, default=d.curve_points, help="val evaluations per run (default: 8)")
    p.add_argument("--eval-episodes", type=int, default=d.eval_episodes, help="val images per evaluation")
    p.add_argument("--split", default=d.split, choices=("train", "val", "test"), help="leaderboard split")
    p.add_argument("--episodes", type=int, default=None, help="leaderboard images (default: the whole split)")
    p.add_argument("--baselines", type=_list, default=d.baselines, help="comma-separated baseline agents")
    p.add_argument(
        "--reference", default=d.reference, help="baseline the paired differences are taken against (default: fixed-4)"
    )
    p.add_argument(
        "--ray",
        default=None,
        metavar="ADDRESS",
        help="run each training as a Ray task: 'local' starts Ray on this machine, else a cluster address "
        "(ray://host:10001 or auto; --out should then be on a disk every node shares)",
    )
    p.add_argument(
        "--export-rl-zoo3", metavar="DIR", default=None, help="write rl-zoo3's per-algorithm files, and exit"
    )
    p.add_argument("--json", action="store_true", help="print exactly one JSON object (the summary) on stdout")
    p.add_argument("--no-progress", action="store_true", help="hide training progress bars")
    p.set_defaults(func=cmd_zoo)


def cmd_zoo(ns: argparse.Namespace) -> int:
    """abn-gym zoo."""
    if ns.export_rl_zoo3:
        for path in export_rl_zoo3(load_hyperparams(ns.conf), ns.export_rl_zoo3):
            print(path)
        return 0
    args = dataclass_from_args(ZooArgs, ns, progress=not ns.no_progress, command=getattr(ns, "command_line", ""))
    summary = zoo(args)
    if ns.json:
        print(json.dumps(summary))
        return 0
    for rep in summary["leaderboards"]:
        print(f"\n{rep['env']}\n")
        print((Path(args.out) / f"leaderboard-{rep['env']}.md").read_text())
    print(f"wrote {args.out}/zoo.md, summary.json, curves.csv, leaderboard-<env>.{{csv,md}}, curves-<env>.png")
    return 0


__all__: Sequence[str] = ("HYPERPARAMS", "ZooArgs", "add_zoo_command", "export_rl_zoo3", "load_hyperparams", "zoo")
