"""A model trained with `abn-gym train`: benchmarked from its path, resumed only with its own settings."""

import json
import shutil

import pytest
import torch

from agents.app.cli import main
from agents.app.train import AgentTrainArgs, make_model, train_agent
from agents.controllers.registry import BenchContext, make_agent
from agents.controllers.sb3_agent import SB3Agent
from supernets.foundation.errors import ABNGymError, CheckpointError, UsageError

# One rollout of 8 sub-envs x 18 steps with a one-layer policy: enough to save a real model.
TINY = [
    "--timesteps", "144", "--num-envs", "8", "--n-steps", "18", "--batch-size", "72", "--n-epochs", "1",
    "--net-arch", "16", "--checkpoint-every", "144",
]  # fmt: skip
CTX = BenchContext("ABN-ResNet-v0", "resnet20-fashionmnist", (2, 3, 4, 5, 6, 7, 8))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny run trained through the CLI, with an 8-image val evaluation on its card."""
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--out", str(out), *TINY, "--eval-episodes", "8"]) == 0
    return out


@pytest.mark.slow
def test_train_prints_a_readable_summary_and_the_bench_command(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path), *TINY, "--eval-episodes", "8"]) == 0
    captured = capsys.readouterr()
    assert "val (8 images): accuracy" in captured.out and "GBitOps" in captured.out
    assert f"abn-gym bench --agents {tmp_path / 'model.zip'}" in captured.out
    assert "return=" in captured.err  # the progress bar shows the mean return
    assert "TensorBoard logs: tensorboard --logdir" in captured.err or "tensorboard is not installed" in captured.err
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["val"]["episodes"] == 8 and card["args"]["learning_rate"] == 3e-4


def test_trained_model_is_benchmarked_from_its_path(run, tmp_path, capsys):
    model = str(run / "model.zip")
    argv = ["bench", "--agents", f"{model},fixed-8", "--episodes", "8", "--out", str(tmp_path)]
    assert main([*argv, "--json", "--no-progress"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["agent"] for r in rows] == [model, "fixed-8"]
    assert rows[0]["decision_macs"] > 0  # the policy's own MACs are counted
    assert list(tmp_path.glob("heatmap-*.png"))  # a path as a row name still gives a file name
    doc = json.loads((tmp_path / "results.json").read_text())
    assert {model, "fixed-8"} <= {r["agent"] for r in doc["records"]}  # the bench may add the static front's rows
    assert [r["agent"] for r in doc["rows"]] == [model, "fixed-8"]


def test_a_model_without_its_card_or_with_another_checksum_is_refused(run, tmp_path):
    alone = tmp_path / "alone" / "model.zip"
    alone.parent.mkdir()
    shutil.copy(run / "model.zip", alone)
    with pytest.raises(CheckpointError, match="no model card"):
        make_agent(str(alone), CTX)
    card = json.loads((run / "card.json").read_text())
    (alone.parent / "card.json").write_text(json.dumps({**card, "sha256": "0" * 64}))
    with pytest.raises(CheckpointError, match="does not match the sha256"):
        make_agent(str(alone), CTX)
    with pytest.raises(UsageError, match="no such model file"):
        make_agent(str(tmp_path / "missing.zip"), CTX)
    with pytest.raises(UsageError, match="chooses among 7 actions"):
        make_agent(str(run / "model.zip"), BenchContext("ABN-ResNet-v0", "resnet20-fashionmnist", (2, 4)))


def _args(out, **changes):
    base = dict(timesteps=144, num_envs=8, n_steps=18, batch_size=72, n_epochs=1, net_arch="16", checkpoint_every=144)
    return AgentTrainArgs(**{**base, "out": str(out), "eval_episodes": 0, **changes})


def test_resume_with_other_settings_is_refused_and_names_them(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    with pytest.raises(UsageError, match=r"--learning-rate 0\.001 \(the run has 0\.0003\).*--ent-coef 0\.0"):
        train_agent(_args(copy, learning_rate=0.001, ent_coef=0.0, timesteps=288))
    # A run that recorded no settings (older runs) is checked against the model itself.
    (copy / "run.json").unlink()
    (copy / "card.json").unlink()
    with pytest.raises(UsageError, match=r"--n-steps 36 \(the run has 18\)"):
        train_agent(_args(copy, n_steps=36, timesteps=288))
    # The run's own settings resume it; the card records what ran.
    train_agent(_args(copy, timesteps=288))
    card = json.loads((copy / "card.json").read_text())
    assert card["timesteps"] == 288 and card["args"]["learning_rate"] == 3e-4


def test_cli_refuses_a_changed_resume_in_one_line(run, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    assert main(["train", "--out", str(copy), *TINY, "--learning-rate", "0.001"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("abn-gym: error:") and "--learning-rate 0.001 (the run has 0.0003)" in err[-1]


def test_dict_observations_get_the_multi_input_policy():
    from abn_gym.sb3 import make_sb3_env

    env = make_sb3_env("ABN-ResNet-v0", num_envs=2, seed=0, obs_mode="dict")
    model = make_model(_args("unused", num_envs=2, batch_size=36), env)
    assert type(model.policy).__name__ == "MultiInputActorCriticPolicy"


def test_publish_is_refused_outside_a_source_checkout(monkeypatch, tmp_path):
    from agents.app import static_search

    monkeypatch.setattr(static_search, "__file__", "/usr/lib/python3/site-packages/agents/app/static_search.py")
    with pytest.raises(ABNGymError, match="not a source checkout"):
        train_agent(_args(tmp_path, publish=True))
    assert not list(tmp_path.iterdir())  # refused before anything was trained


def test_the_card_records_the_policy_the_model_is_rebuilt_from(run):
    card = json.loads((run / "card.json").read_text())
    assert card["policy"] == {"class": "MlpPolicy", "kwargs": {"net_arch": [16]}}
    mine = SB3Agent.load(run / "model.zip").model.policy.state_dict()
    sb3 = SB3Agent.load(run / "model.zip", trust_pickle=True).model.policy.state_dict()  # our own file
    assert mine.keys() == sb3.keys() and all(torch.equal(mine[k], sb3[k]) for k in mine)
