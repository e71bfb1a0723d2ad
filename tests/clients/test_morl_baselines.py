"""morl-baselines trains and evaluates on the steep multi-objective id: Envelope, GPI-LS and PCN, 360 steps each.

Smoke tests: each algorithm learns from the env's vector rewards and is evaluated on it without
error, and its results are in the objectives' ranges. They say nothing of how good the fronts are.
Skipped when morl-baselines is not installed; ``make clients`` installs it beside the project and
runs these. Nothing is logged (``log=False``: no wandb run) and the checkpoints some algorithms
write go to a temporary folder.
"""

import gymnasium as gym
import numpy as np
import pytest
import torch

pytest.importorskip("morl_baselines")
from morl_baselines.common.evaluation import policy_evaluation_mo
from morl_baselines.common.performance_indicators import hypervolume
from morl_baselines.multi_policy.envelope.envelope import Envelope
from morl_baselines.multi_policy.gpi_pd.gpi_pd import GPILS
from morl_baselines.multi_policy.pcn.pcn import PCN

import abn_gym  # noqa: F401  (registers the ids)

# Importing morl-baselines (wandb, pymoo, cvxpy) and Envelope's training take over 10 s here:
# `make clients` runs these, `make test-fast` leaves them out.
pytestmark = pytest.mark.slow

STEEP = "mo-ABN-ResNet20Quarter-v1"
REF = np.array([0.0, -1.0])  # the documented reference point: below every accuracy and every cost
STEPS = 18 * 20  # 20 episodes


@pytest.fixture(autouse=True)
def quiet(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.chdir(tmp_path)  # GPI-LS and PCN save checkpoints under ./weights
    torch.manual_seed(0)


def make():
    return gym.make(STEEP, split="val")


def check_point(value):
    """One policy's (accuracy, -cost) return: inside the objectives' episode ranges."""
    assert value.shape == (2,)
    assert 0.0 <= value[0] <= 1.0 and -1.0 < value[1] < 0.0


def test_envelope_trains_and_evaluates():
    agent = Envelope(make(), net_arch=[32, 32], batch_size=32, learning_starts=50, buffer_size=1000, log=False, seed=0)
    agent.train(total_timesteps=STEPS, eval_env=make(), ref_point=REF, eval_freq=10**9)
    front = [policy_evaluation_mo(agent, make(), w, rep=2)[3] for w in ([1.0, 0.0], [0.5, 0.5], [0.0, 1.0])]
    for value in front:
        check_point(np.asarray(value))
    assert hypervolume(REF, front) > 0


def test_gpi_ls_trains_and_evaluates():
    agent = GPILS(
        make(),
        net_arch=[32, 32],
        batch_size=32,
        learning_starts=50,
        gradient_updates=1,
        buffer_size=1000,
        log=False,
        seed=0,
    )
    agent.train(
        total_timesteps=STEPS,
        eval_env=make(),
        ref_point=REF,
        timesteps_per_iter=STEPS // 3,
        num_eval_episodes_for_front=1,
        checkpoints=False,
    )
    value = policy_evaluation_mo(agent, make(), np.array([0.9, 0.1]), rep=2)[3]
    check_point(np.asarray(value))


def test_pcn_trains_and_evaluates():
    # PCN conditions on a desired return and horizon; the scaling puts both objectives and the
    # horizon (18 steps) on similar scales.
    agent = PCN(make(), scaling_factor=np.array([1.0, 10.0, 0.1]), hidden_dim=32, batch_size=32, log=False, seed=0)
    agent.train(
        total_timesteps=STEPS,
        eval_env=make(),
        ref_point=REF,
        num_er_episodes=10,
        num_step_episodes=2,
        num_model_updates=5,
        max_return=np.array([1.0, 0.0]),
        num_points_pf=3,
    )
    returns, _, _ = agent.evaluate(make(), np.array([1.0, 0.0]), n=3)
    assert len(returns)
    for value in returns:
        check_point(np.asarray(value))
