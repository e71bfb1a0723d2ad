"""The cost_model env option: the chosen cost drives reward, budget, mask, observation and info.

The default path ("bitops") must stay bit-identical: the digests below were computed with the code
before cost models existed (commit db4eb29), over a few hundred steps of each case, hashing
observations (without the activation statistics, which no cost touches and whose last float bits
depend on the CPU's kernels), rewards, every info key but the new ``cost*`` ones, and the masks.
"""

import hashlib
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import abn_gym
from abn_gym.errors import EnvArgumentError
from abn_gym.vector import ABNVectorEnv
from supernets.costs import CostModelError, layer_names, write_cost_file

STEEP = "ABN-ResNet20Quarter-v1"
BITFUSION = "ABN-ResNet20Quarter-BitFusion-v1"
BITS = (2, 3, 4, 5, 6, 7, 8)

DIGESTS = [
    (STEEP, 300, 0, {}, "0b57cf6ae771fed1f2910526440982942e9f02fadbd2341370b066bfd638912f"),
    ("ABN-ResNet20Quarter-Budget-v1", 300, 0, {}, "de7a268d8627ecb77ca947f1f2d3f6d0919b05442ddd977fb170b0296f89b4ee"),
    (
        STEEP,
        200,
        0,
        {"reward": "blockdrop", "budget": (0.2, 0.6), "decide_at": (0, 5, 6, 11)},
        "b2271f517c7f3d6754d62e24eff31ce7ef0bc3a1bd3f0d67c254b2db6073157a",
    ),
    ("mo-" + STEEP, 200, 0, {}, "3ae9b2b62c6c84b41f5f8e105944e8e61622390b92c0946e8905d6179ecd6817"),
    (
        "ABN-ResNet20Quarter-Budget-v1",
        100,
        4,
        {"bit_choices": (2, 4, 8)},
        "881da0786ce8c9d30ffa3cb83edb0ab648dc684de795518900efff738269aeff",
    ),
    ("ABN-ResNet-Budget-v0", 100, 0, {}, "eeee40c312fd73bf3f23029ff9dacfa61a014bfd77006d8b24a8c98fe1b8cdbc"),
]


def _feed(h, value) -> None:
    if isinstance(value, dict):
        for k in sorted(value):
            if not k.lstrip("_").startswith("cost"):  # the keys added with cost models
                h.update(k.encode())
                _feed(h, value[k])
        return
    a = np.asarray(value)
    h.update(a.dtype.str.encode() + str(a.shape).encode() + a.tobytes())


def digest(env_id: str, steps: int, num_envs: int, kwargs: dict) -> str:
    h, rng = hashlib.sha256(), np.random.default_rng(7)
    if num_envs:
        env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", split="val", **kwargs)
    else:
        env = gym.make(env_id, split="val", **kwargs)
    lay = env.unwrapped.layout.slices
    stats = np.r_[lay["act_mean"], lay["act_std"]]
    obs, info = env.reset(seed=3)
    _feed(h, np.delete(obs, stats, axis=-1))
    _feed(h, info)
    k = len(env.unwrapped.bit_choices)
    for _ in range(steps):
        action = rng.integers(0, k, num_envs) if num_envs else int(rng.integers(0, k))
        obs, r, term, _, info = env.step(action)
        for part in (np.delete(obs, stats, axis=-1), r, info, env.unwrapped.action_masks()):
            _feed(h, part)
        if not num_envs and term:
            obs, info = env.reset()
            _feed(h, np.delete(obs, stats, axis=-1))
            _feed(h, info)
    return h.hexdigest()


@pytest.mark.parametrize(("env_id", "steps", "num_envs", "kwargs", "expected"), DIGESTS)
def test_default_path_is_bit_identical_to_the_code_before_cost_models(env_id, steps, num_envs, kwargs, expected):
    assert digest(env_id, steps, num_envs, kwargs) == expected


def test_under_bitops_every_cost_key_is_its_bitops_key_and_the_engine_shares_its_counter():
    env = gym.make("ABN-ResNet20Quarter-Budget-v1", split="val")
    u = env.unwrapped
    assert (u.cost_model, u.cost_unit) == ("bitops", "BitOps")
    assert u.engine.spent_units is u.engine.spent_ops  # the default path adds once per step, as before
    env.reset(seed=0)
    term = False
    while not term:
        *_, term, _, info = env.step(6)
        assert info["cost_step"] == info["bitops_step"] and type(info["cost_step"]) is np.float64
    for key in ("", "_fraction", "_fixed", "_all8"):
        assert info["cost" + key] == info["bitops" + key] and type(info["cost" + key]) is np.float64


