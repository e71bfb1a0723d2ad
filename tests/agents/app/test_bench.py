"""The benchmark: leaderboard contract, determinism, custom agents, atomic results, validate."""

import json

import numpy as np
import pytest

from agents.app.bench import BenchArgs, bench
from agents.app.bench_resume import PARTIAL, load_finished
from agents.app.cli import main
from agents.app.validate import ResultsMismatchError, validate
from agents.controllers.base import AgentFailedError


class ThresholdAgent:
    """A user agent defined outside the package: low bits when early activations are weak."""

    name = "threshold"
    stochastic = False

    def reset(self, num_envs, seed):
        self.n = num_envs

    def act(self, obs, infos):
        strength = obs[:, :64].mean(axis=1)
        return np.where(strength > np.median(strength), len(infos["bit_choices"]) - 1, 1)


class ExplodingAgent:
    name = "exploding"

    def reset(self, num_envs, seed):
        pass

    def act(self, obs, infos):
        raise RuntimeError("boom")


AGENTS = ["random", "fixed-2", "fixed-8", "greedy", "oracle"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    res = bench(BenchArgs(agents=AGENTS, episodes=40, seeds=[0, 1], out=str(out), progress=False))
    return out, res


def test_leaderboard_contract_and_files(results):
    out, res = results
    assert res["env"] == "ABN-ResNet-v0" and res["split"] == "test" and res["episodes"] == 40
    rows = {r["agent"].split(" [")[0]: r for r in res["rows"]}
    assert set(rows) == set(AGENTS)
    for r in res["rows"]:
        assert 0.0 <= r["accuracy"] <= 1.0 and r["accuracy_ci"][0] <= r["accuracy"] <= r["accuracy_ci"][1]
        assert {"bitops", "bitops_fraction", "reward", "episodes", "decision_macs", "wall_s", "seeds"} <= set(r)
    assert rows["random"]["seeds"] == 2 and rows["fixed-8"]["seeds"] == 1
    assert rows["fixed-8"]["bitops_fraction"] == pytest.approx(1.0)
    assert rows["oracle"]["uses_label"] and not rows["greedy"]["uses_label"]  # plain names, a flag for labels
    for r in res["rows"]:
        assert r["paired"]["reference"] == "fixed-8" and {"accuracy_delta", "reward_delta"} <= set(r["paired"])
        assert {"accuracy_gap", "accuracy_gap_ci", "beats_static_front", "against"} <= set(r["front"])
        assert r["front"]["beats_static_mixtures"] == (r["front"]["hull_gap_ci"][0] > 0)  # the **beats** label
    assert rows["fixed-8"]["paired"]["accuracy_delta"] == 0.0 and rows["fixed-8"]["paired"]["accuracy_delta_ci"] == [
        0,
        0,
    ]
    # The front of a static row is itself or a cheaper static row that is at least as accurate; the front
    # holds every fixed-b and static-b, listed or not.
    front = {f["agent"]: f for f in res["front"]}
    dense = {f"{q / 4:g}" for q in range(9, 20)} | {f"{h / 2:g}" for h in range(10, 16)}  # 2.25 to 4.75, 5 to 7.5
    assert set(front) == {f"fixed-{b}" for b in range(2, 9)} | {f"static-{b}" for b in dense}
    assert {n for n, f in front.items() if f["listed"]} == {"fixed-2", "fixed-8"}
    against = rows["fixed-8"]["front"]["against"]
    assert front[against]["bitops"] <= rows["fixed-8"]["bitops"]
    assert front[against]["accuracy"] >= rows["fixed-8"]["accuracy"]
    for f in ("results.json", "leaderboard.csv", "leaderboard.md", "leaderboard-compact.md", "pareto.png"):
        assert (out / f).stat().st_size > 0
    assert (out / "heatmap-greedy.png").stat().st_size > 0
    compact = (out / "leaderboard-compact.md").read_text().splitlines()
    assert [line.split(" | ")[0][2:] for line in compact[2 : 2 + len(AGENTS)]] == [r["agent"] for r in res["rows"]]
    for line, r in zip(compact[2:], res["rows"]):  # the verdict's label follows the mixtures' gap
        assert line.count("|") == 7 and ("**beats**" in line) == r["front"]["beats_static_mixtures"]
    doc = json.loads((out / "results.json").read_text())
    rec = doc["records"][0]
    assert {"agent", "seed", "index", "bits", "bitops", "correct", "reward"} <= set(rec)
    listed = [r for r in doc["records"] if r["agent"] in AGENTS]
    assert len(listed) == 40 * (2 + 4) and len(doc["records"]) == len(listed) + 40 * (5 + len(dense))
    assert doc["front"] == res["front"] and not (out / ".bench-partial").exists()


def test_same_seed_same_leaderboard(results, tmp_path):
    out, res = results
    again = bench(BenchArgs(agents=AGENTS, episodes=40, seeds=[0, 1], out=str(tmp_path), progress=False))
    strip = [{k: v for k, v in r.items() if k != "wall_s"} for r in res["rows"]]
    assert strip == [{k: v for k, v in r.items() if k != "wall_s"} for r in again["rows"]]
    a = json.loads((out / "results.json").read_text())["records"]
    b = json.loads((tmp_path / "results.json").read_text())["records"]
    assert a == b


def test_validate_accepts_real_and_catches_tampering(results, tmp_path):
    out, _ = results
    assert validate(out / "results.json", progress=False)["ok"]
    doc = json.loads((out / "results.json").read_text())
    doc["records"][3]["correct"] = not doc["records"][3]["correct"]
    doc["records"][5]["bitops"] *= 0.5
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(doc))
    report = validate(tampered, progress=False)
    assert not report["ok"]
    rec3, rec5 = doc["records"][3], doc["records"][5]
    # Each tampered record is named once, with the field that was changed; the rows they belong to follow.
    assert [e for e in report["errors"] if e.startswith("record ")] == [
        f"record 3 ({rec3['agent']}, image {rec3['index']}): recorded correct={rec3['correct']}, "
        f"replay gives {not rec3['correct']}",
        f"record 5 ({rec5['agent']}, image {rec5['index']}): recorded {rec5['bitops']:.0f} BitOps, "
        f"replay gives {2 * rec5['bitops']:.0f}",
    ]
    assert main(["validate", str(tampered), "--no-progress"]) == 1
    doc["supernet_sha256"] = "0" * 64
    tampered.write_text(json.dumps(doc))
    with pytest.raises(ResultsMismatchError, match="another resnet20-fashionmnist checkpoint"):
        validate(tampered, progress=False)


