"""``abn-gym perf --latency-table``: a measured per-layer table that loads as a cost model."""

import gymnasium as gym
import numpy as np
import pytest

import abn_gym
from agents.app.cli import main
from agents.app.perf.latency import measure_latencies
from supernets.costs import cost_table, layer_names, load_cost_file
from supernets.foundation.errors import UsageError
from supernets.registry import load_supernet


def test_latency_table_is_measured_written_and_loads_into_an_env(tmp_path, capsys):
    path = tmp_path / "ms.csv"
    argv = ["perf", "--latency-table", str(path), "--latency-batch", "4", "--latency-repeats", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"wrote {path}" in out and "| measured / all-8 |" in out and "| BitOps / all-8 |" in out
    unit, costs = load_cost_file(path)
    net = load_supernet(abn_gym.QUARTER)
    names = layer_names(net)
    assert unit == "ms" and set(costs) == {*names["switchable"], *names["fixed"]}
    assert all(set(costs[n]) == set(net.bit_choices) for n in names["switchable"])
    assert costs["stem"].keys() == costs["fc"].keys() == {8}
    assert all(c > 0 for row in costs.values() for c in row.values())
    table = cost_table(net, net.bit_choices, str(path))
    assert table.unit == "ms" and table.all8 == pytest.approx(
        sum(costs[n][8] for n in names["switchable"]) + costs["stem"][8] + costs["fc"][8], rel=1e-12
    )
    env = gym.make("ABN-ResNet20Quarter-v1", split="val", cost_model=str(path))
    env.reset(seed=0)
    *_, info = env.step(0)
    assert info["cost_step"] == costs[names["switchable"][0]][2]
    assert env.unwrapped.cost_unit == "ms" and np.isfinite(info["bitops_step"])


def test_latency_table_refuses_a_path_it_cannot_write_as_csv(tmp_path, capsys):
    assert main(["perf", "--latency-table", str(tmp_path / "ms.json"), "--latency-batch", "2"]) == 2
    assert "give a path ending in .csv" in capsys.readouterr().err
    with pytest.raises(UsageError, match="must both be at least 1"):
        measure_latencies(abn_gym.QUARTER, batch=0)
    assert not (tmp_path / "ms.json").exists()
