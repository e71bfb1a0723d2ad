"""Tiny zoo runs: every algorithm trains a little, resumes, runs as Ray tasks, and carries its statistics."""

import json

import pandas as pd
import pytest
import yaml

from agents.app.zoo.hyperparams import NORMALIZE_OBS
from agents.app.zoo.run import records_name
from agents.app.zoo.runner import zoo
from agents.controllers.algorithms import RL_ZOO3_ALGOS
from supernets.foundation.errors import UsageError
from tests.agents.app.zoo.tiny import tiny_args, tiny_conf


@pytest.mark.slow
def test_every_algorithm_trains_a_little_then_resumes_without_retraining(tmp_path, monkeypatch):
    conf = tiny_conf(tmp_path)
    args = tiny_args(tmp_path, conf, seeds=[0, 1], algos=[])
    summary = zoo(args)
    out = tmp_path / "zoo"
    runs = summary["runs"]
    assert sorted({r["algo"] for r in runs}) == sorted(RL_ZOO3_ALGOS.values()) and len(runs) == 2 * 7
    for r in runs:
        steps = [p["timesteps"] for p in r["curve"]]
        assert steps[0] == 0 and steps[-1] == r["timesteps"] >= 144 and steps == sorted(steps)
    for env_id in ("ABN-ResNet-v0", "ABN-ResNet-Budget-v0"):
        assert (out / f"curves-{env_id}.png").stat().st_size > 0
        rows = {row["agent"]: row for row in json.loads((out / "summary.json").read_text())["leaderboards"][0]["rows"]}
        assert rows  # baselines and learned rows
    board = {r["env"]: {row["agent"]: row for row in r["rows"]} for r in summary["leaderboards"]}
    assert set(board["ABN-ResNet-v0"]) == {"fixed-2", "fixed-4", *(set(RL_ZOO3_ALGOS.values()) - {"maskable-ppo"})}
    assert board["ABN-ResNet-Budget-v0"]["maskable-ppo"]["seeds"] == 2
    assert board["ABN-ResNet-v0"]["ppo"]["episodes"] == 32
    assert "| recurrent-ppo |" in (out / "leaderboard-ABN-ResNet-v0.md").read_text()
    curves = (out / "curves.csv").read_text().splitlines()
    assert curves[0].startswith("env,algo,seed,timesteps,reward")

    # A second call finds every run finished: nothing trains, and the report is the same.
    from agents.app.zoo import run

    monkeypatch.setattr(run, "train_agent", lambda *a, **k: pytest.fail("a finished run was retrained"))
    again = zoo(args)

    def scores(s):
        return [[{k: v for k, v in row.items() if k != "wall_s"} for row in rep["rows"]] for rep in s["leaderboards"]]

    assert scores(again) == scores(summary)


@pytest.mark.slow
def test_interrupted_run_resumes_and_other_hyperparameters_are_refused(tmp_path):
    conf = tiny_conf(tmp_path, algos=["ppo"], timesteps=144)
    args = tiny_args(tmp_path, conf, baselines=["fixed-4"], reference="fixed-4")
    zoo(args)
    run = tmp_path / "zoo" / "runs" / "ABN-ResNet-v0" / "ppo" / "seed-0"
    first = json.loads((run / "result.json").read_text())
    # More steps: the run resumes from its checkpoint and its curve goes on.
    longer = zoo(tiny_args(tmp_path, conf, baselines=["fixed-4"], timesteps=288))
    (result,) = longer["runs"]
    assert result["timesteps"] >= 288 > first["timesteps"]
    assert [p["timesteps"] for p in result["curve"]][: len(first["curve"]) - 1] == [
        p["timesteps"] for p in first["curve"][:-1]
    ]
    changed = yaml.safe_load(conf.read_text())
    changed["ppo"]["ABN-ResNet-v0"]["ent_coef"] = 0.5
    conf.write_text(yaml.safe_dump(changed))
    with pytest.raises(UsageError, match="other hyper-parameters"):
        zoo(args)


