"""Values the envs used to take silently are refused, each with a message naming the fix (issue #26).

Each case was found by fuzzing the env API: a bool image index, a bool budget, a reversed budget
range, fractional look-ahead bits, 2-D index arrays, a shape-(1,) action and a float vector seed.
"""

import gymnasium as gym
import numpy as np
import pytest

from abn_gym.env import ABNEnv
from abn_gym.errors import EnvArgumentError, EnvCallError, InvalidActionError
from abn_gym.vector import ABNVectorEnv
from supernets.foundation.errors import ABNGymError

ENV = "ABN-ResNet20Quarter-v1"
QUARTER = "resnet20-quarter-fashionmnist"


@pytest.fixture(scope="module")
def env():
    return gym.make(ENV, split="val").unwrapped


@pytest.mark.parametrize("index", [True, False, np.True_])
def test_a_bool_image_index_is_refused_as_a_bool_action_is(env, index):
    with pytest.raises(EnvCallError, match=r"options\['index'\]=.*expected an int in \[0, \d+\) \(not a bool\)"):
        env.reset(options={"index": index})
    with pytest.raises(InvalidActionError):
        env.reset(seed=0)
        env.step(index)
    env.reset(options={"index": np.int64(1)})  # NumPy ints still pick an image
    assert int(env.engine.indices[0]) == 1


@pytest.mark.parametrize("budget", [True, False, np.True_, (0.3, True), "0.3"])
def test_a_bool_budget_is_refused_as_a_bool_cost_coef_is(budget):
    with pytest.raises(EnvArgumentError, match=r"invalid budget=.*expected a BitOps fraction"):
        ABNEnv(supernet=QUARTER, budget=budget)
    with pytest.raises(EnvArgumentError, match=r"invalid cost_coef=True"):
        ABNEnv(supernet=QUARTER, cost_coef=True)


def test_a_reversed_budget_range_is_refused_with_the_ordered_one():
    with pytest.raises(EnvArgumentError, match=r"invalid budget=\(0\.5, 0\.2\).*did you mean \(0\.2, 0\.5\)\?"):
        ABNEnv(supernet=QUARTER, budget=(0.5, 0.2))
    with pytest.raises(EnvArgumentError, match=r"invalid budget=\[0\.3\]"):
        ABNEnv(supernet=QUARTER, budget=[0.3])  # a range has two ends
    # What stays accepted: ordered ranges (a JSON card's list too), equal ends, NumPy numbers.
    assert ABNEnv(supernet=QUARTER, budget=[0.2, 0.5]).config.budget == (0.2, 0.5)
    assert ABNEnv(supernet=QUARTER, budget=(0.3, 0.3)).config.budget == (0.3, 0.3)
    assert ABNEnv(supernet=QUARTER, budget=np.float32(0.5)).config.budget == 0.5


def test_fractional_lookahead_bits_are_refused_not_truncated(env):
    env.reset(seed=0)
    with pytest.raises(EnvCallError, match=r"rest_bits must hold ints .*got dtype float64.*truncated"):
        env.lookahead([2.5] * 18)
    with pytest.raises(EnvCallError, match=r"rest_bits must hold ints"):
        env.lookahead(np.ones(18, dtype=bool))
    exact = env.lookahead([2] * 18)  # ints work, as do NumPy int arrays of several configurations
    assert np.array_equal(env.lookahead(np.full((1, 18), 2, dtype=np.int32))[0], exact)
    envs = ABNVectorEnv(2, supernet=QUARTER, split="val")
    envs.reset(seed=0)
    with pytest.raises(EnvCallError, match=r"rest_bits must hold ints"):
        envs.lookahead(np.full((2, 18), 2.5))
    with pytest.raises(EnvCallError, match=r"rows must hold ints"):
        envs.lookahead(np.full((2, 18), 2), rows=np.array([True, False]))  # a mask is not row indices
    with pytest.raises(EnvCallError, match=r"episode indices in \[0, 2\)"):
        envs.lookahead(np.full((1, 18), 2), rows=[5])


@pytest.mark.parametrize(
    "index", [[[0, 1], [2, 3]], [[0, 1, 2, 3]], [0.0, 1.0, 2.0, 3.0], [True, False, True, True], 7]
)
def test_vector_index_must_be_one_int_per_sub_env(index):
    envs = ABNVectorEnv(4, supernet=QUARTER, split="val")
    with pytest.raises(EnvCallError, match=r"options\['index'\]=.*expected a 1-D sequence of int image indices"):
        envs.reset(seed=0, options={"index": index})
    envs.reset(seed=0, options={"index": np.array([0, 1, 2, 3], dtype=np.int32)})
    assert envs.engine.indices.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("action", [np.array([1]), np.array([[1]]), np.array(1.0), 1.0, True, np.True_, "1", 7, -1])
def test_step_refuses_exactly_what_the_action_space_refuses_and_bools(env, action):
    contained = env.action_space.contains(action)
    assert contained == (action is True)  # gymnasium takes True as 1; the env refuses bools too
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match=r"invalid action .*expected an integer in \[0, 6\]") as e:
        env.step(action)
    assert isinstance(e.value, ABNGymError) and isinstance(e.value, ValueError)
    if isinstance(action, np.ndarray) and action.shape != ():
        assert "pass one action, e.g. action.item()" in str(e.value)


@pytest.mark.parametrize("action", [1, np.int64(1), np.int32(1), np.uint8(1), np.array(1)])
def test_step_takes_what_the_action_space_contains(env, action):
    assert env.action_space.contains(action)
    env.reset(seed=0)
    *_, info = env.step(action)
    assert info["bits"] == 3


@pytest.mark.parametrize(
    "actions", [np.ones((2, 1), dtype=np.int64), np.ones(2), np.ones(2, dtype=bool), [1, 1, 1], 1, [1.0, 1.0]]
)
def test_vector_step_takes_one_int_per_sub_env(actions):
    envs = ABNVectorEnv(2, supernet=QUARTER, split="val")
    envs.reset(seed=0)
    with pytest.raises(InvalidActionError, match=r"expected an int array of shape \(2,\)"):
        envs.step(actions)
    for ok in ([1, 1], (1, 1), np.ones(2, dtype=np.uint8)):  # lists, tuples and any int dtype
        *_, info = envs.step(ok)
        assert info["bits"].tolist() == [3, 3]


@pytest.mark.parametrize("seed", [1.5, True, -1, "0", [0, 1.5], [0], [0, 1, 2], {0, 1}])
def test_vector_seed_is_refused_with_what_it_takes(seed):
    envs = ABNVectorEnv(2, supernet=QUARTER, split="val")
    with pytest.raises(EnvCallError, match=r"invalid reset\(seed=.*expected None, an int >= 0"):
        envs.reset(seed=seed)
    envs.reset(seed=[np.int64(3), None])
    single = ABNEnv(supernet=QUARTER, split="val")
    single.reset(seed=3)
    assert envs.engine.indices[0] == single.engine.indices[0]


def test_a_torch_module_as_supernet_is_named_by_its_type_not_its_repr():
    import torch

    class MyNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = torch.nn.Sequential(*[torch.nn.Conv2d(8, 8, 3) for _ in range(20)])

    with pytest.raises(EnvArgumentError) as caught:
        gym.make("ABN-ResNet-v0", supernet=MyNet())
    message = str(caught.value)
    assert "a MyNet object" in message and "bring-your-own-network" in message and "resnet20-fashionmnist" in message
    assert "Conv2d" not in message and len(message) < 400
    with pytest.raises(EnvArgumentError, match="a MyNet object"):
        ABNVectorEnv(2, supernet=MyNet())
