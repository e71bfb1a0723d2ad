"""A tiny train -> save -> load round trip for every --algo, and resuming."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from abn_gym.sb3 import SB3VecEnv
from agents.app.bench import run_agent
from agents.app.train import AgentTrainArgs, train_agent
from agents.controllers.sb3_agent import ALGOS, SB3Agent, policy_macs
from supernets.foundation.errors import UsageError

ROOT = Path(__file__).resolve().parents[3]

# Two rollouts of 8 sub-envs x 18 steps, a one-layer policy: enough to exercise every path.
TINY = dict(
    timesteps=18 * 8 * 2, num_envs=8, n_steps=18, batch_size=72, n_epochs=1, checkpoint_every=18 * 8, net_arch="16"
)


@pytest.mark.slow
@pytest.mark.parametrize("algo", ALGOS)
def test_train_save_load_round_trip(algo, tmp_path):
    env = "ABN-ResNet-Budget-v0" if algo == "maskable-ppo" else "ABN-ResNet-v0"
    args = AgentTrainArgs(**{**TINY, "algo": algo, "env": env, "out": str(tmp_path), "eval_episodes": 16})
    path = train_agent(args, command="test")
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["algo"] == algo and card["timesteps"] >= 18 * 8 * 2 and card["val"]["episodes"] == 16
    agent = SB3Agent.load(path, algo, "mine")
    assert agent.decision_macs_per_step == policy_macs(agent.model) > 0
    recs = run_agent(agent, env, "test", 8, progress=False)
    again = run_agent(SB3Agent.load(path, algo, "mine"), env, "test", 8, progress=False)
    assert recs == again
    assert all(r["decision_macs"] == 18 * agent.decision_macs_per_step for r in recs)


@pytest.mark.slow
def test_training_resumes_from_last_checkpoint(tmp_path, monkeypatch):
    base = {**TINY, "algo": "ppo", "out": str(tmp_path), "eval_episodes": 0}
    train_agent(AgentTrainArgs(**base))
    assert list((tmp_path / "checkpoints").glob("model_*_steps.zip"))
    # Count the env steps the resumed run takes: only the one rollout still missing, not three from scratch.
    calls = []
    step_wait = SB3VecEnv.step_wait
    monkeypatch.setattr(SB3VecEnv, "step_wait", lambda self: calls.append(self.num_envs) or step_wait(self))
    train_agent(AgentTrainArgs(**{**base, "timesteps": 18 * 8 * 3}))
    assert sum(calls) == 18 * 8
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["timesteps"] == 18 * 8 * 3


@pytest.mark.slow
def test_linear_lr_schedule_decays_to_zero(tmp_path):
    # Four rollouts of 144 steps, a checkpoint between two rollouts (after the update). SB3 updates after
    # rollout k (k = 1..4) at the learning rate of 1 - 144 k / 576, the fraction of the run left.
    args = AgentTrainArgs(
        **{**TINY, "timesteps": 576, "algo": "ppo", "out": str(tmp_path), "eval_episodes": 0},
        lr_schedule="linear",
        learning_rate=1e-3,
    )
    train_agent(args)

    def lr(path):
        # The optimizer's state: only SB3's own load (this test's own files) restores it.
        return SB3Agent.load(path, "ppo", trust_pickle=True).model.policy.optimizer.param_groups[0]["lr"]

    assert lr(tmp_path / "checkpoints" / "model_288_steps.zip") == pytest.approx(1e-3 * (1 - 288 / 576))
    assert lr(tmp_path / "checkpoints" / "model_432_steps.zip") == pytest.approx(1e-3 * (1 - 432 / 576))
    assert lr(tmp_path / "model.zip") == 0.0
    with pytest.raises(UsageError, match="--lr-schedule must be one of"):
        train_agent(AgentTrainArgs(**{**TINY, "out": str(tmp_path / "other"), "lr_schedule": "cosine"}))


def _policy_and_records(out):
    params = SB3Agent.load(out / "model.zip", "ppo").model.policy.state_dict()
    card = json.loads((out / "card.json").read_text())
    return params, card["val"], (out / "model.obs_norm.json").read_bytes()


@pytest.mark.slow
def test_a_run_does_not_depend_on_the_runs_before_it_in_the_process(tmp_path):
    # The zoo and the levers train many runs in one process. Run A alone in a fresh process, then
    # in this one after another run B (other settings, same supernet): the two A runs must match.
    a = {**TINY, "env": "ABN-ResNet20Quarter-v1", "normalize_obs": True, "eval_episodes": 32}
    code = (
        "import json, sys; from agents.app.train import AgentTrainArgs, train_agent; "
        "train_agent(AgentTrainArgs(**json.loads(sys.argv[1])))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    alone = json.dumps({**a, "out": str(tmp_path / "alone")})
    subprocess.run([sys.executable, "-c", code, alone], check=True, capture_output=True, env=env, cwd=tmp_path)
    train_agent(AgentTrainArgs(**{**a, "normalize_obs": False, "seed": 1, "out": str(tmp_path / "b")}))
    train_agent(AgentTrainArgs(**{**a, "out": str(tmp_path / "after_b")}))
    params, val, stats = _policy_and_records(tmp_path / "alone")
    params_after, val_after, stats_after = _policy_and_records(tmp_path / "after_b")
    assert params.keys() == params_after.keys()
    assert all(torch.equal(params[k], params_after[k]) for k in params)
    assert val == val_after and stats == stats_after
