"""``bench --agents NAME@sweep``: curves on the leaderboard's images, beside the table, never in it."""

import json
from dataclasses import replace

import numpy as np
import pytest

from agents.app.bench import BenchArgs, bench
from agents.app.bench_resume import load_finished
from agents.app.clean import CleanPool
from agents.app.cli import main
from agents.app.curves import hypervolume
from agents.app.episodes import run_agent
from agents.app.sweep_bench import run_curves
from agents.app.validate import validate
from agents.controllers.baselines import FixedAgent
from agents.controllers.escalation import EscalationAgent, load_policy
from agents.controllers.registry import default_agent_names, shipped_policy
from agents.controllers.static_configs import POLICY_DIR
from agents.controllers.sweepables import EscalationSweep

QUARTER = "ABN-ResNet20Quarter-v1"


class FixedSweep:
    """A user's sweepable: fixed-b over b, so each point is a static row of the front."""

    name = "fixed-sweep"
    sweep_parameter = "weight"

    def sweep_values(self, k, low, high):
        return [2.0, 3.0, 4.0][:k]

    def at(self, value):
        return FixedAgent(int(value)), {}


class NotSweepable:
    name = "not-sweepable"


def policy():
    return load_policy(shipped_policy("escalation", QUARTER))


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    args = BenchArgs(
        env=QUARTER, agents=["fixed-4", "escalation@sweep"], split="val", episodes=60, out=str(out), progress=False
    )
    return out, bench(replace(args, sweep_points=4))


def test_the_escalation_curve_is_its_prices_on_the_same_images(swept):
    out, res = swept
    doc = json.loads((out / "results.json").read_text())
    (curve,) = doc["curves"]
    assert curve["name"] == "escalation@sweep" and curve["knob"] == "price" and curve["k"] == 4
    assert curve["values"] == sorted(curve["values"], reverse=True)  # cheapest (highest price) first
    # Each point is escalation@<c> at its price, run again here on the same images.
    for i, value in enumerate(curve["values"]):
        mine = [r for r in curve["records"] if r["point"] == i]
        again = run_agent(EscalationAgent(policy(), cost_coef=value), QUARTER, "val", 60, progress=False)
        assert [r["bits"] for r in mine] == [r["bits"] for r in again]
        assert curve["score"]["points"][i]["accuracy"] == pytest.approx(np.mean([r["correct"] for r in again]))
    costs = [p["cost"] for p in curve["score"]["points"]]
    assert costs == sorted(costs)  # a lower price escalates a superset of the inputs
    # The hypervolumes against the front's rows as results.json lists them, and all-2's accuracy.
    front = {f["agent"]: f for f in doc["front"]}
    fraction = 1 / front["fixed-8"]["bitops"]
    low, high = front["fixed-2"]["bitops"] * fraction, front["fixed-4"]["bitops"] * fraction
    score = curve["score"]
    assert score["range"] == pytest.approx([low, high]) and score["reference"]["row"] == "fixed-2"
    ref = front["fixed-2"]["accuracy"]
    accs = np.array([p["accuracy"] for p in score["points"]])
    assert score["hv"] == pytest.approx(hypervolume(costs, accs, low, high, ref))
    statics = [(f["bitops"] * fraction, f["accuracy"]) for f in doc["front"]]
    want = hypervolume([c for c, _ in statics], np.array([a for _, a in statics]), low, high, ref)
    assert score["front_hv"] == pytest.approx(want)
    assert res["curves"][0]["score"] == score and "records" not in res["curves"][0]


@pytest.mark.slow
def test_curves_leave_the_table_as_it_is(swept, tmp_path):
    out, res = swept
    plain = bench(
        BenchArgs(env=QUARTER, agents=["fixed-4"], split="val", episodes=60, out=str(tmp_path), progress=False)
    )
    assert [r["agent"] for r in res["rows"]] == ["fixed-4"]
    for key in ("accuracy", "bitops", "paired", "front"):
        assert res["rows"][0][key] == plain["rows"][0][key]
    text = (out / "leaderboard.md").read_text()
    table, curves = text.split("**Curves**")

    def cells(text):
        return [line.rsplit("|", 2)[0] for line in text.strip().splitlines()]  # all but the wall seconds

    assert cells(table) == cells((tmp_path / "leaderboard.md").read_text())
    assert "| escalation@sweep | price | 4 |" in curves
    assert (out / "curves.png").stat().st_size > 0 and not (tmp_path / "curves.png").exists()


def test_the_calibration_reaches_its_targets():
    sweep = EscalationSweep(policy(), QUARTER, {}, images=100)
    _, base, extra = sweep.calibrate()
    low, high = base + 0.1 * extra, base + 0.9 * extra
    targets = np.linspace(low, high, 5)
    for target, price in zip(targets, sweep.sweep_values(5, low, high)):
        agent, overrides = sweep.at(price)
        ran = run_agent(agent, QUARTER, "val", 100, env_overrides=overrides, progress=False)
        # On the calibration images, the point costs its target to within one image's escalation.
        assert np.mean([r["bitops_fraction"] for r in ran]) == pytest.approx(target, abs=extra / 100 / 2 + 1e-9)


