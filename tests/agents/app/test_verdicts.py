"""Comparisons a user can trust (#19): the whole front, one name one row, the model's own env, nothing lost.

Everything runs on the steep quarter-width supernet with a few hundred images, for speed.
"""

import json
import shutil

import numpy as np
import pytest

from agents.app.bench import BenchArgs, bench, resolve_env
from agents.app.cli import main
from agents.app.train import AgentTrainArgs, train_agent
from agents.app.validate import validate
from agents.controllers.static_configs import POLICY_DIR

QUARTER = "ABN-ResNet20Quarter-v1"
BUDGET = "ABN-ResNet20Quarter-Budget-v1"
# Every static row the front holds (#26): the dense front runs at 17 targets, listed or not.
STATIC = {f"{q / 4:g}" for q in range(9, 20)} | {f"{h / 2:g}" for h in range(10, 16)}  # 2.25 to 4.75, 5 to 7.5
FRONT = {f"fixed-{b}" for b in range(2, 9)} | {f"static-{b}" for b in STATIC}


class AllFive:
    """Every layer at 5 bits: fixed-5 under another name."""

    name = "all-5"

    def reset(self, num_envs, seed):
        pass

    def act(self, obs, infos):
        return np.full(len(obs), list(infos["bit_choices"]).index(5))


class AllFiveTwin(AllFive):
    pass


class FixedFourImpostor(AllFive):
    name = "fixed-4"  # plays 5 bits under fixed-4's name


class FloatActions(AllFive):
    name = "floats"

    def act(self, obs, infos):
        return np.full(len(obs), 2.7)


class Raises(AllFive):
    name = "raiser"

    def act(self, obs, infos):
        return {}["no such key"]


class NeedsArguments(AllFive):
    def __init__(self, threshold):
        self.threshold = threshold


class Interrupting(AllFive):
    """Ctrl-C in the middle of its second batch of episodes, while ``armed``."""

    name = "interrupting"
    armed = True

    def reset(self, num_envs, seed):
        self.calls = getattr(self, "calls", 0) + 1

    def act(self, obs, infos):
        if Interrupting.armed and self.calls == 2 and infos["layer"] == 5:
            raise KeyboardInterrupt
        return super().act(obs, infos)


def _bench_json(argv, capsys) -> dict:
    assert main([*argv, "--json", "--no-progress"]) == 0
    return json.loads(capsys.readouterr().out)


def _error(argv, capsys) -> str:
    assert main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("abn-gym: error: ")  # one line, no traceback
    return err[0]


def test_the_front_holds_every_static_row_whatever_is_listed(tmp_path):
    res = bench(
        BenchArgs(
            env=QUARTER, agents=[f"{__name__}:AllFive"], split="val", episodes=8, out=str(tmp_path), progress=False
        )
    )
    assert [r["agent"] for r in res["rows"]] == ["all-5"]
    assert {f["agent"] for f in res["front"]} == FRONT and not any(f["listed"] for f in res["front"])
    five = res["rows"][0]
    assert five["front"]["against"] is not None and five["front"]["accuracy_gap"] <= 0
    assert not five["front"]["beats_static_front"] and not five["front"]["beats_static_mixtures"]


