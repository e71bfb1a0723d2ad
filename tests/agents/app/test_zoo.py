"""The algorithm zoo: its hyper-parameter file in rl-zoo3's format, tiny runs of every algorithm, resuming, Ray."""

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from agents.app.zoo import (
    HYPERPARAMS,
    NORMALIZE_OBS,
    NOT_IN_RL_ZOO3,
    RL_ZOO3_ALGOS,
    ZooArgs,
    ZooConfigError,
    export_rl_zoo3,
    load_hyperparams,
    plan,
    seed_interval,
    train_args,
    zoo,
)
from supernets.foundation.errors import UsageError


def tiny_conf(tmp_path, algos=None, timesteps=144, envs=("ABN-ResNet-v0", "ABN-ResNet-Budget-v0")):
    """The shipped zoo.yml on ``envs``, shrunk to a few hundred steps: 8 sub-envs, one-rollout PPO-likes, small nets."""
    conf = load_hyperparams()
    tiny = {}
    for algo, section in conf.items():
        if algos is not None and algo not in algos:
            continue
        tiny[algo] = {}
        for env_id, hp in section.items():
            if env_id not in envs:
                continue
            hp = {**hp, "n_timesteps": timesteps, "n_envs": 8}
            hp.update({k: v for k, v in {"n_steps": 18, "batch_size": 72, "n_epochs": 1}.items() if k in hp})
            hp.update({k: v for k, v in {"learning_starts": 16, "buffer_size": 1000}.items() if k in hp})
            hp["policy_kwargs"] = {**hp.get("policy_kwargs", {}), "net_arch": [8]}
            tiny[algo][env_id] = hp
    path = tmp_path / "tiny.yml"
    path.write_text(yaml.safe_dump(tiny))
    return path


def tiny_args(tmp_path, conf, **kw):
    base = dict(
        out=str(tmp_path / "zoo"),
        conf=str(conf),
        seeds=[0],
        curve_points=2,
        eval_episodes=16,
        episodes=32,
        baselines=["fixed-2", "fixed-4"],
        progress=False,
    )
    return ZooArgs(**{**base, **kw})


# the hyper-parameter file -------------------------------------------------------------------
def test_shipped_file_has_every_algorithm_on_the_right_ids():
    conf = load_hyperparams()
    assert set(conf) == set(RL_ZOO3_ALGOS)
    assert all("Budget" in env_id for env_id in conf["ppo_mask"])
    assert all("Budget" not in env_id for algo, s in conf.items() if algo != "ppo_mask" for env_id in s)
    for section in conf.values():
        for hp in section.values():
            assert {"n_timesteps", "policy", "n_envs"} <= set(hp)


def test_yaml_parses_in_rl_zoo3_format(tmp_path):
    """Each exported section is read by rl-zoo3's own loader (PyYAML and the signatures without rl-zoo3)."""
    conf = load_hyperparams()
    paths = {p.stem: p for p in export_rl_zoo3(conf, tmp_path)}
    assert set(paths) == set(conf)
    try:
        from rl_zoo3.exp_manager import ExperimentManager
        from rl_zoo3.utils import ALGOS
    except ImportError:
        ExperimentManager = None
    for algo, section in conf.items():
        assert yaml.safe_load(paths[algo].read_text()) == section
        if ExperimentManager is None or algo in NOT_IN_RL_ZOO3:
            continue
        from agents.controllers.sb3_agent import algo_class

        assert ALGOS[algo] is algo_class(RL_ZOO3_ALGOS[algo])
        for env_id, hp in section.items():
            manager = ExperimentManager(
                argparse.Namespace(), algo, env_id, str(tmp_path / "logs"), config=str(paths[algo]), verbose=0
            )
            read, _ = manager.read_hyperparameters()
            assert read == hp
            kwargs, *_ = manager._preprocess_hyperparams(dict(read))
            assert manager.n_envs == hp["n_envs"] and manager.n_timesteps == hp["n_timesteps"]
            assert set(kwargs) == set(hp) - {"n_timesteps", "n_envs", "normalize"}


