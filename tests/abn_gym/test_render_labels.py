"""The rgb_array frame labels its axes: bit-width numbers at the guides, layer numbers, the BitOps share."""

import gymnasium as gym
import numpy as np
import pytest

import abn_gym  # noqa: F401 (registers the ids)

INK = np.array([40, 40, 40], dtype=np.uint8)
IMAGE, MARGIN, BAR, GAP, LAYERS = 112, 4, 6, 2, 18


def _ink(region: np.ndarray) -> np.ndarray:
    return (region == INK).all(axis=-1)


@pytest.mark.parametrize("env_id", ["ABN-ResNet-v0", "ABN-ResNet20Quarter-v1"])
def test_the_bits_axis_is_numbered_at_its_guides_and_the_layers_under_their_bars(env_id):
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    base = MARGIN + IMAGE
    right = MARGIN + IMAGE + 2 * MARGIN + LAYERS * (BAR + GAP) - GAP
    axis = _ink(frame[:base, right:])
    rows = np.flatnonzero(axis.any(axis=1))
    for bits in (2, 4, 8):  # the guides of the fewest, half and most bits of the 2..8 supernet
        guide = base - round(IMAGE * bits / 8)
        assert axis[max(guide - 3, 0) : guide + 4].any(), f"no number beside the {bits}-bit guide"
    assert rows.max() < base  # the axis' text stays beside the bars
    under = _ink(frame[base + 6 :, right - LAYERS * (BAR + GAP) : right])
    assert under.any(axis=1).sum() >= 10  # layer numbers and the axis name under the bars
    left_of_image = _ink(frame[base + 6 :, MARGIN : MARGIN + IMAGE])
    assert left_of_image.any()  # "IMAGE <index>" under the image


def test_the_bitops_share_is_written_and_follows_the_episode():
    env = gym.make("ABN-ResNet-v0", render_mode="rgb_array")
    env.reset(seed=0)
    start = env.render()
    for _ in range(9):
        env.step(6)  # half the layers at 8 bits
    later = env.render()
    assert start.shape == later.shape
    bottom = slice(start.shape[0] - 16, start.shape[0])
    assert _ink(start[bottom]).any(axis=0).sum() > 60 < _ink(later[bottom]).any(axis=0).sum()  # a line of text
    assert not np.array_equal(_ink(start[bottom]), _ink(later[bottom]))  # 0% became another share
