"""The moonshot's sweep: one budget-conditioned policy at several budgets, each point against the static mixtures."""

import json

import numpy as np
import pytest

from agents.app.budget_sweep import main, sweep
from agents.app.train import AgentTrainArgs, train_agent

BUDGET_ID = "ABN-ResNet20Quarter-Budget-v1"


@pytest.fixture(scope="module")
def budget_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("budget")
    args = AgentTrainArgs(
        algo="maskable-ppo",
        env=BUDGET_ID,
        budget="0.1,0.45",
        decide_at="0,7,13",
        normalize_obs=True,
        num_envs=8,
        n_steps=6,
        batch_size=48,
        n_epochs=1,
        net_arch="16",
        timesteps=96,
        eval_episodes=0,
        out=str(out),
    )
    return train_agent(args, command="test")


@pytest.mark.slow
def test_each_budget_is_kept_and_compared_with_the_mixtures(budget_model, tmp_path):
    from agents.app.bench import run_agent
    from agents.controllers.sb3_agent import SB3Agent

    result = sweep(budget_model, [0.1, 0.3], split="val", episodes=48)
    assert [p["budget"] for p in result["points"]] == [0.1, 0.3] and result["episodes"] == 48
    for point in result["points"]:
        assert point["max_bitops_fraction"] <= point["budget"] + 1e-9  # the mask holds every episode to its budget
    # The gap is the policy's accuracy minus its mixture's, recomputed here from the static rows' own runs.
    static = {s["agent"]: s for s in result["static"]}
    agent = SB3Agent.load(budget_model)
    for point in result["points"]:
        if point["mixture"] is None:
            continue
        records = run_agent(
            agent,
            BUDGET_ID,
            "val",
            48,
            env_overrides={"budget": point["budget"], "decide_at": (0, 7, 13)},
            progress=False,
        )
        accuracy = np.mean([r["correct"] for r in records])
        mixed = sum(w * static[name]["accuracy"] for name, w in point["mixture"])
        assert point["accuracy"] == pytest.approx(accuracy)
        assert point["mixture_gap"] == pytest.approx(accuracy - mixed)
        assert point["mixture_gap_ci"][0] <= point["mixture_gap"] <= point["mixture_gap_ci"][1]
    assert (
        main([str(budget_model), "--budgets", "0.2", "--split", "val", "--episodes", "24", "--out", str(tmp_path)]) == 0
    )
    assert json.loads((tmp_path / "sweep.json").read_text())["points"][0]["budget"] == 0.2
    assert (tmp_path / "sweep.png").stat().st_size > 0 and "| 0.200 |" in (tmp_path / "sweep.md").read_text()


def test_a_model_without_a_budget_is_refused(tmp_path, capsys):
    assert main(["agents/policies/ppo-ABN-ResNet-v0.zip", "--budgets", "0.2", "--out", str(tmp_path)]) == 2
    assert "was not trained with a budget" in capsys.readouterr().err


@pytest.mark.slow
def test_the_sweep_is_scored_as_a_curve_and_the_bench_sweeps_the_model_alike(budget_model, tmp_path):
    from dataclasses import replace

    from agents.app.bench import BenchArgs, bench
    from agents.app.curves import hypervolume

    budgets = [0.1, 0.2, 0.3]
    result = sweep(budget_model, budgets, split="val", episodes=48)
    static = {s["agent"]: s for s in result["static"]}
    low, high = static["fixed-2"]["cost"], static["fixed-4"]["cost"]
    costs = [p["bitops_fraction"] for p in result["points"]]
    accs = np.array([p["accuracy"] for p in result["points"]])
    want = hypervolume(costs, accs, low, high, static["fixed-2"]["accuracy"])
    assert result["curve"]["hv"] == pytest.approx(want) and result["curve"]["range"] == pytest.approx([low, high])
    # The bench's PATH.zip@sweep on the plain steep id: the same points at the same budgets (the model in a worker).
    args = BenchArgs(env="ABN-ResNet20Quarter-v1", agents=[f"{budget_model}@sweep"], split="val", episodes=48)
    res = bench(replace(args, out=str(tmp_path), progress=False, sweep_points=3, sweep_range=[0.1, 0.3]))
    (curve,) = res["curves"]
    assert curve["knob"] == "budget" and curve["values"] == pytest.approx(budgets)
    assert [p["accuracy"] for p in curve["score"]["points"]] == pytest.approx(list(accs))
    assert [p["cost"] for p in curve["score"]["points"]] == pytest.approx(costs)
    mine = hypervolume(costs, accs, 0.1, 0.3, static["fixed-2"]["accuracy"])
    assert curve["score"]["hv"] == pytest.approx(mine)