def test_zoo_builds_the_model_rl_zoo3_would():
    """The kwargs abn-gym's training adds by default are all spelled out in the file: same model either way."""
    from abn_gym.sb3 import make_sb3_env
    from agents.app.train import make_model
    from agents.controllers.sb3_agent import algo_class

    for spec in plan(ZooArgs(seeds=[3]), load_hyperparams()):
        env = make_sb3_env(spec["env"], num_envs=2, seed=0)
        ours = make_model(train_args(spec), env)
        hp = {k: v for k, v in spec["hyperparams"].items() if k not in ("n_timesteps", "n_envs")}
        theirs = algo_class(spec["algo"])(hp.pop("policy"), env, seed=3, device="cpu", **hp)
        for name, value in vars(theirs).items():
            if isinstance(value, (int, float, str, bool)) and name not in ("start_time",):
                assert getattr(ours, name) == value, (spec["zoo_algo"], name)
        assert ours.policy_kwargs == theirs.policy_kwargs
        assert type(ours.policy) is type(theirs.policy)


@pytest.mark.parametrize(
    "section, message",
    [
        ({"ppo": {"ABN-ResNet-v0": {"n_timesteps": 10, "policy": "MlpPolicy", "n_epoch": 3}}}, "n_epoch"),
        ({"ppo": {"ABN-ResNet-v0": {"policy": "MlpPolicy"}}}, "n_timesteps"),
        ({"ppo": {"ABN-ResNet-v0": {"n_timesteps": 10, "policy": "MlpPolicy", "normalize": True}}}, "normalize"),
        ({"ppo": {"ABN-ResNet-v0": {"n_timesteps": 10, "policy": "CnnLstmPolicy"}}}, "CnnLstmPolicy"),
        ({"sac": {"ABN-ResNet-v0": {"n_timesteps": 10, "policy": "MlpPolicy"}}}, "sac"),
        ({"dqn": {"Nope-v0": {"n_timesteps": 10, "policy": "MlpPolicy"}}}, "Nope-v0"),
    ],
)
def test_bad_hyperparameters_are_refused_by_name(tmp_path, section, message):
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump(section))
    with pytest.raises((ZooConfigError, KeyError), match=message):
        load_hyperparams(path)


def test_seed_interval_brackets_the_mean():
    values = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]])
    mean, lo, hi = seed_interval(values)
    assert mean.tolist() == [1.0, 1.0] and lo[0] < 1.0 < hi[0] and lo[1] == hi[1] == 1.0


# tiny runs ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_every_algorithm_trains_a_little_then_resumes_without_retraining(tmp_path, monkeypatch):
    conf = tiny_conf(tmp_path)
    args = tiny_args(tmp_path, conf, seeds=[0, 1], algos=[])
    summary = zoo(args)
    out = tmp_path / "zoo"
    runs = summary["runs"]
    assert sorted({r["algo"] for r in runs}) == sorted(RL_ZOO3_ALGOS.values()) and len(runs) == 2 * 7
    for r in runs:
        steps = [p["timesteps"] for p in r["curve"]]
        assert steps[0] == 0 and steps[-1] == r["timesteps"] >= 144 and steps == sorted(steps)
    for env_id in ("ABN-ResNet-v0", "ABN-ResNet-Budget-v0"):
        assert (out / f"curves-{env_id}.png").stat().st_size > 0
        rows = {row["agent"]: row for row in json.loads((out / "summary.json").read_text())["leaderboards"][0]["rows"]}
        assert rows  # baselines and learned rows
    board = {r["env"]: {row["agent"]: row for row in r["rows"]} for r in summary["leaderboards"]}
    assert set(board["ABN-ResNet-v0"]) == {"fixed-2", "fixed-4", *(set(RL_ZOO3_ALGOS.values()) - {"maskable-ppo"})}
    assert board["ABN-ResNet-Budget-v0"]["maskable-ppo"]["seeds"] == 2
    assert board["ABN-ResNet-v0"]["ppo"]["episodes"] == 32
    assert "| recurrent-ppo |" in (out / "leaderboard-ABN-ResNet-v0.md").read_text()
    curves = (out / "curves.csv").read_text().splitlines()
    assert curves[0].startswith("env,algo,seed,timesteps,reward")

    # A second call finds every run finished: nothing trains, and the report is the same.
    import agents.app.train

    monkeypatch.setattr(agents.app.train, "train_agent", lambda *a, **k: pytest.fail("a finished run was retrained"))
    again = zoo(args)

    def scores(s):
        return [[{k: v for k, v in row.items() if k != "wall_s"} for row in rep["rows"]] for rep in s["leaderboards"]]

    assert scores(again) == scores(summary)


