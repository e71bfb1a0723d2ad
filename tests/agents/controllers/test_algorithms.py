"""The one list of algorithms: every name resolves to its SB3 class, and every user of the list reads it."""

import pytest

from agents.controllers.algorithms import ALGORITHMS, ALGOS, RL_ZOO3_ALGOS, algo_class, algorithm, by_rl_zoo3_name
from supernets.foundation.errors import UnknownNameError


def test_each_algorithm_has_one_name_of_each_kind_and_its_class():
    assert len(set(ALGOS)) == len(ALGOS) == len({a.rl_zoo3 for a in ALGORITHMS}) == 7
    for a in ALGORITHMS:
        cls = algo_class(a.name)
        assert cls.__name__ == a.cls and cls.__module__.split(".")[0] == a.module
        assert by_rl_zoo3_name(a.rl_zoo3) is a and algorithm(a.name) is a
    assert [a.name for a in ALGORITHMS if a.recurrent] == ["recurrent-ppo"]
    assert [a.name for a in ALGORITHMS if a.masked] == ["maskable-ppo"]
    with pytest.raises(UnknownNameError, match="unknown algo 'sac'; choose one of"):
        algo_class("sac")


def test_train_sb3_agent_and_the_zoo_read_the_same_list():
    from agents.app.cli import build_parser
    from agents.app.zoo import plan
    from agents.controllers import sb3_agent

    assert sb3_agent.ALGOS is ALGOS and plan.RL_ZOO3_ALGOS is RL_ZOO3_ALGOS
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    (algo,) = [a for a in train._actions if a.dest == "algo"]
    assert tuple(algo.choices) == ALGOS