@pytest.mark.slow
def test_a_users_sweep_of_fixed_rows_is_the_front_there(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "mysweep.py").write_text(
        "from tests.agents.app.test_sweep_bench import FixedSweep\nclass Mine(FixedSweep):\n    pass\n"
    )
    args = BenchArgs(env=QUARTER, agents=["mysweep:Mine@sweep"], split="val", episodes=40, out=str(tmp_path / "o"))
    res = bench(replace(args, isolation="none", progress=False, sweep_points=3))
    rows = [r["agent"] for r in res["rows"]]
    assert rows == default_agent_names(QUARTER)  # only curves listed: the curve beside the default table
    (curve,) = res["curves"]
    front = {f["agent"]: f["accuracy"] for f in res["front"]}
    assert [p["accuracy"] for p in curve["score"]["points"]] == [front[f"fixed-{b}"] for b in (2, 3, 4)]
    assert all(p["mixture_gap"] <= 1e-12 for p in curve["score"]["points"])  # never above the static mixtures
    assert curve["score"]["difference"] <= 1e-12 and curve["knob"] == "weight"


def test_a_finished_curve_is_reused_by_a_rerun(swept, tmp_path):
    out, _ = swept
    doc = json.loads((out / "results.json").read_text())
    names = [f["agent"] for f in doc["front"]]
    fixed8 = next(f for f in doc["front"] if f["agent"] == "fixed-8")["bitops"]
    static = (names, [r for r in doc["records"] if r["agent"] in names], [f["bitops"] / fixed8 for f in doc["front"]])
    args = BenchArgs(split="val", episodes=60, progress=False, sweep_points=3)
    partial, settings = tmp_path / "partial", {"run": 1}
    partial.mkdir()
    sweep = EscalationSweep(policy(), QUARTER, {}, "escalation", source=str(shipped_policy("escalation", QUARTER)))
    with CleanPool(1) as pool:
        first = run_curves(
            [("escalation@sweep", sweep)], args, (QUARTER, {}), 60, static, pool, (partial, settings, {})
        )
        finished = load_finished(partial, settings)
        assert len(finished) == 1

        class Refuses(EscalationSweep):
            def at(self, value):
                raise AssertionError("a finished curve is not run again")

        again = Refuses(policy(), QUARTER, {}, "escalation", source=sweep.source)
        second = run_curves(
            [("escalation@sweep", again)], args, (QUARTER, {}), 60, static, pool, (partial, settings, finished)
        )
    assert second[0]["score"] == first[0]["score"]


@pytest.mark.parametrize(
    "agents,extra,needle",
    [
        ("ppo:model.zip@sweep", [], "a model without a card cannot be swept"),
        ("greedy@sweep", [], "can be swept as NAME@sweep"),
        (f"{__name__}:FixedSweep@sweep", [], "pass --isolation none"),
        (f"{__name__}:NotSweepable@sweep", ["--isolation", "none"], "is not a SweepableAgent"),
        (f"{shipped_policy('ppo', QUARTER)}@sweep", [], "was not trained with a budget"),
        ("escalation@sweep", ["--sweep-range", "0.3,0.1"], "--sweep-range '0.3,0.1'"),
    ],
)
def test_what_cannot_be_swept_is_refused(agents, extra, needle, tmp_path, capsys):
    argv = ["bench", "--env", QUARTER, "--agents", agents, "--out", str(tmp_path / "o"), "--no-progress", *extra]
    assert main(argv) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_validate_replays_the_curves(swept, tmp_path):
    out, _ = swept
    report = validate(out / "results.json", progress=False)
    doc = json.loads((out / "results.json").read_text())
    assert report["ok"] and report["episodes"] == len(doc["records"]) + len(doc["curves"][0]["records"])
    doc["curves"][0]["records"][5]["bits"] = [8] * len(doc["curves"][0]["records"][5]["bits"])
    (tmp_path / "tampered.json").write_text(json.dumps(doc))
    errors = validate(tmp_path / "tampered.json", progress=False)["errors"]
    assert errors and all(e.startswith("curve 'escalation@sweep'") for e in errors)


def test_the_shipped_conditioned_policies_bench_as_curves(tmp_path):
    """ppo-budget@sweep and envelope@sweep: their cards' val calibrations choose the knob values."""
    args = BenchArgs(
        env=QUARTER,
        agents=["fixed-2", "ppo-budget@sweep", "envelope@sweep"],
        split="val",
        episodes=40,
        out=str(tmp_path / "b"),
        progress=False,
    )
    result = bench(replace(args, sweep_points=3))
    curves = {c["name"]: c for c in result["curves"]}
    assert set(curves) == {"ppo-budget@sweep", "envelope@sweep"}
    card = json.loads((POLICY_DIR / f"ppo-budget-{QUARTER}.json").read_text())
    assert "calibration" in card
    budgets = [p["value"] for p in curves["ppo-budget@sweep"]["score"]["points"]]
    low, high = curves["ppo-budget@sweep"]["score"]["range"]
    # calibrated: the budgets are not the cost targets themselves (a cap costs less than the cap on average)
    assert budgets == sorted(budgets) and not np.allclose(budgets, np.linspace(low, high, 3))
    assert {c["knob"] for c in curves.values()} == {"budget", "weight"}
