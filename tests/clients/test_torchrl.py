"""TorchRL plugs the env in unmodified: GymEnv by id, its spec checker, a collector, the native vector env.

Skipped when TorchRL is not installed; ``make clients`` installs it beside the project and runs these.
"""

import gymnasium as gym
import numpy as np
import pytest
import torch

torchrl = pytest.importorskip("torchrl")
from torchrl.envs import GymEnv, GymWrapper  # noqa: E402
from torchrl.envs.utils import check_env_specs  # noqa: E402

ENV = "abn_gym:ABN-ResNet20Quarter-v1"
OBS = 76  # 16 channel means and stds, 6 layer features, 18 one-hot, 18 bits so far, spent, budget
ONEHOT = slice(38, 56)


def _collector():
    import torchrl.collectors as collectors

    return getattr(collectors, "Collector", None) or collectors.SyncDataCollector


def test_gym_env_by_id_passes_check_env_specs():
    # TorchRL passes frameskip=1 and drops it only on Python's own TypeError wording.
    env = GymEnv(ENV, split="val")
    check_env_specs(env, seed=0)
    rollout = env.rollout(20, break_when_any_done=False)  # one episode of 18 steps, then the next one
    assert rollout["next", "done"].sum() == 1 and rollout["next", "done"][17].item()
    assert rollout["observation"].shape == (20, OBS)
    assert rollout["observation"][18, ONEHOT].argmax().item() == 0  # the new episode's first layer


def test_collector_runs_episodes_with_a_random_policy():
    env = GymEnv(ENV, split="val")
    collector = _collector()(env, policy=None, frames_per_batch=36, total_frames=72)
    batches = list(collector)
    collector.shutdown()
    assert len(batches) == 2
    done = torch.cat([b["next", "done"].reshape(-1) for b in batches])
    assert done.sum().item() == 4  # 72 frames are exactly four 18-step episodes
    rewards = torch.cat([b["next", "reward"].reshape(-1) for b in batches])
    assert torch.isfinite(rewards).all()


@pytest.mark.parametrize("mode", ["SAME_STEP", "DISABLED"])
def test_native_vector_env_through_gym_wrapper(mode):
    venv = gym.make_vec(
        ENV.split(":")[1], num_envs=4, vectorization_mode="vector_entry_point", autoreset_mode=mode, split="val"
    )
    env = GymWrapper(venv)
    assert env.batch_size == torch.Size([4])
    check_env_specs(env, seed=0)
    rollout = env.rollout(40, break_when_any_done=False)
    done = rollout["next", "done"].squeeze(-1)
    assert done.shape == (4, 40)
    # Every sub-env ends at steps 18 and 36 together; the next episodes continue in the same rollout.
    assert np.flatnonzero(done[0].numpy()).tolist() == [17, 35] and bool((done == done[:1]).all())
    first = rollout["observation"][:, 18, ONEHOT]  # the layer one-hot of the new episodes' first step
    assert bool((first.argmax(-1) == 0).all()) and bool((first.sum(-1) == 1).all())


@pytest.mark.parametrize("env_id", [ENV, "abn_gym:ABN-ResNet20Quarter-Budget-v1"])
def test_auto_registered_info_dict_rolls_out(env_id):
    # TorchRL reads each info value's dtype: a Python int or float there fails the rollout.
    env = GymWrapper(gym.make(env_id, split="val")).auto_register_info_dict()
    rollout = env.rollout(20, break_when_any_done=False)
    assert rollout["next", "layer"][:18].reshape(-1).tolist() == list(range(18))
    assert rollout["next", "bits"].dtype == torch.int64 and rollout["next", "bitops_step"].dtype == torch.float64
    done = rollout["next", "done"].reshape(-1)
    assert done[17].item() and done.sum().item() == 1
    # TorchRL registers the keys of a first step's info (the last step's extra keys are not read).
    assert torch.isfinite(rollout["next", "bitops_step"]).all() and (rollout["next", "bitops_step"] > 0).all()
    if "Budget" in env_id:
        assert rollout["next", "action_mask"].shape == (20, 7) and rollout["next", "clipped"].dtype == torch.bool
