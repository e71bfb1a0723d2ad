"""The multi-objective ids' known Pareto front (#28, section 1): the static front as ``pareto_front(gamma)``."""

import json

import gymnasium as gym
import numpy as np
import pytest

import abn_gym  # noqa: F401  (registers the ids)
from abn_gym.fronts import HYPERVOLUME_REFERENCE, KnownFrontError, front_path, non_dominated, vector_returns
from abn_gym.multi_objective import MOABNVectorEnv
from abn_gym.registration import env_kwargs
from supernets.registry import load_supernet, read_supernet_card

QUARTER = "resnet20-quarter-fashionmnist"
MO_ID = "mo-ABN-ResNet20Quarter-v1"


@pytest.fixture(scope="module")
def quarter():
    return load_supernet(QUARTER)


@pytest.fixture(scope="module")
def stored():
    return json.loads(front_path(QUARTER).read_text())


def test_the_stored_front_is_the_shipped_static_configurations(stored, quarter):
    assert stored["supernet_sha256"] == read_supernet_card(QUARTER)["sha256"]
    assert stored["images"] == {"val": 5000, "test": 10000}
    names = {c["name"] for c in stored["configs"]} | {n for c in stored["configs"] for n in c["also"]}
    assert {f"fixed-{b}" for b in range(2, 9)} | {"static-2.25", "static-7.5", "static-3@bitfusion"} <= names
    assert len({tuple(c["bits"]) for c in stored["configs"]}) == len(stored["configs"])  # each configuration once


def test_pareto_front_is_the_non_dominated_static_returns_at_gamma_1(stored, quarter):
    env = gym.make(MO_ID, split="val")
    front = env.unwrapped.pareto_front(gamma=1.0)
    fixed = sum(s.macs for s in quarter.fixed_specs) * 64
    # By hand: [accuracy, -(BitOps - fixed BitOps) / all-8 BitOps] of every stored configuration.
    points = [
        (c["correct"]["val"] / 5000, -(quarter.bitops(c["bits"]) - fixed) / quarter.max_bitops)
        for c in stored["configs"]
    ]
    expected = sorted(
        {p for p in points if not any(q[0] >= p[0] and q[1] >= p[1] and q != p for q in points)},
        key=lambda p: -p[1],
    )
    np.testing.assert_allclose(np.array(front), np.array(expected), rtol=1e-12, atol=0)
    assert all(isinstance(p, np.ndarray) and p.shape == (2,) for p in front)
    # Inside the documented ranges, and dominating the hypervolume reference point.
    assert all(0 <= p[0] <= 1 and -1 < p[1] < 0 and p[0] > HYPERVOLUME_REFERENCE[0] for p in front)
    assert front[0][1] == pytest.approx(-(quarter.bitops([2] * 18) - fixed) / quarter.max_bitops)  # fixed-2: cheapest


@pytest.mark.slow
def test_front_points_are_reproduced_by_running_their_configurations(stored):
    """Each front configuration, run on every val image of the MO vector env, returns the point on average."""
    kwargs = env_kwargs(MO_ID[3:], split="val", sampling="sequential")
    config = gym.make(MO_ID, split="val").unwrapped.config
    returns = {tuple(vec): bits for _, bits, vec in vector_returns(config)}
    front = gym.make(MO_ID, split="val").unwrapped.pareto_front()
    picks = [front[0], front[len(front) // 2], front[-1]]
    n = 1250
    env = MOABNVectorEnv(n, **kwargs)
    choices = list(env.bit_choices)
    for point in picks:
        bits = returns[tuple(point)]
        total = np.zeros(2)
        for start in range(0, 5000, n):
            env.reset(seed=0, options={"index": np.arange(start, start + n)})
            for b in bits:
                _, reward, _, _, _ = env.step(np.full(n, choices.index(b)))
                total += reward.sum(axis=0)
        assert total / 5000 == pytest.approx(point, rel=1e-12, abs=1e-12)


def test_bitfusion_prices_the_same_configurations_in_bricks(stored):
    bitops = gym.make(MO_ID, split="val").unwrapped
    bricks = gym.make("mo-ABN-ResNet20Quarter-BitFusion-v1", split="val").unwrapped
    by_bits = {tuple(bits): vec for _, bits, vec in vector_returns(bricks.config)}
    for _, bits, vec in vector_returns(bitops.config):
        assert by_bits[tuple(bits)][0] == vec[0]  # the same accuracy, another price
        if all(b % 2 == 0 for b in bits):  # even widths: bricks are BitOps / 4, so the fractions agree
            assert by_bits[tuple(bits)] == pytest.approx(vec, rel=1e-12)
        even = tuple(b + b % 2 for b in bits)  # an odd width costs as many bricks as the next even one
        if even in by_bits:
            assert by_bits[tuple(bits)][1] == pytest.approx(by_bits[even][1], rel=1e-12)
    front = bricks.pareto_front()
    assert len(front) >= 8 and [tuple(p) for p in front] == [tuple(p) for p in non_dominated(list(by_bits.values()))]


def test_discounted_front(quarter):
    config = gym.make(MO_ID, split="val").unwrapped.config
    g = 0.9
    for _, bits, vec in vector_returns(config, gamma=g)[:5]:
        undiscounted = next(v for _, b, v in vector_returns(config) if b == bits)
        steps = [quarter.layer_bitops(t, b) / quarter.max_bitops for t, b in enumerate(bits)]
        assert vec[0] == pytest.approx(g**17 * undiscounted[0], rel=1e-12)
        assert vec[1] == pytest.approx(-sum(g**t * c for t, c in enumerate(steps)), rel=1e-12)
    assert non_dominated([np.array([0.5, -0.2]), np.array([0.5, -0.2]), np.array([0.4, -0.3])]) == [
        pytest.approx(np.array([0.5, -0.2]))
    ]


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"split": "train"}, "split 'train'"),
        ({"split": "val", "reward": "logprob"}, "reward='logprob'"),
    ],
)
def test_pareto_front_refuses_what_it_cannot_know(kwargs, needle):
    env = gym.make(MO_ID, **kwargs)
    with pytest.raises(KnownFrontError, match=needle):
        env.unwrapped.pareto_front()


@pytest.mark.parametrize(
    "env_id,supernet", [("ABN-ResNet-v0", "resnet20-fashionmnist"), ("ABN-ResNet20Quarter-v1", QUARTER)]
)
def test_stored_test_accuracies_are_the_leaderboards(env_id, supernet):
    """The stored test-split counts agree with `make bench`'s leaderboard, computed by the bench's own episodes."""
    stored = json.loads(front_path(supernet).read_text())
    text = (front_path(supernet).parents[2] / "docs" / env_id / "leaderboard-compact.md").read_text()
    # The agents' table is the first one; a Curves table may follow it.
    table = text[text.index("| agent |") :].split("\n\n")[0].splitlines()
    board = {cells[0]: float(cells[1].split()[0]) for cells in (line.strip("| ").split(" | ") for line in table[2:])}
    names = {n: c for c in stored["configs"] for n in [c["name"], *c["also"]]}
    checked = [n for n in board if n in names]
    assert {f"fixed-{b}" for b in range(2, 9)} | {f"static-{b}" for b in range(3, 8)} <= set(checked)
    for name in checked:
        assert round(100 * names[name]["correct"]["test"] / stored["images"]["test"], 2) == board[name], name
    front = gym.make(f"mo-{env_id}", split="test").unwrapped.pareto_front()
    assert [tuple(p) for p in front] == [tuple(p) for p in non_dominated(front)] and len(front) >= 8
