"""Tianshou trains on the env unmodified: a DQN and a PPO trainer over DummyVectorEnv, a few hundred steps each.

Its replay buffer stores every info key; a key whose shape changes between steps (``bits`` used to
be an int and then a list of 18) breaks it. Skipped when Tianshou is not installed; ``make clients``
installs it beside the project and runs these.
"""

import gymnasium as gym
import numpy as np
import pytest
import torch

pytest.importorskip("tianshou")
from tianshou.algorithm import DQN, PPO
from tianshou.algorithm.modelfree.dqn import DiscreteQLearningPolicy
from tianshou.algorithm.modelfree.reinforce import DiscreteActorPolicy
from tianshou.algorithm.optim import AdamOptimizerFactory
from tianshou.data import Collector, CollectStats, VectorReplayBuffer
from tianshou.env import DummyVectorEnv
from tianshou.trainer import OffPolicyTrainerParams, OnPolicyTrainerParams
from tianshou.utils.net.common import Net
from tianshou.utils.net.discrete import DiscreteActor, DiscreteCritic

# Tianshou compiles its numba kernels on first use (about a minute here): `make clients` runs these,
# `make test-fast` leaves them out.
pytestmark = pytest.mark.slow

OBS, ACTIONS = 76, 7  # ABN-ResNet20Quarter's observation size and bit choices
STEPS = 4 * 18 * 4  # four collections of one episode in each of 4 sub-envs


def envs(env_id, n=4):
    venv = DummyVectorEnv([lambda: gym.make(f"abn_gym:{env_id}", split="val") for _ in range(n)])
    venv.seed(0)
    return venv


def check_buffer(buffer, env_id):
    """The stored transitions are whole episodes, with the info keys of the env's table."""
    batch, _ = buffer.sample(0)  # everything stored
    assert len(batch) >= STEPS
    assert set(np.unique(batch.info.bits)) <= {2, 3, 4, 5, 6, 7, 8}
    done = batch.terminated
    assert done.sum() == len(batch) // 18
    assert batch.info.episode_bits.shape == (len(batch), 18)
    assert (batch.info.episode_bits[done] >= 2).all()
    if "Budget" in env_id:
        assert batch.info.action_mask.shape == (len(batch), ACTIONS) and batch.info.action_mask[:, 0].all()


@pytest.mark.parametrize("env_id", ["ABN-ResNet20Quarter-v1", "ABN-ResNet20Quarter-Budget-v1"])
def test_dqn_trainer(env_id):
    torch.manual_seed(0)
    train, test = envs(env_id), envs(env_id, 2)
    net = Net(state_shape=OBS, action_shape=ACTIONS, hidden_sizes=[32])
    policy = DiscreteQLearningPolicy(
        model=net, action_space=gym.spaces.Discrete(ACTIONS), eps_training=0.2, eps_inference=0.0
    )
    algorithm = DQN(policy=policy, optim=AdamOptimizerFactory(lr=1e-3), gamma=1.0, target_update_freq=20)
    buffer = VectorReplayBuffer(2000, len(train))
    result = algorithm.run_training(
        OffPolicyTrainerParams(
            training_collector=Collector[CollectStats](algorithm, train, buffer, exploration_noise=True),
            test_collector=Collector[CollectStats](algorithm, test),
            max_epochs=1,
            epoch_num_steps=STEPS,
            collection_step_num_env_steps=72,
            test_step_num_episodes=2,
            batch_size=32,
            update_step_num_gradient_steps_per_sample=0.1,
            show_progress=False,
            verbose=False,
        )
    )
    assert result.train_step >= STEPS and result.test_episode >= 2
    assert np.isfinite(result.best_reward)
    check_buffer(buffer, env_id)


def test_ppo_trainer():
    torch.manual_seed(0)
    env_id = "ABN-ResNet20Quarter-v1"
    train, test = envs(env_id), envs(env_id, 2)
    actor = DiscreteActor(preprocess_net=Net(state_shape=OBS, hidden_sizes=[32]), action_shape=ACTIONS)
    critic = DiscreteCritic(preprocess_net=Net(state_shape=OBS, hidden_sizes=[32]))
    policy = DiscreteActorPolicy(
        actor=actor, dist_fn=torch.distributions.Categorical, action_space=gym.spaces.Discrete(ACTIONS)
    )
    algorithm = PPO(policy=policy, critic=critic, optim=AdamOptimizerFactory(lr=3e-4), gamma=1.0)
    buffer = VectorReplayBuffer(2000, len(train))
    result = algorithm.run_training(
        OnPolicyTrainerParams(
            training_collector=Collector[CollectStats](algorithm, train, buffer),
            test_collector=Collector[CollectStats](algorithm, test),
            max_epochs=1,
            epoch_num_steps=STEPS,
            collection_step_num_env_steps=72,
            update_step_num_repetitions=2,
            test_step_num_episodes=2,
            batch_size=36,
            show_progress=False,
            verbose=False,
        )
    )
    assert result.train_step >= STEPS and result.update_step > 0
    assert np.isfinite(result.best_reward)