def test_custom_agent_from_module_path(tmp_path, capsys):
    rc = main(
        [
            "bench",
            "--agents",
            f"{__name__}:ThresholdAgent,fixed-4",
            "--episodes",
            "30",
            "--out",
            str(tmp_path),
            "--json",
            "--no-progress",
        ]
    )
    assert rc == 0
    payload = json.loads(capsys.readouterr().out)
    assert [r["agent"] for r in payload["rows"]] == ["threshold", "fixed-4"]
    assert (tmp_path / "heatmap-threshold.png").stat().st_size > 0


def test_a_failed_bench_writes_no_results_and_keeps_finished_agents_for_a_rerun(tmp_path):
    args = BenchArgs(
        agents=["fixed-2", "fixed-4", f"{__name__}:ExplodingAgent"], episodes=10, out=str(tmp_path), progress=False
    )
    with pytest.raises(AgentFailedError, match=r"agent 'exploding' raised in act\(\): RuntimeError: boom \(at "):
        bench(args)
    assert not (tmp_path / "results.json").exists()  # no set of files, rather than a half one
    # Each finished agent is kept in a file of its own, holding its own episodes only.
    kept = {}
    for path in (tmp_path / PARTIAL).glob("agent-*.json"):
        doc = json.loads(path.read_text())
        kept[doc["name"]] = doc
    # The static rows (the front's too) run in the pool from the start: every one is kept, the agent is not.
    assert {"fixed-2", "fixed-4"} <= set(kept) and all(n.startswith(("fixed-", "static-")) for n in kept)
    for name, doc in kept.items():
        assert {r["agent"] for r in doc["records"]} == {name} and len(doc["records"]) == 10
    # A rerun with the same settings finds both; one with other settings finds neither, and drops them.
    settings = kept["fixed-2"]["settings"]
    assert set(load_finished(tmp_path / PARTIAL, settings)) == {kept[n]["fingerprint"] for n in kept}
    assert load_finished(tmp_path / PARTIAL, {**settings, "episodes": 11}) == {}
    assert not list((tmp_path / PARTIAL).glob("agent-*.json"))


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["bench", "--agents", "nope"], "unknown agent 'nope'; known agents"),
        (["bench", "--agents", f"{__name__}:NotThere"], "has no attribute 'NotThere'"),
        (["bench", "--env", "CartPole-v9"], "unknown env id"),
        (["bench", "--agents", "fixed-4", "--out", "/proc/version/x"], "is not writable"),
        (["supernet", "eval", "--name", "nope"], "unknown supernet 'nope'"),
    ],
)
def test_bad_input_errors(argv, needle, capsys):
    assert main([*argv, "--no-progress"] if argv[0] == "bench" else argv) == 2
    assert needle in capsys.readouterr().err
