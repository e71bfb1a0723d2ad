"""Observations against an independent oracle: a slow reference built from the supernet's plain forward pass.

The reference runs one image at a time through ``stem_forward`` and ``step`` at one bit-width per
call (the plain path of ``ResNetSupernet.forward``, no grouping, no engine buffers), takes the
statistics in float64 with ``torch.std_mean``, and writes the layer descriptors, BitOps and
offsets by hand from the ResNet-20 architecture. Nothing is read back from the engine.
"""

import gymnasium as gym
import numpy as np
import pytest
import torch

from abn_gym.observations import channel_sums, stats_scale, write_stats
from abn_gym.vector import ABNVectorEnv
from supernets.data import load_split, normalize

# ResNet-20 on 28x28 by hand: (C_in, C_out, stride, H_out) of the 18 switchable 3x3 convs.
LAYERS = [(16, 16, 1, 28)] * 6 + [(16, 32, 2, 14)] + [(32, 32, 1, 14)] * 5 + [(32, 64, 2, 7)] + [(64, 64, 1, 7)] * 5
MACS = [9 * ci * co * h * h for ci, co, _, h in LAYERS]
FIXED_MACS = 9 * 1 * 16 * 28 * 28 + 64 * 10  # stem conv and classifier, both at 8x8 bits
MAX_BITOPS = 64 * (sum(MACS) + FIXED_MACS)
# Offsets of the vector observation, by hand from the documented layout.
PARTS = {
    "act_mean": slice(0, 64),
    "act_std": slice(64, 128),
    "layer": slice(128, 134),
    "layer_onehot": slice(134, 152),
    "bits_so_far": slice(152, 170),
    "bitops_spent": slice(170, 171),
    "budget": slice(171, 172),
}
ATOL = 2e-5  # float32 sums against float64 statistics


def reference_inputs(net, image: torch.Tensor, bits: list[int]) -> list[torch.Tensor]:
    """Input activation of each switchable layer and of the classifier, plain forward pass, one image."""
    state = net.stem_forward(normalize(image[None]))
    inputs = [state.x]
    for i, b in enumerate(bits):
        state = net.step(state, i, int(b))
        inputs.append(state.x)
    with torch.inference_mode():
        assert torch.equal(net.head(state), net(normalize(image[None]), bits))  # the same plain forward
    return inputs


def clip_range(net, t: int) -> float:
    """The 8-bit clip range of the quantizer that reads layer t's input (the classifier's after the last)."""
    if t == len(LAYERS):
        return float(net.fc.act_step.abs()) * 255
    conv = net.convs[t]
    return float(conv.act_step[conv.bit_choices.index(8)].abs()) * 255


def reference_obs(net, image, bits, t: int, budget: float = 1.0) -> np.ndarray:
    """The observation before layer t of an episode that runs ``bits``, built the slow way."""
    x = reference_inputs(net, image, bits)[t][0].double()
    std, mean = torch.std_mean(x, dim=(1, 2), correction=0)
    scale = clip_range(net, t)
    obs = np.zeros(172)
    c = x.shape[0]
    obs[0:c] = np.minimum(mean.numpy() / scale, 1.0)
    obs[64 : 64 + c] = np.minimum(std.numpy() / scale, 1.0)
    if t < len(LAYERS):
        ci, co, s, _ = LAYERS[t]
        obs[128:134] = [ci / 64, co / 64, s / 2, 3 / 3, MACS[t] / sum(MACS), t / 17]
        obs[134 + t] = 1.0
    for j in range(t):
        obs[152 + j] = bits[j] / 8
    obs[170] = sum(bits[j] ** 2 * MACS[j] for j in range(t)) / MAX_BITOPS
    obs[171] = budget
    return obs


def _bits(seed: int, n: int = 18) -> list[int]:
    return [int(b) for b in np.random.default_rng(seed).integers(2, 9, n)]


@pytest.fixture(scope="module")
def images():
    return load_split("test").images


def test_hand_architecture_matches_the_supernet(net):
    # Guards the oracle itself: the hand-written table is the shipped ResNet-20.
    assert [(s.c_in, s.c_out, s.stride, s.h_out) for s in net.layer_specs] == LAYERS
    assert net.max_bitops == MAX_BITOPS


@pytest.mark.parametrize("index,seed", [(0, 0), (17, 1), (123, 2)])
def test_single_env_observation_matches_reference_at_every_layer(net, images, index, seed):
    bits = _bits(seed)
    env = gym.make("ABN-ResNet-v0", split="test")
    obs, _ = env.reset(seed=0, options={"index": index})
    observed = [obs]
    for b in bits:
        observed.append(env.step(env.unwrapped.bit_choices.index(b))[0])
    for t, o in enumerate(observed):
        ref = reference_obs(net, images[index], bits, t)
        for name, sl in PARTS.items():
            np.testing.assert_allclose(o[sl], ref[sl], atol=ATOL, rtol=0, err_msg=f"{name} at layer {t}")


def test_vector_env_rows_match_reference_with_mixed_bits(net, images):
    # Mixed bit-widths run grouped inside the engine: each row must still be its own image's statistics.
    idx = [3, 40, 41, 500]
    bits = [_bits(10 + r) for r in range(4)]
    envs = ABNVectorEnv(4, split="test")
    obs, _ = envs.reset(seed=0, options={"index": idx})
    observed = [obs]
    for t in range(18):
        observed.append(envs.step(np.array([b[t] - 2 for b in bits]))[0])
    for t in (0, 1, 6, 7, 12, 13, 17, 18):
        for r in range(4):
            ref = reference_obs(net, images[idx[r]], bits[r], t)
            np.testing.assert_allclose(observed[t][r], ref, atol=ATOL, rtol=0, err_msg=f"row {r} layer {t}")


