"""Observation normalisation carried with a model, and the folder rules of `abn-gym train` (issues 21 and 19)."""

import json
import shutil

import numpy as np
import pytest
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.callbacks import BaseCallback

from abn_gym.registration import env_kwargs
from abn_gym.sb3 import make_sb3_env
from abn_gym.vector import ABNVectorEnv
from agents.app.bench import run_agent
from agents.app.cli import build_parser, main
from agents.app.train import AgentTrainArgs, bench_command, train_agent
from agents.controllers.normalization import ObsNormalizer, stats_path
from agents.controllers.registry import BenchContext, make_agent
from agents.controllers.sb3_agent import SB3Agent
from supernets.foundation.cliargs import dataclass_from_args
from supernets.foundation.errors import CheckpointError, UsageError
from supernets.foundation.files import sha256

ENV = "ABN-ResNet20Quarter-v1"
# 100 steps asked of 8 sub-envs x 18-step rollouts: SB3 runs one whole rollout, 144 steps.
ARGV = [
    "--env", ENV, "--timesteps", "100", "--num-envs", "8", "--n-steps", "18", "--batch-size", "72",
    "--n-epochs", "1", "--net-arch", "16", "--checkpoint-every", "144", "--eval-episodes", "8", "--normalize-obs",
]  # fmt: skip


class KeepModel(BaseCallback):
    """Keeps the model object that trained, with its live VecNormalize env."""

    model_seen = None

    def _on_training_end(self) -> None:
        KeepModel.model_seen = self.model

    def _on_step(self) -> bool:
        return True


