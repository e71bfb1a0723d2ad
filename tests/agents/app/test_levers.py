"""`abn-gym levers`: every lever trains, runs on val beside the static front, and lands in the table."""

import json
import math
import shlex

import pytest

from agents.app.cli import build_parser
from agents.app.levers import LEVERS, LeverArgs, late_gap, observations, ppo_train_args, run_levers, train_command
from agents.app.train import AgentTrainArgs
from supernets.foundation.cliargs import dataclass_from_args
from supernets.foundation.errors import UsageError


@pytest.mark.slow
def test_levers_train_bench_on_val_and_resume(tmp_path):
    args = LeverArgs(
        env="ABN-ResNet20Quarter-v1",
        out=str(tmp_path),
        levers=["ppo-norm-decide-group", "escalation-k3-h4"],
        ppo_images=256,
        escalation_images=300,
        episodes=60,
        seeds=[0, 1],
        progress=False,
    )
    result = run_levers(args)
    names = [r["agent"] for r in result["rows"]]
    expected = {f"{lever}/seed-{s}" for lever in args.levers for s in (0, 1)}
    assert expected | {"fixed-2", "static-3"} <= set(names)
    root = tmp_path / "ABN-ResNet20Quarter-v1"
    doc = json.loads((root / "levers.json").read_text())
    assert doc["rows"] == result["rows"] and doc["seeds"] == [0, 1]
    bench = json.loads((root / "bench" / "results.json").read_text())
    assert bench["split"] == "val"  # levers are chosen on val, never on test
    table = (root / "levers.md").read_text()
    for name in expected:
        row = next(r for r in result["rows"] if r["agent"] == name)
        lever, seed = name.split("/seed-")
        assert f"| {lever} |" in table and f"| {seed} | {100 * row['accuracy']:.2f} |" in table
    # The normalisation column: VecNormalize for the PPO lever that sets it, the escalation model's own standardising.
    lines = table.splitlines()
    assert all("| normalised (VecNormalize" in ln for ln in lines if ln.startswith("| ppo-norm-decide-group |"))
    assert all("| standardised (" in ln for ln in lines if ln.startswith("| escalation-k3-h4 |"))
    # The PPO runs kept their best policy on val, and their cards hold the command that trains them.
    card = json.loads((root / "runs" / "ppo-norm-decide-group" / "seed-1" / "card.json").read_text())
    assert card["selected_on_val"]["best"] is not None and card["env_kwargs"]["decide_at"] == [0, 7, 13]
    assert card["command"].startswith("abn-gym train ") and "--seed 1" in card["command"]
    # A second run trains nothing: the cards are there.
    stamp = (root / "runs" / "ppo-norm-decide-group" / "seed-1" / "card.json").stat().st_mtime_ns
    run_levers(args)
    assert (root / "runs" / "ppo-norm-decide-group" / "seed-1" / "card.json").stat().st_mtime_ns == stamp


def test_observations_column_names_raw_ppo_levers_raw():
    raw = next(lv for lv in LEVERS if lv.name == "ppo-once-baseline")
    normalised = next(lv for lv in LEVERS if lv.name == "ppo-norm-once-baseline-lin")
    assert observations(raw) == "raw" and observations(normalised).startswith("normalised")
    assert ppo_train_args(normalised, LeverArgs(), 0, "x").lr_schedule == "linear"


def test_late_gap_is_the_mean_of_the_last_third():
    evaluations = [{"timesteps": t, "mixture_gap": g} for t, g in [(30, 0.9), (60, 0.1), (90, 0.2), (100, 0.6)]]
    # The last third of 90 trained steps starts at step 60: 0.1, 0.2 and 0.6 count, the early 0.9 does not.
    assert late_gap(evaluations, 90) == pytest.approx(0.3)
    # A NaN gap (a policy cheaper than every static row) is left out, not averaged in; none left gives NaN.
    with_nan = [{"timesteps": 60, "mixture_gap": float("nan")}, {"timesteps": 90, "mixture_gap": 0.2}]
    assert late_gap(with_nan, 90) == pytest.approx(0.2) and math.isnan(late_gap([], 90))


def test_unknown_lever_is_refused(tmp_path):
    with pytest.raises(UsageError, match="unknown lever"):
        run_levers(LeverArgs(out=str(tmp_path), levers=["nope"]))
    assert len({lv.name for lv in LEVERS}) == len(LEVERS)


@pytest.mark.parametrize("lever", [lv for lv in LEVERS if lv.kind == "ppo"], ids=lambda lv: lv.name)
def test_card_command_trains_exactly_the_lever(lever, tmp_path):
    """The command a lever writes into its card, parsed by `abn-gym train`, gives back the same arguments."""
    args = ppo_train_args(lever, LeverArgs(env="ABN-ResNet20Quarter-v1", seeds=[3]), 3, tmp_path / "run x")
    argv = shlex.split(train_command(args))
    assert argv[:2] == ["abn-gym", "train"]
    assert dataclass_from_args(AgentTrainArgs, build_parser().parse_args(argv[1:])) == args


def test_ppo_levers_train_on_the_same_images_whatever_their_decisions():
    """The budget is in images: 3 decisions per image take a sixth of the steps of 18, with whole-episode rollouts."""
    every = ppo_train_args(LEVERS[0], LeverArgs(ppo_images=1000), 0, "x")
    coarse = ppo_train_args(next(lv for lv in LEVERS if lv.decisions == 3), LeverArgs(ppo_images=1000), 0, "x")
    assert every.timesteps == 18_000 and coarse.timesteps == 3_000
    assert every.n_steps % 18 == 0 and coarse.n_steps % 3 == 0
    assert every.timesteps // every.n_steps == coarse.timesteps // coarse.n_steps


def test_no_train_tabulates_finished_runs_only(tmp_path, monkeypatch):
    """--no-train trains nothing; with no finished run it says so instead of benching an empty table."""
    import agents.app.levers

    monkeypatch.setattr(agents.app.levers, "train_agent", lambda *a, **k: pytest.fail("--no-train trained a lever"))
    with pytest.raises(UsageError, match="no finished runs"):
        run_levers(LeverArgs(out=str(tmp_path), levers=["ppo-norm"], seeds=[0, 1], train=False, progress=False))


def test_a_lever_sets_its_own_rollout_and_selection():
    """The one-decision levers keep their 512-step rollouts and 60k-step selection whatever the image budget."""
    once = next(lv for lv in LEVERS if lv.name == "ppo-norm-once-baseline")
    args = ppo_train_args(once, LeverArgs(ppo_images=900_000), 2, "x")
    assert (args.timesteps, args.n_steps, args.batch_size) == (900_000, 4, 256)
    assert (args.keep_best_every, args.checkpoint_every) == (60_000, 60_000)
    assert (args.reward, args.decide_at, args.normalize_obs) == ("baseline", "0", True)
    shared = ppo_train_args(next(lv for lv in LEVERS if lv.name == "ppo-norm-once-group"), LeverArgs(), 0, "x")
    assert (shared.n_steps, shared.batch_size, shared.keep_best_every) == (2, 64, 110_000 // 10)