@pytest.mark.slow
def test_an_agent_listed_beside_fixed_2_alone_faces_the_whole_front(tmp_path, capsys):
    argv = ["bench", "--env", QUARTER, "--split", "val", "--episodes", "400", "--out", str(tmp_path)]
    payload = _bench_json([*argv, "--agents", f"fixed-2,{__name__}:AllFive"], capsys)
    rows = {r["agent"]: r for r in payload["rows"]}
    assert list(rows) == ["fixed-2", "all-5"]  # rows not asked for stay out of the table
    front = {f["agent"]: f for f in payload["front"]}
    assert set(front) == FRONT and {n for n, f in front.items() if f["listed"]} == {"fixed-2"}
    five = rows["all-5"]
    # Against fixed-2 alone, all-5 is clearly better: the verdict used to be "beats" for that reason.
    assert five["paired"]["reference"] == "fixed-2" and five["paired"]["accuracy_delta_ci"][0] > 0
    # The complete front holds fixed-5, which runs exactly what all-5 runs: no win.
    assert five["bitops"] == front["fixed-5"]["bitops"]
    cheaper = [f for f in payload["front"] if f["bitops"] <= five["bitops"] * (1 + 1e-9)]
    best = max(cheaper, key=lambda f: (f["accuracy"], -f["bitops"]))
    assert five["front"]["against"] == best["agent"] and best["agent"] != "fixed-2"
    assert five["front"]["accuracy_gap"] == pytest.approx(five["accuracy"] - best["accuracy"])
    assert five["front"]["accuracy_gap"] <= 0 and not five["front"]["beats_static_front"]
    assert five["front"]["hull_gap"] <= 0
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["front"] == payload["front"] and [r["agent"] for r in doc["rows"]] == ["fixed-2", "all-5"]
    assert {r["agent"] for r in doc["records"]} == FRONT | {"all-5"}  # the front's episodes, for validate
    report = validate(tmp_path / "results.json", progress=False)
    assert report["ok"], report["errors"][:5]
    doc["front"][3]["accuracy"] += 0.01  # a front row that its episodes do not give
    (tmp_path / "tampered.json").write_text(json.dumps(doc))
    errors = validate(tmp_path / "tampered.json", progress=False)["errors"]
    assert errors == [f"front row {doc['front'][3]['agent']!r}: " + errors[0].split(": ", 1)[1]]
    assert len(errors) == 1 and "its episodes give" in errors[0]
    # The verdict does not depend on what was listed: listing the whole front gives the same one.
    every = _bench_json([*argv, "--agents", ",".join([*sorted(FRONT), f"{__name__}:AllFive"])], capsys)
    again = next(r for r in every["rows"] if r["agent"] == "all-5")
    assert again["front"] == five["front"] and again["accuracy"] == five["accuracy"]


@pytest.mark.parametrize(
    "agents,needle",
    [
        ("fixed-4,fixed-4", "--agents lists 'fixed-4' twice; one name, one row"),
        (f"fixed-2,{__name__}:AllFive,{__name__}:AllFive", f"--agents lists '{__name__}:AllFive' twice"),
        (f"{__name__}:FixedFourImpostor", "calls itself 'fixed-4', the name of a built-in agent"),
        (f"fixed-2,{__name__}:FixedFourImpostor", "calls itself 'fixed-4'"),  # fixed-4 itself not listed
        (
            f"{__name__}:AllFive,{__name__}:AllFiveTwin",
            f"agents '{__name__}:AllFive' and '{__name__}:AllFiveTwin' would both be the row 'all-5'",
        ),
    ],
)
def test_one_name_one_row(agents, needle, tmp_path, capsys):
    assert needle in _error(
        ["bench", "--env", QUARTER, "--agents", agents, "--episodes", "4", "--out", str(tmp_path)], capsys
    )
    assert not list(tmp_path.iterdir())  # refused before anything ran or was written


@pytest.mark.parametrize(
    "agents,needle",
    [
        (f"{__name__}:FloatActions", "agent 'floats' returned actions of dtype float64 ([2.7, 2.7, 2.7, 2.7]...)"),
        (f"{__name__}:Raises", "agent 'raiser' raised in act(): KeyError: 'no such key' (at "),
        (f"{__name__}:NeedsArguments", "NeedsArguments() needs arguments (missing a required argument: 'threshold')"),
        ("escalation@inf", "escalation@<c> takes c, the BitOps price (a finite number >= 0); got 'inf'"),
        ("", "--agents '' names no agent"),
        (" , ", "--agents ' , ' names no agent"),
    ],
)
def test_agent_mistakes_get_one_line(agents, needle, tmp_path, capsys):
    argv = ["bench", "--env", QUARTER, "--agents", agents, "--episodes", "4", "--out", str(tmp_path)]
    assert needle in _error(argv, capsys)
    assert not (tmp_path / "results.json").exists()