def _argv(out):
    return ["train", "--out", str(out), *ARGV]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny normalised run on the steep task; returns (folder, the in-process model)."""
    out = tmp_path_factory.mktemp("normrun")
    args = dataclass_from_args(AgentTrainArgs, build_parser().parse_args(_argv(out)))
    train_agent(args, command="test", callbacks=[KeepModel()])
    return out, KeepModel.model_seen


def _files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_model_by_path_acts_exactly_as_in_process_with_its_vecnormalize(run, tmp_path, capsys):
    out, model = run
    venv = model.get_vec_normalize_env()
    venv.training = False
    # In process, with SB3's own VecNormalize.normalize_obs: the reference the loaders must equal.
    n = 8
    env = ABNVectorEnv(n, **{**env_kwargs(ENV), "split": "val", "sampling": "sequential"})
    obs, _ = env.reset(seed=0, options={"index": np.arange(n)})
    bits, returns = [], np.zeros(n)
    for _ in range(env.num_layers):
        actions, _ = model.predict(venv.normalize_obs(obs), deterministic=True)
        bits.append(np.asarray(env.bit_choices)[actions])
        obs, reward, _, _, _ = env.step(actions)
        returns += reward
    expected_bits = np.stack(bits, axis=1).tolist()

    loaded = SB3Agent.load(out / "model.zip")
    records = run_agent(loaded, ENV, "val", n, seed=0, progress=False)
    assert [r["bits"] for r in records] == expected_bits
    assert [r["reward"] for r in records] == returns.tolist()
    # bench with the model's path: the same episodes
    assert main(["bench", "--env", ENV, "--agents", str(out / "model.zip"), "--split", "val", "--episodes", "8",
                 "--out", str(tmp_path), "--json", "--no-progress"]) == 0  # fmt: skip
    doc = json.loads((tmp_path / "results.json").read_text())
    mine = [r for r in doc["records"] if r["agent"] == str(out / "model.zip")]
    assert [r["bits"] for r in sorted(mine, key=lambda r: r["index"])] == expected_bits
    # The statistics matter: without them the same weights choose other bits.
    plain = SB3Agent(loaded.model, "plain")
    assert plain.obs_norm is None
    assert [r["bits"] for r in run_agent(plain, ENV, "val", n, seed=0, progress=False)] != expected_bits
    # The card's val evaluation used the frozen statistics too (its 8 images are these).
    card = json.loads((out / "card.json").read_text())
    assert card["val"]["reward"] == pytest.approx(float(np.mean(returns)), abs=1e-12)


def test_statistics_are_saved_hashed_and_applied_on_load(run, tmp_path):
    out, model = run
    card = json.loads((out / "card.json").read_text())
    norm_file = out / card["obs_norm"]["file"]
    assert norm_file == stats_path(out / "model.zip") and card["obs_norm"]["sha256"] == sha256(norm_file)
    saved = ObsNormalizer.load(norm_file, card["obs_norm"]["sha256"])
    rms = model.get_vec_normalize_env().obs_rms
    assert np.array_equal(saved.stats[""]["mean"], rms.mean) and np.array_equal(saved.stats[""]["var"], rms.var)
    assert saved.stats[""]["count"] == rms.count
    assert SB3Agent.load(out / "model.zip").obs_norm == saved
    # the checkpoint carries its own statistics
    assert stats_path(out / "checkpoints" / "model_144_steps.zip").is_file()

    kw = env_kwargs(ENV)
    ctx = BenchContext(ENV, kw["supernet"], tuple(kw.get("bit_choices", (2, 3, 4, 5, 6, 7, 8))))
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    doc = json.loads((copy / "model.obs_norm.json").read_text())
    doc["stats"][""]["mean"][0] += 0.5
    (copy / "model.obs_norm.json").write_text(json.dumps(doc))
    for load in (lambda: SB3Agent.load(copy / "model.zip"), lambda: make_agent(str(copy / "model.zip"), ctx)):
        with pytest.raises(CheckpointError, match="does not match the sha256"):
            load()
    (copy / "model.obs_norm.json").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        SB3Agent.load(copy / "model.zip")
    shorter = {**doc, "stats": {"": {**doc["stats"][""], "shape": [3], "mean": [0, 0, 0], "var": [1, 1, 1]}}}
    (copy / "model.obs_norm.json").write_text(json.dumps(shorter))
    (copy / "card.json").write_text(json.dumps({**card, "obs_norm": {"file": "model.obs_norm.json",
                                                "sha256": sha256(copy / "model.obs_norm.json")}}))  # fmt: skip
    with pytest.raises(CheckpointError, match="belong to another model"):
        SB3Agent.load(copy / "model.zip")
    shutil.copy(out / "model.obs_norm.json", copy)
    (copy / "card.json").write_text(json.dumps({**card, "obs_norm": None}))
    with pytest.raises(CheckpointError, match="lists no normalisation statistics"):
        SB3Agent.load(copy / "model.zip")


def test_train_into_another_runs_folder_is_refused_and_leaves_it_byte_identical(run, tmp_path, capsys):
    out, _ = run
    for keep_checkpoints in (True, False):
        copy = tmp_path / f"copy-{keep_checkpoints}"
        shutil.copytree(out, copy)
        if not keep_checkpoints:
            shutil.rmtree(copy / "checkpoints")
        before = _files(copy)
        assert main(["train", "--out", str(copy), "--algo", "dqn", "--env", ENV, "--timesteps", "100"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("abn-gym: error:")
        assert "--algo 'dqn' (the run has 'ppo')" in err[0] and "--normalize-obs False (the run has True)" in err[0]
        assert _files(copy) == before


def test_rerunning_a_finished_command_is_a_no_op_that_says_so(run, tmp_path, capsys):
    out, _ = run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    before = _files(copy)
    assert main(_argv(copy)) == 0
    captured = capsys.readouterr()
    assert "nothing to do" in captured.err and _files(copy) == before
    assert f"abn-gym bench --env {ENV} --agents {copy / 'model.zip'}" in captured.out
    # --timesteps is not honoured exactly: the card records the steps that ran, and what was asked.
    card = json.loads((copy / "card.json").read_text())
    assert card["timesteps"] == 144 and card["args"]["timesteps"] == 100
    # fewer steps than the run has: refused, not untrained
    assert main(["50" if a == "100" else a for a in _argv(copy)]) == 2
    assert "asks for fewer" in capsys.readouterr().err and _files(copy) == before


def test_bench_command_names_the_env_unless_it_is_the_default():
    from pathlib import Path

    path = Path("runs/x/model.zip")
    assert bench_command({"env": "ABN-ResNet-v0"}, path).startswith("abn-gym bench --agents runs/x/model.zip,")
    assert bench_command({"env": ENV}, path).startswith(f"abn-gym bench --env {ENV} --agents runs/x/model.zip,")


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--num-envs", "0"], "--num-envs must be at least 1"),
        (["--net-arch", "abc"], "--net-arch takes comma-separated positive layer sizes"),
        (["--learning-rate", "-1"], "--learning-rate must be a positive number"),
        (["--algo-kwargs", '{"foo": 1}'], "PPO (ppo) has no argument 'foo'"),
        (["--timesteps", "0"], "--timesteps must be at least 1"),
        (["--timesteps", "-5"], "--timesteps must be at least 1"),
        (["--algo", "maskable-ppo"], "needs action masks, and ABN-ResNet-v0 has none"),
    ],
)
def test_train_refuses_bad_arguments_in_one_line_before_anything(extra, message, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("abn-gym: error:") and message in err[0]
    assert not out.exists()


def test_device_cuda_without_cuda_is_refused(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["train", "--out", str(tmp_path / "run"), "--device", "cuda"]) == 2
    assert "has no CUDA device; use --device cpu" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def _saved(cls, tmp_path, name, algo, **kwargs):
    """An untrained model of ``cls`` saved with a card naming ``algo`` (what `abn-gym train` writes, briefly)."""
    folder = tmp_path / name
    folder.mkdir()
    model = cls("MlpPolicy", make_sb3_env(ENV, num_envs=2, seed=0), device="cpu", **kwargs)
    model.save(str(folder / "model.zip"))
    card = {"algo": algo, "env": ENV, "env_kwargs": env_kwargs(ENV), "sha256": sha256(folder / "model.zip")}
    (folder / "card.json").write_text(json.dumps(card))
    return folder / "model.zip"


def test_load_reads_the_algorithm_and_env_from_the_card(tmp_path):
    a2c = SB3Agent.load(_saved(A2C, tmp_path, "a2c", "a2c"))
    assert a2c.name == "a2c" and type(a2c.model).__name__ == "A2C" and a2c.env_id == ENV
    dqn = SB3Agent.load(_saved(DQN, tmp_path, "dqn", "dqn", learning_starts=0))
    assert dqn.name == "dqn" and type(dqn.model).__name__ == "DQN"
    assert len(run_agent(dqn, ENV, "val", 2, progress=False)) == 2
    with pytest.raises(UsageError, match="trained with a2c"):
        SB3Agent.load(tmp_path / "a2c" / "model.zip", "ppo")


@pytest.mark.parametrize(("cls", "claimed", "actual"), [(PPO, "a2c", "ppo"), (A2C, "ppo", "a2c"), (PPO, "dqn", "ppo")])
def test_a_card_whose_algo_is_not_its_models_is_refused(cls, claimed, actual, tmp_path, capsys):
    path = _saved(cls, tmp_path, "m", claimed, **({"n_steps": 18, "batch_size": 36} if cls is PPO else {}))
    with pytest.raises(CheckpointError, match=f"was saved by {actual}, but its card .* says algo '{claimed}'"):
        SB3Agent.load(path)
    assert main(["bench", "--env", ENV, "--agents", str(path), "--episodes", "2", "--out", str(tmp_path / "b")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("abn-gym: error:")


@pytest.mark.slow
@pytest.mark.parametrize("interrupted", [False, True])
def test_resuming_or_extending_keeps_the_statistics(run, tmp_path, interrupted):
    out, _ = run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    first = ObsNormalizer.load(copy / "model.obs_norm.json").stats[""]["count"]
    if interrupted:  # killed after its checkpoint: resumes from the checkpoint and its statistics
        for name in ("card.json", "model.zip", "model.obs_norm.json"):
            (copy / name).unlink()
    argv = ["288" if a == "100" else a for a in _argv(copy)]
    assert main(argv) == 0
    card = json.loads((copy / "card.json").read_text())
    assert card["timesteps"] == 288
    # A fresh VecNormalize would count only the 144 new steps (and a reset of 8 sub-envs, when trained further:
    # a resumed run starts from the checkpoint's own observation, exactly as the interrupted run would have).
    again = SB3Agent.load(copy / "model.zip").obs_norm.stats[""]["count"]
    assert again == pytest.approx(first + 144 + (0 if interrupted else 8))


def test_publish_ships_the_statistics_and_the_shipped_policy_loads_with_them(run, tmp_path, monkeypatch):
    import agents.app.train

    out, _ = run
    monkeypatch.setattr(agents.app.train, "POLICY_DIR", tmp_path)
    target = agents.app.train.publish_policy(out, f"ppo-{ENV}")
    card = json.loads(target.with_suffix(".json").read_text())
    assert card["obs_norm"]["file"] == f"ppo-{ENV}.obs_norm.json"
    assert (tmp_path / card["obs_norm"]["file"]).read_bytes() == (out / "model.obs_norm.json").read_bytes()
    shipped, trained = SB3Agent.load(target), SB3Agent.load(out / "model.zip")
    assert shipped.obs_norm == trained.obs_norm is not None


def test_an_out_that_is_a_file_is_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "f").write_text("mine")
    assert main(["train", "--out", str(tmp_path / "f")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err and (tmp_path / "f").read_text() == "mine"