def test_channels_beyond_c_are_zero_after_reset_and_rewind(net, images):
    # C goes 16 -> 32 -> 64 within an episode; it shrinks back at the next reset and on a rewind.
    env = gym.make("ABN-ResNet-v0", split="test").unwrapped
    env.reset(seed=0, options={"index": 5})
    for _ in range(18):
        obs = env.step(3)[0]
    assert (obs[0:64] > 0).sum() > 16 and (obs[64:128] > 0).sum() > 16  # 64 channels in use at the end
    obs, _ = env.reset(options={"index": 9})
    np.testing.assert_allclose(obs, reference_obs(net, images[9], [5] * 18, 0), atol=ATOL, rtol=0)
    assert not obs[16:64].any() and not obs[80:128].any()
    for _ in range(3):
        env.step(3)
    snapshot = env.get_state()
    for _ in range(12):
        env.step(3)
    env.set_state(snapshot)
    obs = env.step(3)[0]  # layer 3 runs: still 16 channels
    np.testing.assert_allclose(obs, reference_obs(net, images[9], [5] * 18, 4), atol=ATOL, rtol=0)
    assert not obs[16:64].any() and not obs[80:128].any()


def test_statistics_by_hand_and_clipped_at_one():
    # Two channels over a 1x2 image: channel 0 holds (0, 2) -> mean 1, std 1; channel 1 holds (3, 3) -> mean 3, std 0.
    x = torch.tensor([[[[0.0, 2.0]], [[3.0, 3.0]]]])
    sums, squares, scratch = torch.zeros(1, 2), torch.zeros(1, 2), torch.empty_like(x)
    channel_sums(x, sums, squares, scratch)
    assert sums.tolist() == [[2.0, 6.0]] and squares.tolist() == [[4.0, 18.0]]
    stats = np.zeros((1, 2, 2), dtype=np.float32)
    both = torch.stack([sums, squares], 1).numpy()
    write_stats(both, stats, stats_scale(0.5, 1, 2))  # a clip range of 2
    np.testing.assert_allclose(stats[0], [[0.5, 1.0], [0.5, 0.0]], atol=1e-7)  # 3 / 2 clipped to 1
    write_stats(both, stats, stats_scale(0.25, 1, 2))  # a clip range of 4: nothing clipped
    np.testing.assert_allclose(stats[0], [[0.25, 0.75], [0.25, 0.0]], atol=1e-7)


@pytest.mark.parametrize("budget", [0.3, (0.2, 0.4)])
def test_budget_part_is_the_episode_budget(budget):
    env = gym.make("ABN-ResNet-v0", split="test", reward="correct", budget=budget)
    seen = []
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        # The sampler draws the image, then the budget of a range, from the episode's generator.
        rng = np.random.default_rng(seed)
        rng.integers(10_000)
        expected = budget if np.isscalar(budget) else rng.uniform(*budget)
        assert obs[171] == np.float32(expected)
        seen.append(obs[171])
        for _ in range(18):
            obs = env.step(0)[0]
        assert obs[171] == np.float32(expected)
    assert len(set(seen)) == (1 if np.isscalar(budget) else 3)


def test_dict_parts_equal_vector_slices():
    vec = gym.make("ABN-ResNet-v0", split="test", budget=0.5, reward="correct")
    dic = gym.make("ABN-ResNet-v0", split="test", budget=0.5, reward="correct", obs_mode="dict")
    ov, _ = vec.reset(seed=4)
    od, _ = dic.reset(seed=4)
    for a in [0, 6, 3, 1, 5, 2]:
        assert set(od) == set(PARTS)
        for name, sl in PARTS.items():
            assert od[name].dtype == np.float32 and np.array_equal(od[name], ov[sl]), name
        ov, od = vec.step(a)[0], dic.step(a)[0]


def test_vector_dict_parts_equal_vector_slices():
    vec = ABNVectorEnv(3, split="test")
    dic = ABNVectorEnv(3, split="test", obs_mode="dict")
    ov, _ = vec.reset(seed=1)
    od, _ = dic.reset(seed=1)
    for a in ([0, 6, 3], [1, 1, 1], [2, 5, 4]):
        for name, sl in PARTS.items():
            assert od[name].shape == (3, sl.stop - sl.start) and np.array_equal(od[name], ov[:, sl]), name
        ov, od = vec.step(np.array(a))[0], dic.step(np.array(a))[0]


def test_reference_statistics_are_not_trivial(net, images):
    # The oracle would be hollow if every statistic were 0 or 1: check they spread inside (0, 1).
    obs = reference_obs(net, images[0], [8] * 18, 7)
    assert 0.01 < obs[0:32].max() < 1.0 and 0.0 < obs[64:96].mean() < 0.5


def test_vector_and_dict_spaces_declare_the_unit_interval_part_by_part():
    vec = gym.make("ABN-ResNet-v0", split="val").observation_space
    parts = gym.make("ABN-ResNet-v0", split="val", obs_mode="dict").observation_space
    assert vec.dtype == np.float32 and np.all(vec.low == 0.0) and np.all(vec.high == 1.0)
    assert sum(box.shape[0] for box in parts.spaces.values()) == vec.shape[0]
    for name, box in parts.spaces.items():
        assert box.dtype == np.float32, name
        assert np.all(box.low == 0.0) and np.all(box.high == 1.0), name