@pytest.mark.slow
def test_two_tiny_trainings_on_a_local_ray_instance(tmp_path):
    ray = pytest.importorskip("ray")
    conf = tiny_conf(tmp_path, algos=["ppo"])
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        summary = zoo(tiny_args(tmp_path, conf, seeds=[0, 1], ray="local", baselines=["fixed-4"]))
    finally:
        ray.shutdown()
    assert sorted(r["seed"] for r in summary["runs"]) == [0, 1]
    for seed in (0, 1):
        run = tmp_path / "zoo" / "runs" / "ABN-ResNet-v0" / "ppo" / f"seed-{seed}"
        assert (run / "model.zip").is_file() and (run / "result.json").is_file()
    (board,) = summary["leaderboards"]
    assert {row["agent"]: row["seeds"] for row in board["rows"]}["ppo"] == 2


def test_reference_must_be_a_baseline(tmp_path):
    with pytest.raises(UsageError, match="--reference 'fixed-8'"):
        zoo(tiny_args(tmp_path, tiny_conf(tmp_path, algos=["ppo"]), baselines=["fixed-4"], reference="fixed-8"))


@pytest.mark.slow
def test_normalized_run_carries_its_statistics_to_the_leaderboard(tmp_path):
    """A zoo run with the normalize key: statistics beside the model, in the card, and applied when scored."""
    from agents.app.bench import run_agent
    from agents.controllers.sb3_agent import SB3Agent

    conf = tiny_conf(tmp_path, algos=["ppo"], envs=("ABN-ResNet-v0",))
    changed = yaml.safe_load(conf.read_text())
    changed["ppo"]["ABN-ResNet-v0"]["normalize"] = NORMALIZE_OBS
    conf.write_text(yaml.safe_dump(changed))
    zoo(tiny_args(tmp_path, conf, baselines=["fixed-4"], reference="fixed-4"))
    run = tmp_path / "zoo" / "runs" / "ABN-ResNet-v0" / "ppo" / "seed-0"
    card = json.loads((run / "card.json").read_text())
    assert card["args"]["normalize_obs"] and card["obs_norm"]["file"] == "model.obs_norm.json"
    agent = SB3Agent.load(run / "model.zip")
    assert agent.obs_norm is not None
    scored = json.loads((run / records_name("test", 32)).read_text())
    again = run_agent(agent, "ABN-ResNet-v0", "test", 32, seed=0, progress=False)
    assert scored["bits"] == [r["bits"] for r in again] and scored["reward"] == [r["reward"] for r in again]


@pytest.mark.slow
def test_normalize_both_puts_each_variant_on_the_tables_with_its_column(tmp_path):
    """--normalize both: rows ppo and ppo+norm, each marked in every table, and only ppo+norm carries statistics."""
    conf = tiny_conf(tmp_path, algos=["ppo"], envs=("ABN-ResNet-v0",))
    summary = zoo(tiny_args(tmp_path, conf, normalize="both", baselines=["fixed-4"], reference="fixed-4"))
    out = tmp_path / "zoo"
    runs = out / "runs" / "ABN-ResNet-v0"
    assert (runs / "ppo+norm" / "seed-0" / "model.obs_norm.json").is_file()
    assert not (runs / "ppo" / "seed-0" / "model.obs_norm.json").exists()
    assert {r["agent"]: r["normalize_obs"] for r in summary["runs"]} == {"ppo": False, "ppo+norm": True}
    (board,) = summary["leaderboards"]
    assert {row["agent"]: row["normalize_obs"] for row in board["rows"]} == {
        "fixed-4": None,
        "ppo": False,
        "ppo+norm": True,
    }
    compact = (out / "zoo-summary.md").read_text().splitlines()
    assert "| obs normalised |" in compact[0]
    assert {line.split(" | ")[1]: line.split(" | ")[2] for line in compact[2:]} == {"ppo": "no", "ppo+norm": "yes"}
    board_md = (out / "leaderboard-ABN-ResNet-v0.md").read_text()
    assert "| ppo+norm | yes |" in board_md and "| ppo | no |" in board_md and "| fixed-4 | - |" in board_md
    assert (out / "zoo-summary.md").read_text() in (out / "zoo.md").read_text()
    curves = pd.read_csv(out / "curves.csv")
    assert set(zip(curves["agent"], curves["normalize_obs"])) == {("ppo", False), ("ppo+norm", True)}
    # Both variants are scored on the same images, so the leaderboard's paired statistics compare them.
    name = records_name("test", 32)
    plain, norm = (json.loads((runs / a / "seed-0" / name).read_text()) for a in ("ppo", "ppo+norm"))
    assert plain["index"] == norm["index"]