@pytest.mark.slow
def test_interrupted_run_resumes_and_other_hyperparameters_are_refused(tmp_path):
    conf = tiny_conf(tmp_path, algos=["ppo"], timesteps=144)
    args = tiny_args(tmp_path, conf, baselines=["fixed-4"], reference="fixed-4")
    zoo(args)
    run = tmp_path / "zoo" / "runs" / "ABN-ResNet-v0" / "ppo" / "seed-0"
    first = json.loads((run / "result.json").read_text())
    # More steps: the run resumes from its checkpoint and its curve goes on.
    longer = zoo(tiny_args(tmp_path, conf, baselines=["fixed-4"], timesteps=288))
    (result,) = longer["runs"]
    assert result["timesteps"] >= 288 > first["timesteps"]
    assert [p["timesteps"] for p in result["curve"]][: len(first["curve"]) - 1] == [
        p["timesteps"] for p in first["curve"][:-1]
    ]
    changed = yaml.safe_load(conf.read_text())
    changed["ppo"]["ABN-ResNet-v0"]["ent_coef"] = 0.5
    conf.write_text(yaml.safe_dump(changed))
    with pytest.raises(UsageError, match="other hyper-parameters"):
        zoo(args)


@pytest.mark.slow
def test_two_tiny_trainings_on_a_local_ray_instance(tmp_path):
    ray = pytest.importorskip("ray")
    conf = tiny_conf(tmp_path, algos=["ppo"])
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        summary = zoo(tiny_args(tmp_path, conf, seeds=[0, 1], ray="local", baselines=["fixed-4"]))
    finally:
        ray.shutdown()
    assert sorted(r["seed"] for r in summary["runs"]) == [0, 1]
    for seed in (0, 1):
        run = tmp_path / "zoo" / "runs" / "ABN-ResNet-v0" / "ppo" / f"seed-{seed}"
        assert (run / "model.zip").is_file() and (run / "result.json").is_file()
    (board,) = summary["leaderboards"]
    assert {row["agent"]: row["seeds"] for row in board["rows"]}["ppo"] == 2


def test_cli_exports_rl_zoo3_files(tmp_path, capsys):
    from agents.app.cli import main

    assert main(["zoo", "--export-rl-zoo3", str(tmp_path)]) == 0
    assert sorted(p.stem for p in tmp_path.glob("*.yml")) == sorted(load_hyperparams(HYPERPARAMS))
    assert str(tmp_path / "ppo.yml") in capsys.readouterr().out


