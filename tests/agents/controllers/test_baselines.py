"""Every baseline on a small subset, and the orderings that must hold between them."""

import numpy as np
import pytest

from agents.app.bench import run_agent
from agents.controllers.base import AgentProtocolError, check_agent
from agents.controllers.baselines import FixedAgent, GreedyAgent, OracleAgent, RandomAgent, StaticAgent
from agents.controllers.registry import BenchContext, make_agent
from agents.controllers.static_configs import static_search

EPISODES = 60


@pytest.fixture(scope="module")
def fixed_records():
    return {b: run_agent(FixedAgent(b), "ABN-ResNet-v0", "test", EPISODES, progress=False) for b in (2, 4, 8)}


def _acc(records):
    return np.mean([r["correct"] for r in records])


def test_fixed_bitops_rise_with_bits(fixed_records):
    ops = [np.mean([r["bitops"] for r in fixed_records[b]]) for b in (2, 4, 8)]
    assert ops[0] < ops[1] < ops[2]
    assert all(r["bits"] == [4] * 18 for r in fixed_records[4])


def test_oracle_never_below_fixed8_and_never_costlier(fixed_records):
    recs = run_agent(OracleAgent(), "ABN-ResNet-v0", "test", EPISODES, progress=False)
    f8 = {r["index"]: r for r in fixed_records[8]}
    for r in recs:
        assert r["bitops"] <= f8[r["index"]]["bitops"]
        if f8[r["index"]]["correct"]:
            assert r["correct"], r["index"]
        assert r["decision_macs"] > 0
    assert _acc(recs) >= _acc(fixed_records[8])


def test_greedy_is_label_free_and_counts_lookahead():
    agent = GreedyAgent(tau=0.6)
    recs = run_agent(agent, "ABN-ResNet-v0", "test", EPISODES, progress=False)
    assert len(recs) == EPISODES and all(r["decision_macs"] > 0 for r in recs)
    assert not agent.uses_label
    # A stricter confidence threshold never chooses fewer bits on average.
    strict = run_agent(GreedyAgent(tau=0.99), "ABN-ResNet-v0", "test", EPISODES, progress=False)
    assert np.mean([r["bitops"] for r in strict]) >= np.mean([r["bitops"] for r in recs])


def test_label_is_hidden_from_agents_that_do_not_declare_it():
    class Peeker(RandomAgent):
        name = "peeker"

        def act(self, obs, infos):
            infos["view"].labels  # noqa: B018 - must raise
            return super().act(obs, infos)

    with pytest.raises(PermissionError, match="uses_label"):
        run_agent(Peeker(), "ABN-ResNet-v0", "test", 4, progress=False)


def test_random_is_seeded():
    a = run_agent(RandomAgent(), "ABN-ResNet-v0", "test", 20, seed=3, progress=False)
    b = run_agent(RandomAgent(), "ABN-ResNet-v0", "test", 20, seed=3, progress=False)
    c = run_agent(RandomAgent(), "ABN-ResNet-v0", "test", 20, seed=4, progress=False)
    assert a == b and a != c


def test_static_search_stays_within_targets(net):
    from supernets.data import load_split

    result = static_search(net, load_split("val"), targets=(3, 4), bit_choices=(2, 4, 8), limit=100, progress=False)
    for b, cfg in result["configs"].items():
        assert net.bitops(cfg) <= net.bitops([int(b)] * 18)
        assert set(cfg) <= {2, 4, 8}
    recs = run_agent(StaticAgent(result["configs"]["4"], "static-4"), "ABN-ResNet-v0", "test", 10, progress=False)
    assert all(r["bits"] == result["configs"]["4"] for r in recs)


def test_budget_env_agents_respect_masks():
    recs = run_agent(FixedAgent(8), "ABN-ResNet-Budget-v0", "test", 20, progress=False)
    assert max(r["bitops_fraction"] for r in recs) <= 0.25 + 1e-9


def test_protocol_errors_and_unknown_names():
    class NotAnAgent:
        def act(self, obs, infos):
            return obs

    with pytest.raises(AgentProtocolError, match="lacks reset, name"):
        check_agent(NotAnAgent())
    ctx = BenchContext("ABN-ResNet-v0", "resnet20-fashionmnist", (2, 3, 4, 5, 6, 7, 8))
    with pytest.raises(ValueError, match="known agents: random, fixed-2"):
        make_agent("genius", ctx)
    with pytest.raises(ValueError, match="not an action"):
        make_agent("fixed-9", BenchContext("x", "resnet20-fashionmnist", (2, 4)))
