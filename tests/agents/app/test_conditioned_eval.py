"""``python -m agents.app.conditioned_eval``: a shipped curve scored against the static rows on the same images."""

from __future__ import annotations

import json

import numpy as np

from agents.app.conditioned_eval import main
from agents.app.curves import hypervolume
from agents.app.episodes import run_agent
from agents.controllers.baselines import FixedAgent
from agents.controllers.model_agents import BenchContext
from agents.controllers.registry import make_sweepable

STEEP = "ABN-ResNet20Quarter-v1"
CTX = BenchContext(STEEP, "resnet20-quarter-fashionmnist", (2, 3, 4, 5, 6, 7, 8))
N = 20


def test_envelope_curve_points_and_hypervolume(tmp_path, capsys):
    assert (
        main(["envelope", "--split", "val", "--episodes", str(N), "--sweep-points", "3", "--out", str(tmp_path)]) == 0
    )
    result = json.loads((tmp_path / "curves.json").read_text())
    assert "HV, points" in (tmp_path / "curves.md").read_text()
    (curve,) = result["curves"]
    assert curve["name"] == "envelope@sweep" and curve["knob"] == "weight" and curve["k"] == 3
    score = curve["score"]
    # each point, run again here at its knob value: the same accuracy and cost
    sweep = make_sweepable("envelope", CTX)
    accuracies, costs = [], []
    for point in score["points"]:
        agent, overrides = sweep.at(point["value"])
        records = run_agent(agent, STEEP, "val", N, env_overrides=overrides, progress=False)
        accuracies.append(np.mean([r["correct"] for r in records]))
        costs.append(np.mean([r["bitops_fraction"] for r in records]))
    np.testing.assert_allclose([p["accuracy"] for p in score["points"]], accuracies)
    np.testing.assert_allclose([p["cost"] for p in score["points"]], costs)
    # the hypervolume over the default range, above fixed-2's accuracy on the same images
    fixed2 = run_agent(FixedAgent(2), STEEP, "val", N, progress=False)
    reference = np.mean([r["correct"] for r in fixed2])
    assert score["reference"]["row"] == "fixed-2" and np.isclose(score["reference"]["accuracy"], reference)
    low, high = score["range"]
    assert np.isclose(low, np.mean([r["bitops_fraction"] for r in fixed2]))
    assert np.isclose(score["hv"], hypervolume(costs, np.array(accuracies), low, high, reference))


def test_an_unknown_curve_is_one_error_line(tmp_path, capsys):
    assert main(["nothing@sweep", "--split", "val", "--episodes", "4", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("abn-gym: error: unknown curve 'nothing'") and err.count("\n") == 1
