"""The zoo's table of runs: its arguments, one frozen spec per (algorithm, env, seed), and what is finished."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.app.train_args import AgentTrainArgs
from agents.app.zoo.hyperparams import HYPERPARAMS, NORMALIZE_OBS, normalize_obs
from agents.controllers.algorithms import RL_ZOO3_ALGOS
from supernets.data import SPLITS
from supernets.foundation.cliargs import arg
from supernets.foundation.errors import UsageError

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


@dataclass
class ZooArgs:
    """Arguments of ``abn-gym zoo``."""

    out: str = arg("results/zoo", "output folder")
    conf: str = arg(str(HYPERPARAMS), "hyper-parameter file (default: the shipped zoo.yml)")
    algos: list[str] = arg([], "comma-separated algorithms (default: every section)")
    envs: list[str] = arg([], "comma-separated env ids (default: every id in the file)")
    seeds: list[int] = arg([0, 1, 2], "comma-separated training seeds")
    timesteps: int | None = arg(None, "override every n_timesteps (for quick runs)")
    normalize: str = arg(
        "file",
        "observation normalisation: as each section's normalize key says (file), on or off for every section, "
        "or both (each run twice, the normalised one as the row <algo>+norm: a probe of the lever)",
        choices=("file", "on", "off", "both"),
    )
    curve_points: int = arg(8, "val evaluations per run")
    eval_episodes: int = arg(1000, "val images per evaluation")
    split: str = arg("test", "leaderboard split", choices=SPLITS)
    episodes: int | None = arg(None, "leaderboard images (default: the whole split)")
    baselines: list[str] = arg(list(DEFAULT_BASELINES), "comma-separated baseline agents")
    reference: str = arg("fixed-4", "baseline the paired differences are taken against")
    ray: str | None = arg(
        None,
        "run each training as a Ray task: 'local' starts Ray on this machine, else a cluster address "
        "(ray://host:10001 or auto; --out should then be on a disk every node shares)",
        metavar="ADDRESS",
    )
    progress: bool = arg(True, "hide training progress bars", names=("--no-progress",), action="store_false")
    command: str = arg("", "the command line, recorded in summary.json (set by the command, not an option)")


@dataclass(frozen=True)
class RunSpec:
    """One (algorithm, env, seed) run of the zoo: everything a worker needs (picklable, for Ray).

    Args:
        algo: abn-gym's ``--algo`` name.
        zoo_algo: the zoo.yml section (rl-zoo3's name of the algorithm).
        env: the env id.
        seed: the training seed.
        hyperparams: the section's entry for the env (a copy).
        timesteps: environment steps to train for.
        run_dir: the run's folder.
        eval_every: steps between two points of the val learning curve.
        eval_episodes: val images per point of the curve (and for the model card).
        split: the leaderboard's split, on which the final policy is scored.
        episodes: the leaderboard's images (None: the whole split).
        command: the zoo's command line, recorded in the run's card.
        log_to_file: training progress goes to the run's train.log instead of stderr.
        agent: the run's row on the leaderboards (default: ``algo``; ``<algo>+norm`` beside it under
            ``--normalize both``).
    """

    algo: str
    zoo_algo: str
    env: str
    seed: int
    hyperparams: dict[str, Any]
    timesteps: int
    run_dir: str
    eval_every: int
    eval_episodes: int
    split: str
    episodes: int | None
    command: str
    log_to_file: bool = False
    agent: str = ""

    @property
    def row(self) -> str:
        """The run's row on the leaderboards."""
        return self.agent or self.algo


NORM_SUFFIX = "+norm"
"""Under ``--normalize both``, the normalised twin of row ``ppo`` is ``ppo+norm``."""


def _variants(hp: dict[str, Any], normalize: str) -> list[tuple[str, dict[str, Any]]]:
    """(row suffix, hyper-parameters) of each variant of one entry that ``--normalize`` asks for."""
    off = {k: v for k, v in hp.items() if k != "normalize"}  # no key is rl-zoo3's "off"
    on = {**hp, "normalize": NORMALIZE_OBS}
    return {"file": [("", hp)], "on": [("", on)], "off": [("", off)], "both": [("", off), (NORM_SUFFIX, on)]}[normalize]


def plan(args: ZooArgs, conf: dict[str, dict]) -> list[RunSpec]:
    """Every (algorithm, env, seed) run the arguments ask for.

    Args:
        args: the zoo's arguments.
        conf: the hyper-parameters (:func:`agents.app.zoo.hyperparams.load_hyperparams`).
    """
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
            for (suffix, variant), seed in itertools.product(_variants(hp, args.normalize), args.seeds):
                specs.append(
                    RunSpec(
                        algo=algo,
                        zoo_algo=zoo_algo,
                        env=env_id,
                        seed=int(seed),
                        hyperparams=json.loads(json.dumps(variant)),  # a copy: YAML aliases share entries
                        timesteps=timesteps,
                        run_dir=str(out / "runs" / env_id / f"{algo}{suffix}" / f"seed-{seed}"),
                        eval_every=max(timesteps // max(args.curve_points, 1), 1),
                        eval_episodes=int(args.eval_episodes),
                        split=args.split,
                        episodes=args.episodes,
                        command=args.command,
                        agent=f"{algo}{suffix}",
                    )
                )
    if not specs:
        raise UsageError(
            f"no runs: {args.conf} has no entry for --algos {args.algos or 'all'} on --envs {args.envs or 'all'}"
        )
    return specs


def train_args(spec: RunSpec) -> AgentTrainArgs:
    """The ``abn-gym train`` arguments of one run: the section's kwargs go in as ``algo_kwargs``.

    Args:
        spec: the run.
    """
    hp = {k: v for k, v in spec.hyperparams.items() if k not in ("n_timesteps", "n_envs", "normalize")}
    n_envs = int(spec.hyperparams.get("n_envs", 1))
    return AgentTrainArgs(
        algo=spec.algo,
        env=spec.env,
        timesteps=spec.timesteps,
        seed=spec.seed,
        out=spec.run_dir,
        num_envs=n_envs,
        algo_kwargs=json.dumps(hp, sort_keys=True),
        checkpoint_every=max(spec.timesteps // 3, n_envs),
        normalize_obs=normalize_obs(spec.hyperparams),
        eval_episodes=spec.eval_episodes,
    )


def _same_hyperparams(a: dict, b: dict) -> bool:
    """Equal but for n_timesteps, with ``normalize: false`` the same as no key (rl-zoo3 reads both as off)."""

    def rest(hp: dict) -> dict:
        return {k: v for k, v in hp.items() if k not in ("n_timesteps", "normalize")}

    return rest(a) == rest(b) and normalize_obs(a) == normalize_obs(b)


def finished(spec: RunSpec) -> dict | None:
    """The run's result.json if it finished with these hyper-parameters and at least its steps, else None.

    A finished run with other hyper-parameters is refused: its folder holds another experiment.

    Args:
        spec: the run.
    """
    path = Path(spec.run_dir) / "result.json"
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    if not _same_hyperparams(result["hyperparams"], spec.hyperparams):
        raise UsageError(
            f"{spec.run_dir} holds a finished {spec.zoo_algo} run with other hyper-parameters; "
            "use another --out, or delete that folder to retrain it"
        )
    return result if result["timesteps"] >= spec.timesteps else None