def measured_table(tmp_path, falling: bool = False) -> tuple[str, np.ndarray, float, float]:
    """A user's table (path, (18, 7) costs, fixed, all-8) with distinct costs; ``falling``: some fall with bits."""
    net = abn_gym.config.architecture(abn_gym.QUARTER)
    names = layer_names(net)["switchable"]
    rng = np.random.default_rng(5)
    costs = np.round(rng.uniform(0.5, 2.0, (18, 1)) * (1 + 0.1 * np.arange(7)), 3)
    if falling:  # a measured latency need not rise with the bits: reverse every third layer
        costs[::3] = costs[::3, ::-1]
    table = {name: dict(zip(BITS, map(float, row))) for name, row in zip(names, costs)}
    table["stem"], table["fc"] = {8: 0.75}, {8: 0.125}
    path = tmp_path / ("falling.csv" if falling else "ms.csv")
    write_cost_file(path, table, "ms")
    return str(path), costs, 0.875, sum(costs[:, -1].tolist(), 0.0) + 0.875  # summed in layer order


@pytest.mark.parametrize("falling", [False, True])
def test_a_users_table_end_to_end(tmp_path, falling):
    path, costs, fixed, all8 = measured_table(tmp_path, falling)
    coef, budget = 0.3, 0.8
    env = gym.make(STEEP, split="val", cost_model=path, cost_coef=coef, budget=budget)
    u = env.unwrapped
    assert (u.cost_model, u.cost_unit) == ("table:" + path.rsplit("/", 1)[1], "ms")
    assert u.engine.monotone is not falling
    cheapest_rest = np.concatenate([np.cumsum(costs.min(axis=1)[::-1])[::-1], [0.0]])
    spent_col = u.layout.slices["bitops_spent"].start
    clipped_any = False
    for seed in range(4):
        obs, info = env.reset(seed=seed)
        rng, spent, steps, t, term = np.random.default_rng(seed), 0.0, [], 0, False
        assert obs[u.layout.slices["budget"].start] == np.float32(budget)
        while not term:
            # The mask by hand: the action's cost plus the cheapest rest must fit the budget.
            fits = (fixed + spent + costs[t] + cheapest_rest[t + 1]) / all8 <= budget + 1e-12
            fits[np.argmin(costs[t])] = True
            assert np.array_equal(u.action_masks(), fits)
            want = int(rng.integers(7))
            obs, reward, term, _, info = env.step(want)
            allowed = np.flatnonzero(fits[: want + 1])
            ran = want if fits[want] else (allowed[-1] if allowed.size else int(np.argmin(costs[t])))
            assert info["bits"] == BITS[ran] and info["clipped"] == (ran != want)
            clipped_any |= bool(info["clipped"])
            assert info["cost_step"] == costs[t, ran]
            expected = -coef * (costs[t, ran] / all8) + (float(info["correct"]) if term else 0.0)
            assert reward == expected
            spent += costs[t, ran]
            steps.append(info["cost_step"])
            assert obs[spent_col] == np.float32(spent / all8)
            t += 1
        assert info["cost_all8"] == all8 and info["cost_fixed"] == fixed
        # Float costs add up to float rounding: the table's sum in another order than the steps'.
        assert info["cost"] == pytest.approx(sum(steps) + info["cost_fixed"], rel=1e-12)
        assert info["cost_fraction"] == info["cost"] / all8 <= budget + 1e-12
        assert info["bitops_fraction"] == info["bitops"] / info["bitops_all8"]  # BitOps are still BitOps
    assert clipped_any  # the budget bound


def test_the_budget_and_spent_fraction_are_in_the_cost_models_units():
    # 3 bits are 9/64 of 8 bits' BitOps, but 4/16 of their bricks, as 4 bits are: under BitFusion nine
    # layers at 3 bits spend what nine at 4 do, and a budget of uniform-4 lets all-3 spend it all.
    budget = 0.261
    spent = {}
    for env_id in (STEEP, BITFUSION):
        env = gym.make(env_id, split="val", budget=budget)
        u = env.unwrapped
        col = u.layout.slices["bitops_spent"].start
        for action in (1, 2):  # 3 bits, 4 bits
            obs, _ = env.reset(seed=0)
            for _ in range(9):
                obs, *_, info = env.step(action)
                assert not info["clipped"]
            spent[u.cost_unit, action] = obs[col]
    assert spent["bricks", 1] == spent["bricks", 2] == spent["BitOps", 2] > spent["BitOps", 1]
    env = gym.make(BITFUSION, split="val", budget=budget)
    env.reset(seed=0)
    for _ in range(18):
        *_, info = env.step(1)  # uniform-3 fits, at uniform-4's cost
        assert not info["clipped"]
    assert info["cost_fraction"] == env.unwrapped.engine.costs.fraction([4] * 18) == info["cost"] / info["cost_all8"]
    assert info["bitops_fraction"] < 0.2  # BitOps still count 3 bits as 9/64
    lowest = env.unwrapped.engine.costs.fraction([2] * 18)
    with pytest.raises(EnvArgumentError, match=r"expected a cost \(bricks\) fraction of the all-8 .* \[0\.07"):
        gym.make(BITFUSION, budget=lowest / 2)


