"""The agent worker: its message format, its measured decision cost, and the bench's side of the pipe."""

from __future__ import annotations

import inspect
import pickle
import textwrap

import numpy as np
import pytest
import torch

from abn_gym.registration import env_kwargs
from abn_gym.vector import ABNVectorEnv
from agents.app.episodes import run_agent
from agents.app.isolation import AgentWorkerError, IsolatedAgent
from agents.controllers.base import AgentFailedError
from agents.controllers.baselines import OracleAgent
from agents.controllers.registry import BenchContext, load_user_agent
from agents.controllers.worker import WorkerMessageError, decode, encode, measured_act

ENV = "ABN-ResNet20Quarter-v1"


def test_messages_round_trip_arrays_dicts_and_fields():
    msg = {
        "op": "act",
        "layer": 3,
        "obs": np.arange(12, dtype=np.float32).reshape(3, 4),
        "mask": np.array([[True, False]]),
        "dict": {"a": np.arange(3), "b": np.ones((2, 2))},
    }
    back = decode(encode(msg))
    assert back["op"] == "act" and back["layer"] == 3
    for key in ("obs", "mask"):
        assert back[key].dtype == msg[key].dtype and np.array_equal(back[key], msg[key])
    assert set(back["dict"]) == {"a", "b"} and np.array_equal(back["dict"]["b"], np.ones((2, 2)))


def test_nothing_but_the_format_is_decoded(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with pytest.raises(WorkerMessageError):
        decode(pickle.dumps(Payload()))
    assert not marker.exists()
    with pytest.raises(WorkerMessageError, match="cannot cross"):
        encode({"actions": np.array([object()])})
    forged = encode({"a": np.zeros(2)}).replace(b"<f8", b"|O8")
    with pytest.raises(WorkerMessageError):
        decode(forged)


class LinearAgent:
    """A PyTorch agent whose decision is one Linear layer: in * out MACs per image and step."""

    name = "linear"

    def __init__(self, n_in=16, n_out=3):
        torch.manual_seed(0)
        self.net = torch.nn.Linear(n_in, n_out)

    def reset(self, num_envs, seed):
        pass

    def act(self, obs, infos):
        with torch.no_grad():
            scores = self.net(torch.as_tensor(obs[:, : self.net.in_features]))
        return scores.argmax(1).numpy().astype(np.int64) % len(infos["bit_choices"])


def test_measured_cost_of_a_linear_layer():
    agent = LinearAgent(16, 3)
    obs = np.random.default_rng(0).random((5, 20), dtype=np.float32)
    _, macs = measured_act(agent, obs, {"bit_choices": (2, 4, 8)})
    assert macs == 5 * 16 * 3
    _, none = measured_act(type("Plain", (), {"act": lambda self, o, i: np.zeros(len(o))})(), obs, {})
    assert none == 0


AGENTS = """
import os
import numpy as np
from agents.controllers.baselines import OracleAgent

class WorkerOracle(OracleAgent):
    # The built-in oracle as a user agent: look-ahead and labels become requests to the bench.
    name = "worker-oracle"

class Dying:
    name = "dying"
    def reset(self, num_envs, seed):
        pass
    def act(self, obs, infos):
        os._exit(3)

class Raising:
    name = "raising"
    def reset(self, num_envs, seed):
        pass
    def act(self, obs, infos):
        raise KeyError("nope")
"""


@pytest.fixture
def folder(tmp_path, monkeypatch):
    (tmp_path / "agents_under_test.py").write_text(
        "import numpy as np\nimport torch\n\n" + textwrap.dedent(_source(LinearAgent))
    )
    (tmp_path / "worker_agents.py").write_text(textwrap.dedent(AGENTS))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def _source(cls):
    return inspect.getsource(cls)


def _isolated(spec):
    probe = ABNVectorEnv(1, **env_kwargs(ENV, split="val"))
    ctx = BenchContext(ENV, probe.config.supernet, probe.bit_choices)
    spaces = (probe.single_observation_space, probe.single_action_space)
    return IsolatedAgent(spec, ctx, "class", spaces, probe.num_layers, tuple(probe.engine.net.bit_choices))


def test_a_worker_gives_the_in_process_episodes_and_measures_them(folder):
    here = run_agent(load_user_agent("agents_under_test:LinearAgent"), ENV, "val", 12, progress=False)
    with _isolated("agents_under_test:LinearAgent") as agent:
        there = run_agent(agent, ENV, "val", 12, progress=False)
        assert agent._proc.is_alive()
    assert not agent._proc.is_alive()  # closed on leaving the block
    assert there == here
    steps = 18  # every switchable layer is a decision
    assert {r["decision_macs"] for r in there} == {steps * 16 * 3}


@pytest.mark.slow
def test_a_raising_or_dying_worker_agent_gets_one_clear_error(folder):
    with (
        _isolated("worker_agents:Raising") as agent,
        pytest.raises(AgentFailedError, match=r"agent 'raising' raised in act\(\): KeyError: 'nope' \(at "),
    ):
        run_agent(agent, ENV, "val", 4, progress=False)
    with (
        _isolated("worker_agents:Dying") as agent,
        pytest.raises(AgentWorkerError, match=r"'dying' died in act\(\) \(exit code 3\)"),
    ):
        run_agent(agent, ENV, "val", 4, progress=False)


@pytest.mark.slow
def test_lookahead_and_labels_are_answered_and_counted_for_declared_agents(folder):
    here = run_agent(OracleAgent(), ENV, "val", 12, progress=False)
    with _isolated("worker_agents:WorkerOracle") as agent:
        assert agent.uses_label and agent.uses_lookahead
        there = run_agent(agent, ENV, "val", 12, progress=False)
    assert [{**r, "agent": "oracle"} for r in there] == here  # the same actions, and the same look-ahead MACs
    assert all(r["decision_macs"] > 0 for r in there)
