"""The zoo's table of runs: one frozen spec per (algorithm, env, seed), trained as rl-zoo3 would train it."""

import dataclasses
import json

import pytest
import yaml

from agents.app.zoo.hyperparams import NORMALIZE_OBS, load_hyperparams
from agents.app.zoo.plan import RunSpec, ZooArgs, plan, train_args
from agents.controllers.algorithms import algo_class


def test_zoo_builds_the_model_rl_zoo3_would():
    """The kwargs abn-gym's training adds by default are all spelled out in the file: same model either way."""
    from abn_gym.sb3 import make_sb3_env
    from agents.app.train import make_model

    for spec in plan(ZooArgs(seeds=[3]), load_hyperparams()):
        env = make_sb3_env(spec.env, num_envs=2, seed=0)
        ours = make_model(train_args(spec), env)
        hp = {k: v for k, v in spec.hyperparams.items() if k not in ("n_timesteps", "n_envs", "normalize")}
        theirs = algo_class(spec.algo)(hp.pop("policy"), env, seed=3, device="cpu", **hp)
        for name, value in vars(theirs).items():
            if isinstance(value, (int, float, str, bool)) and name not in ("start_time",):
                assert getattr(ours, name) == value, (spec.zoo_algo, name)
        assert ours.policy_kwargs == theirs.policy_kwargs
        assert type(ours.policy) is type(theirs.policy)


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


def test_a_run_spec_is_frozen_and_names_its_folder(tmp_path):
    specs = plan(ZooArgs(out=str(tmp_path), seeds=[0, 1], algos=["ppo"], envs=["ABN-ResNet-v0"]), load_hyperparams())
    assert [s.seed for s in specs] == [0, 1] and all(isinstance(s, RunSpec) for s in specs)
    assert specs[1].run_dir == str(tmp_path.resolve() / "runs" / "ABN-ResNet-v0" / "ppo" / "seed-1")
    assert specs[0].zoo_algo == "ppo" and specs[0].timesteps == specs[0].hyperparams["n_timesteps"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        specs[0].seed = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    "normalize, rows",
    [
        ("file", {"ppo": False}),
        ("on", {"ppo": True}),
        ("off", {"ppo": False}),
        ("both", {"ppo": False, "ppo+norm": True}),
    ],
)
def test_normalize_option_overrides_the_key_or_runs_both(tmp_path, normalize, rows):
    """--normalize on/off overrides the file's key; both gives each run a normalised twin in a folder of its own."""
    args = ZooArgs(out=str(tmp_path), seeds=[0, 1], algos=["ppo"], envs=["ABN-ResNet-v0"], normalize=normalize)
    specs = plan(args, load_hyperparams())
    assert len(specs) == 2 * len(rows)
    for spec in specs:
        assert train_args(spec).normalize_obs is rows[spec.row]
        assert spec.run_dir == str(tmp_path.resolve() / "runs" / "ABN-ResNet-v0" / spec.row / f"seed-{spec.seed}")
        others = {k: v for k, v in spec.hyperparams.items() if k != "normalize"}
        assert others == {k: v for k, v in load_hyperparams()["ppo"]["ABN-ResNet-v0"].items() if k != "normalize"}
    assert len({s.run_dir for s in specs}) == len(specs)  # one run, one folder


def test_a_finished_run_counts_normalize_false_as_no_key_and_refuses_the_other_setting(tmp_path):
    """rl-zoo3 reads normalize: false and no key alike, so a run made either way is the same experiment."""
    from agents.app.zoo.plan import finished
    from supernets.foundation.errors import UsageError

    hp = {"n_timesteps": 144, "policy": "MlpPolicy", "n_envs": 8, "normalize": False}
    path = tmp_path / "conf.yml"
    path.write_text(yaml.safe_dump({"ppo": {"ABN-ResNet-v0": hp}}))
    (spec,) = plan(ZooArgs(conf=str(path), seeds=[0], out=str(tmp_path)), load_hyperparams(path))
    run = tmp_path / "runs" / "ABN-ResNet-v0" / "ppo" / "seed-0"
    run.mkdir(parents=True)
    done = {"timesteps": 144, "hyperparams": {k: v for k, v in hp.items() if k != "normalize"}}
    (run / "result.json").write_text(json.dumps(done))
    assert finished(spec) == done
    (run / "result.json").write_text(json.dumps({**done, "hyperparams": {**hp, "normalize": NORMALIZE_OBS}}))
    with pytest.raises(UsageError, match="other hyper-parameters"):
        finished(spec)
