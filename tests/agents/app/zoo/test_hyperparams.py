"""The zoo's hyper-parameter file: rl-zoo3's format, read and checked, exported for rl-zoo3."""

import argparse
import os
import subprocess
import sys

import pytest
import yaml

from agents.app.zoo.hyperparams import (
    NORMALIZE_OBS,
    NOT_IN_RL_ZOO3,
    ZooConfigError,
    export_rl_zoo3,
    load_hyperparams,
)
from agents.controllers.algorithms import RL_ZOO3_ALGOS, algo_class


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


@pytest.mark.parametrize("value", [0, -5, 1.5, "many"])
def test_section_with_nonpositive_steps_or_envs_is_refused(tmp_path, value):
    for key in ("n_timesteps", "n_envs"):
        hp = {"n_timesteps": 100, "policy": "MlpPolicy", key: value}
        path = tmp_path / "bad.yml"
        path.write_text(yaml.safe_dump({"ppo": {"ABN-ResNet-v0": hp}}))
        with pytest.raises(ZooConfigError, match=f"ppo/ABN-ResNet-v0: {key} must be a positive whole number"):
            load_hyperparams(path)


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