@pytest.mark.parametrize(
    ("value", "error", "needle"),
    [
        ("latency", CostModelError, r"invalid cost_model='latency': unknown cost_model 'latency': choose one of"),
        ("missing.csv", CostModelError, r"invalid cost_model='missing.csv': cost table missing.csv does not exist"),
        (3, EnvArgumentError, r"invalid cost_model=3: expected 'bitops', 'bitfusion' or the path of a cost table"),
    ],
)
def test_a_bad_cost_model_is_refused_by_make(value, error, needle):
    for make in (gym.make, lambda i, **k: gym.make_vec(i, 2, vectorization_mode="vector_entry_point", **k)):
        with pytest.raises(error, match=needle) as caught:
            make(STEEP, cost_model=value)
        assert isinstance(caught.value, ValueError)


def test_a_table_missing_a_layer_is_refused_by_make(tmp_path):
    path, *_ = measured_table(tmp_path)
    text = Path(path).read_text()
    lines = [line for line in text.splitlines() if not line.startswith("stage3.block3.conv2,")]
    (tmp_path / "short.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(CostModelError, match=r"no row for layer 'stage3.block3.conv2': give its cost at bits"):
        gym.make(STEEP, cost_model=str(tmp_path / "short.csv"))


@pytest.mark.parametrize("model", ["bitfusion", "table"])
def test_vector_env_matches_single_envs_under_other_cost_models(tmp_path, model):
    kwargs = {"supernet": abn_gym.QUARTER, "split": "val", "budget": (0.3, 0.7), "reward": "blockdrop"}
    if model == "table":  # its cheapest configuration costs 0.74 of all-8
        kwargs.update(cost_model=measured_table(tmp_path, falling=True)[0], budget=(0.75, 0.95))
    else:
        kwargs["cost_model"] = model
    n, seed = 3, 4
    envs = ABNVectorEnv(n, **kwargs)
    assert envs.get_attr("cost_model") == (envs.cost_model,) * n and envs.get_attr("cost_unit")[0] in ("bricks", "ms")
    actions = np.random.default_rng(1).integers(0, 7, (18, n))
    obs, _ = envs.reset(seed=seed)
    batch = [envs.step(a) for a in actions]
    for i in range(n):
        env = gym.make("ABN-ResNet20Quarter-v1", **kwargs)
        o, _ = env.reset(seed=seed + i)
        assert np.array_equal(o, obs[i])
        for k, a in enumerate(actions[:, i]):
            o, r, _, _, info = env.step(int(a))
            v_obs, v_r, _, _, v_info = batch[k]
            assert np.array_equal(o, v_obs[i]) and r == v_r[i]
            for key, value in info.items():
                assert np.array_equal(value, v_info[key][i]), key


def test_ansi_render_names_the_cost_model_and_its_spent_fraction():
    env = gym.make(BITFUSION, split="val", render_mode="ansi")
    env.reset(seed=0)
    for _ in range(3):
        env.step(1)  # 3 bits: 4 of 16 bricks per MAC
    spent = env.unwrapped.engine.spent[0]
    assert spent == sum(env.unwrapped.engine.costs.layers[t, 1] for t in range(3)) / env.unwrapped.engine.cost_all8
    assert f"cost model bitfusion: spent {spent:.3f} of all-8's bricks" in env.render()
    plain = gym.make(STEEP, split="val", render_mode="ansi")
    plain.reset(seed=0)
    assert "cost model" not in plain.render()


def test_the_cost_coef_rule_rules_out_a_width_that_costs_the_same_and_is_less_accurate():
    from abn_gym.tables import choose_cost_coef, cost_coef_interval

    # BitFusion prices 3 bits as 4: uniform-3 can never be the best if uniform-4 is more accurate.
    table = {
        2: {"accuracy": 0.80, "bitops_fraction": 0.08, "cost_fraction": 0.08},
        3: {"accuracy": 0.84, "bitops_fraction": 0.15, "cost_fraction": 0.26},
        4: {"accuracy": 0.85, "bitops_fraction": 0.26, "cost_fraction": 0.26},
        8: {"accuracy": 0.86, "bitops_fraction": 1.0, "cost_fraction": 1.0},
    }
    assert np.isnan(cost_coef_interval(table, 3)[0])
    lo, hi = cost_coef_interval(table, 4)  # the cost fraction, not BitOps, prices the rule
    assert lo == pytest.approx(0.01 / 0.74) and hi == pytest.approx(0.05 / 0.18)
    assert choose_cost_coef(table)[:2] == (4, 0.1)


@pytest.mark.slow
def test_the_bitfusion_ids_cost_coef_is_the_rules_choice_on_val():
    from abn_gym.tables import choose_cost_coef, uniform_returns

    kwargs = dict(abn_gym.ENV_IDS[BITFUSION])
    table = uniform_returns("val", **kwargs)
    middle, coef, (lo, hi) = choose_cost_coef(table)
    assert (middle, coef) == (4, kwargs["cost_coef"]) and lo < coef < hi
    assert table[3]["cost_fraction"] == table[4]["cost_fraction"] > table[3]["bitops_fraction"]