@pytest.mark.slow
def test_rl_zoo3_trains_from_the_exported_file(tmp_path):
    """`python -m rl_zoo3.train --gym-packages abn_gym --conf-file <exported>.yml` runs (when rl-zoo3 is installed)."""
    pytest.importorskip("rl_zoo3")
    export_rl_zoo3(load_hyperparams(), tmp_path)
    cmd = [sys.executable, "-m", "rl_zoo3.train", "--algo", "ppo", "--env", "ABN-ResNet-v0"]
    cmd += ["--gym-packages", "abn_gym", "--conf-file", str(tmp_path / "ppo.yml"), "-n", "72", "--eval-freq", "-1"]
    cmd += ["-f", str(tmp_path / "logs"), "--hyperparams", "n_envs:2", "n_steps:18", "batch_size:36"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert list((tmp_path / "logs" / "ppo").glob("ABN-ResNet-v0_*/ABN-ResNet-v0.zip"))


def test_reference_must_be_a_baseline(tmp_path):
    with pytest.raises(UsageError, match="--reference 'fixed-8'"):
        zoo(tiny_args(tmp_path, tiny_conf(tmp_path, algos=["ppo"]), baselines=["fixed-4"], reference="fixed-8"))


def test_baseline_cache_is_keyed_by_what_the_episodes_depend_on(monkeypatch):
    import abn_gym.registration
    from agents.app.zoo import _fingerprint
    from agents.controllers.registry import BenchContext

    ctx = BenchContext("ABN-ResNet-v0", "resnet20-fashionmnist", (2, 3, 4, 5, 6, 7, 8))
    base = _fingerprint("ABN-ResNet-v0", ctx, "fixed-4")
    assert base == _fingerprint("ABN-ResNet-v0", ctx, "fixed-4")
    assert base != _fingerprint("ABN-ResNet-Budget-v0", ctx, "fixed-4")  # other env arguments
    assert base != _fingerprint("ABN-ResNet-v0", ctx, "static-4")  # the static search is part of the key
    real = abn_gym.registration.env_kwargs
    monkeypatch.setattr(abn_gym.registration, "env_kwargs", lambda env_id: {**real(env_id), "cost_coef": 0.08})
    assert base != _fingerprint("ABN-ResNet-v0", ctx, "fixed-4")  # a new cost_coef is never served from cache


@pytest.mark.parametrize("steps", ["-1", "0"])
def test_cli_refuses_nonpositive_timesteps_in_one_line(tmp_path, capsys, steps):
    """#19: `zoo --timesteps -1` was an IndexError traceback; now one line naming the fix, before any run."""
    from agents.app.cli import main

    out = tmp_path / "zoo"
    assert main(["zoo", "--timesteps", steps, "--algos", "ppo", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and err[0].startswith("abn-gym: error: --timesteps " + steps)
    assert not out.exists()


@pytest.mark.parametrize("value", [0, -5, 1.5, "many"])
def test_section_with_nonpositive_steps_or_envs_is_refused(tmp_path, value):
    for key in ("n_timesteps", "n_envs"):
        hp = {"n_timesteps": 100, "policy": "MlpPolicy", key: value}
        path = tmp_path / "bad.yml"
        path.write_text(yaml.safe_dump({"ppo": {"ABN-ResNet-v0": hp}}))
        with pytest.raises(ZooConfigError, match=f"ppo/ABN-ResNet-v0: {key} must be a positive whole number"):
            load_hyperparams(path)


# normalisation (rl-zoo3's normalize key) -----------------------------------------------------
@pytest.mark.parametrize("value, on", [(NORMALIZE_OBS, True), (False, False), (None, False)])
def test_normalize_key_turns_on_normalize_obs(tmp_path, value, on):
    hp = {"n_timesteps": 144, "policy": "MlpPolicy", "n_envs": 8}
    if value is not None:
        hp["normalize"] = value
    path = tmp_path / "conf.yml"
    path.write_text(yaml.safe_dump({"ppo": {"ABN-ResNet-v0": hp}}))
    (spec,) = plan(ZooArgs(conf=str(path), seeds=[0], out=str(tmp_path)), load_hyperparams(path))
    args = train_args(spec)
    assert args.normalize_obs is on and "normalize" not in json.loads(args.algo_kwargs)


@pytest.mark.parametrize(
    "value", [True, "{'norm_obs': True, 'norm_reward': True}", "{'norm_obs': True}", "dict(norm_obs=True)", 1]
)
def test_other_normalize_values_are_refused_with_the_fix(tmp_path, value):
    hp = {"n_timesteps": 144, "policy": "MlpPolicy", "normalize": value}
    path = tmp_path / "conf.yml"
    path.write_text(yaml.safe_dump({"ppo": {"ABN-ResNet-v0": hp}}))
    with pytest.raises(ZooConfigError, match="ppo/ABN-ResNet-v0: normalize") as err:
        load_hyperparams(path)
    assert NORMALIZE_OBS in str(err.value)


@pytest.mark.slow
def test_normalized_run_carries_its_statistics_to_the_leaderboard(tmp_path):
    """A zoo run with the normalize key: statistics beside the model, in the card, and applied when scored."""
    from agents.app.bench import run_agent
    from agents.app.zoo import records_name
    from agents.controllers.sb3_agent import SB3Agent

    conf = tiny_conf(tmp_path, algos=["ppo"], envs=("ABN-ResNet-v0",))
    changed = yaml.safe_load(conf.read_text())
    changed["ppo"]["ABN-ResNet-v0"]["normalize"] = NORMALIZE_OBS
    conf.write_text(yaml.safe_dump(changed))
    zoo(tiny_args(tmp_path, conf, baselines=["fixed-4"], reference="fixed-4"))
    run = tmp_path / "zoo" / "runs" / "ABN-ResNet-v0" / "ppo" / "seed-0"
    card = json.loads((run / "card.json").read_text())
    assert card["args"]["normalize_obs"] and card["obs_norm"]["file"] == "model.obs_norm.json"
    agent = SB3Agent.load(run / "model.zip")
    assert agent.obs_norm is not None
    scored = json.loads((run / records_name("test", 32)).read_text())
    again = run_agent(agent, "ABN-ResNet-v0", "test", 32, seed=0, progress=False)
    assert scored["bits"] == [r["bits"] for r in again] and scored["reward"] == [r["reward"] for r in again]