@pytest.mark.slow
def test_an_interrupted_bench_leaves_the_previous_set_whole_and_a_rerun_resumes(tmp_path, capsys):
    argv = [
        "bench",
        "--env",
        QUARTER,
        "--split",
        "val",
        "--episodes",
        "24",
        "--batch-size",
        "8",
        "--out",
        str(tmp_path),
    ]
    first = _bench_json([*argv, "--agents", "fixed-2,fixed-4"], capsys)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert {"results.json", "leaderboard.csv", "leaderboard.md", "pareto.png"} <= set(before)
    Interrupting.armed = True
    # In the bench process: a worker ignores Ctrl-C (the bench decides), and this tests the bench's own. random
    # runs in the bench before it (the static rows run in the pool, and a Ctrl-C keeps only the ones it finished).
    changed = [*argv, "--agents", f"random,{__name__}:Interrupting", "--isolation", "none", "--no-progress"]
    assert main(changed) == 130
    assert "interrupted" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before  # byte for byte
    doc = json.loads((tmp_path / "results.json").read_text())
    csv = (tmp_path / "leaderboard.csv").read_text().splitlines()
    assert [r["agent"] for r in doc["rows"]] == [line.split(",")[0] for line in csv[1:]] == ["fixed-2", "fixed-4"]
    assert [r["accuracy"] for r in doc["rows"]] == [r["accuracy"] for r in first["rows"]]
    # Rerunning the same command reuses the finished agent and completes the set.
    Interrupting.armed = False
    assert main([*changed[:-1], "--json", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "resumed: random" in captured.err
    payload = json.loads(captured.out)
    doc = json.loads((tmp_path / "results.json").read_text())
    csv = (tmp_path / "leaderboard.csv").read_text().splitlines()
    assert [r["agent"] for r in doc["rows"]] == [line.split(",")[0] for line in csv[1:]] == ["random", "interrupting"]
    assert doc["rows"] == payload["rows"] and not (tmp_path / ".bench-partial").exists()
    # The resumed row is the row a fresh run gives.
    fresh = bench(
        BenchArgs(
            env=QUARTER,
            agents=["random"],
            split="val",
            episodes=24,
            batch_size=8,
            out=str(tmp_path / "fresh"),
            progress=False,
        )
    )
    assert (
        fresh["rows"][0]["accuracy"] == doc["rows"][0]["accuracy"]
        and fresh["rows"][0]["bitops"] == doc["rows"][0]["bitops"]
    )
    assert validate(tmp_path / "results.json", progress=False)["ok"]


# A model trained on a Budget id ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def budget_run(tmp_path_factory):
    """A tiny PPO run (144 steps) on the quarter supernet's Budget id, trained through `train`'s own function."""
    out = tmp_path_factory.mktemp("budget-run")
    args = AgentTrainArgs(
        env=BUDGET, timesteps=144, num_envs=8, n_steps=18, batch_size=72, n_epochs=1, net_arch="16",
        checkpoint_every=144, eval_episodes=0, out=str(out),
    )  # fmt: skip
    train_agent(args)
    return out


def _copy_run(run, where, **card_changes):
    where.mkdir(parents=True)
    shutil.copy(run / "model.zip", where / "model.zip")
    card = json.loads((run / "card.json").read_text())
    for key, value in card_changes.items():
        if key == "env_kwargs":
            card["env_kwargs"] = {**card["env_kwargs"], **value}
        elif key == "args":
            card["args"] = {**card["args"], **value}
        else:
            card[key] = value
    (where / "card.json").write_text(json.dumps(card))
    return str(where / "model.zip")


@pytest.mark.slow
def test_a_budget_model_without_env_runs_on_its_budget_id(budget_run, tmp_path, capsys):
    model = str(budget_run / "model.zip")
    payload = _bench_json(["bench", "--agents", f"{model},fixed-8", "--episodes", "16", "--out", str(tmp_path)], capsys)
    assert payload["env"] == BUDGET and payload["env_kwargs"]["budget"] == 0.25
    rows = {r["agent"]: r for r in payload["rows"]}
    # Under the budget even fixed-8 is held to a quarter of all-8's BitOps: the budget was applied.
    assert rows["fixed-8"]["bitops_fraction"] <= 0.25 + 1e-9 and rows[model]["bitops_fraction"] <= 0.25 + 1e-9


@pytest.mark.slow
def test_an_explicit_env_that_disagrees_with_the_card_is_refused(budget_run, tmp_path, capsys):
    model = str(budget_run / "model.zip")
    err = _error(["bench", "--env", QUARTER, "--agents", model, "--episodes", "4", "--out", str(tmp_path)], capsys)
    assert f"belongs on {BUDGET}, its card's env, but the bench runs {QUARTER}" in err
    assert "budget 0.25 there, None here" in err and "leave out --env" in err
    err = _error(["bench", "--env", "ABN-ResNet-Budget-v0", "--agents", model, "--out", str(tmp_path)], capsys)
    assert f"belongs on {BUDGET}" in err and "ABN-ResNet-Budget-v0" in err and "supernet" in err
    # Env arguments the card records count too: another cost_coef, another action set.
    costly = _copy_run(budget_run, tmp_path / "costly", env_kwargs={"cost_coef": 0.2})
    err = _error(["bench", "--env", BUDGET, "--agents", costly, "--out", str(tmp_path / "o")], capsys)
    assert f"belongs on {BUDGET} (cost_coef=0.2)" in err and "cost_coef 0.2 there, 0.04 here" in err
    fewer = _copy_run(budget_run, tmp_path / "fewer", env_kwargs={"bit_choices": [2, 4, 8]})
    err = _error(["bench", "--env", BUDGET, "--agents", fewer, "--out", str(tmp_path / "o")], capsys)
    assert "bit_choices (2, 4, 8) there, (2, 3, 4, 5, 6, 7, 8) here" in err
    # A reward given to `train --reward` trains the model; train and bench score it on the id's reward.
    trained_on_logprob = _copy_run(
        budget_run, tmp_path / "logprob", env_kwargs={"reward": "logprob"}, args={"reward": "logprob"}
    )
    assert resolve_env(None, [trained_on_logprob]) == (BUDGET, {})
    # So does a BitOps price given to `train --cost-coef`; the same price in the env's own arguments does not.
    trained_cheaper = _copy_run(
        budget_run, tmp_path / "cheaper", env_kwargs={"cost_coef": 0.2}, args={"cost_coef": 0.2}
    )
    assert resolve_env(None, [trained_cheaper]) == (BUDGET, {})
    assert resolve_env(None, [costly]) == (BUDGET, {"cost_coef": 0.2})


@pytest.mark.slow
def test_models_from_different_envs_need_separate_benches(budget_run, tmp_path, capsys):
    model = str(budget_run / "model.zip")
    plain = _copy_run(budget_run, tmp_path / "plain", env=QUARTER, env_kwargs={"reward": "default", "budget": None})
    err = _error(["bench", "--agents", f"{model},{plain}", "--out", str(tmp_path / "o")], capsys)
    assert "the listed models belong on different envs" in err and BUDGET in err and QUARTER in err


@pytest.mark.slow
def test_a_card_whose_algo_is_not_its_models_is_one_line(budget_run, tmp_path, capsys):
    wrong = _copy_run(budget_run, tmp_path / "wrong", algo="dqn")
    err = _error(["bench", "--agents", wrong, "--episodes", "4", "--out", str(tmp_path / "o")], capsys)
    assert wrong in err and "says algo 'dqn'" in err and "ppo" in err


def test_an_escalation_policy_runs_on_its_cards_env(tmp_path, capsys):
    shipped = POLICY_DIR / f"escalation-{QUARTER}"
    shutil.copy(shipped.with_suffix(".pt"), tmp_path / "policy.pt")
    shutil.copy(shipped.with_suffix(".json"), tmp_path / "card.json")
    policy = str(tmp_path / "policy.pt")
    assert resolve_env(None, [policy]) == (QUARTER, {})
    err = _error(["bench", "--env", BUDGET, "--agents", policy, "--out", str(tmp_path / "o")], capsys)
    assert f"belongs on {QUARTER}, its card's env, but the bench runs {BUDGET}" in err


def test_ctrl_c_while_the_set_moves_into_place_waits_for_the_whole_set(tmp_path, monkeypatch):
    import os
    import signal

    from agents.app.bench_resume import PARTIAL, commit_set

    partial = tmp_path / PARTIAL
    partial.mkdir()
    for name in ("leaderboard.csv", "results.json"):
        (partial / name).write_text(f"new {name}")
        (tmp_path / name).write_text(f"old {name}")
    (tmp_path / "heatmap-gone.png").write_text("the previous set's heatmap")
    real_replace = os.replace

    def replace_after_ctrl_c(src, dst):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C as each file moves
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_after_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        commit_set(partial, tmp_path, ["leaderboard.csv", "results.json"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leaderboard.csv", "results.json"]
    assert [(tmp_path / n).read_text() for n in ("leaderboard.csv", "results.json")] == [
        "new leaderboard.csv",
        "new results.json",
    ]
