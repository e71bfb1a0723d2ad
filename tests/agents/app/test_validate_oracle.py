"""`abn-gym validate` against hand-made tampering; `bench.run_agent` and the leaderboard against independent values."""

import itertools
import json
import math
import re

import numpy as np
import pytest
from rliable import metrics

from agents.app import validate as validate_module
from agents.app.bench import BenchArgs, bench, leaderboard, run_agent
from agents.app.cli import main
from agents.app.validate import ResultsMismatchError, validate
from agents.controllers.baselines import FixedAgent
from supernets.data import load_split, normalize
from tests.abn_gym.test_observation_oracle import FIXED_MACS, MACS, MAX_BITOPS

E = 26  # episodes per agent and seed: test images 0..25, of which 23 and 25 are misclassified by fixed-2 and fixed-8


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    bench(BenchArgs(agents=["fixed-2", "fixed-8", "random"], episodes=E, seeds=[0, 1], out=str(out), progress=False))
    return json.loads((out / "results.json").read_text())


def _check(doc, tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc))
    return validate(path, progress=False)


def _row(doc, name):
    return next(r for r in doc["rows"] if r["agent"] == name)


def _front(doc, name):
    return next(r for r in doc["front"] if r["agent"] == name)


FRONT_EXTRA = 5 + 17  # fixed-3..7 and the 17 static-b (2.25 to 7.5): the front's rows not listed, run too


def test_untampered_results_validate(results, tmp_path):
    report = _check(results, tmp_path)
    assert report == {"ok": True, "episodes": E * (1 + 1 + 2 + FRONT_EXTRA), "errors": []}


def test_tampered_correctness_is_found_once(results, tmp_path, monkeypatch):
    monkeypatch.setattr(validate_module, "CHUNK", 5)  # several replay chunks: record numbers must stay absolute
    doc = json.loads(json.dumps(results))
    k = 7
    rec = doc["records"][k]
    assert rec["agent"] == "fixed-2"
    rec["correct"] = not rec["correct"]
    # A careful forger also fixes the row, so only the replay can tell.
    _row(doc, "fixed-2")["accuracy"] = float(np.mean([r["correct"] for r in doc["records"][:E]]))
    _front(doc, "fixed-2")["accuracy"] = _row(doc, "fixed-2")["accuracy"]  # and its entry in the front
    report = _check(doc, tmp_path)
    assert not report["ok"] and len(report["errors"]) == 1
    assert report["errors"][0].startswith(f"record {k} (fixed-2, image {rec['index']}): recorded correct=")


@pytest.mark.parametrize("agent,sign", [("fixed-8", -1), ("fixed-2", 1)])
def test_tampered_bitops_is_found_once(results, tmp_path, agent, sign):
    doc = json.loads(json.dumps(results))
    first = 0 if agent == "fixed-2" else E
    k = first + 1
    rec = doc["records"][k]
    bits = 8 if agent == "fixed-8" else 2
    true_ops = sum(bits * bits * m for m in MACS) + 64 * FIXED_MACS
    assert rec["agent"] == agent and rec["bitops"] == true_ops
    rec["bitops"] += sign * 60 * MACS[0]  # as if layer 0 had run at 2 bits instead of 8, or 8 instead of 2
    _row(doc, agent)["bitops"] = float(np.mean([r["bitops"] for r in doc["records"][first : first + E]]))
    _front(doc, agent)["bitops"] = _row(doc, agent)["bitops"]
    report = _check(doc, tmp_path)
    assert len(report["errors"]) == 1
    assert report["errors"][0].startswith(f"record {k} ({agent}, image {rec['index']}): recorded ")
    assert "BitOps" in report["errors"][0] and f"replay gives {true_ops}" in report["errors"][0]


def test_tampered_reward_is_found_once(results, tmp_path):
    doc = json.loads(json.dumps(results))
    k = 2 * E + 3  # a random-agent episode
    doc["records"][k]["reward"] += 0.001
    report = _check(doc, tmp_path)
    assert len(report["errors"]) == 1
    assert report["errors"][0].startswith(f"record {k} (random, ") and "reward" in report["errors"][0]


@pytest.mark.parametrize("field,delta", [("accuracy", 1 / E), ("bitops", 1.0e6)])
def test_tampered_row_is_found_once(results, tmp_path, field, delta):
    doc = json.loads(json.dumps(results))
    _row(doc, "fixed-2")[field] += delta
    report = _check(doc, tmp_path)
    assert len(report["errors"]) == 1
    assert report["errors"][0].startswith("row 'fixed-2': ")
    assert ("accuracy" if field == "accuracy" else "BitOps") in report["errors"][0]


def test_validate_refuses_unreadable_and_foreign_files(tmp_path, capsys):
    missing = tmp_path / "missing.json"
    with pytest.raises(ResultsMismatchError, match=r"missing\.json"):
        validate(missing, progress=False)
    cases = {
        "garbage.json": b"{not json",
        "binary.json": bytes(range(256)),
        "list.json": b"[1, 2, 3]",
        "number.json": b"42",
        "other.json": json.dumps({"supernet": "resnet20-fashionmnist", "rows": []}).encode(),
    }
    what = {"list.json": "JSON list", "number.json": "JSON int", "other.json": "no 'supernet_sha256'"}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ResultsMismatchError, match=re.escape(name)) as info:
            validate(tmp_path / name, progress=False)
        assert what.get(name, "") in str(info.value)
        assert main(["validate", str(tmp_path / name), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert name in err and "Traceback" not in err


def test_validate_refuses_another_checkpoint(results, tmp_path):
    doc = json.loads(json.dumps(results))
    doc["supernet_sha256"] = "0" * 64
    with pytest.raises(ResultsMismatchError) as info:
        _check(doc, tmp_path)
    assert "another resnet20-fashionmnist checkpoint (sha256 000000000000...," in str(info.value)
    assert "installed " in str(info.value)


# bench.run_agent ------------------------------------------------------------------------------


def _plain_correct(indices, bits):
    split = load_split("test")
    from supernets import load_supernet

    net = load_supernet("resnet20-fashionmnist")
    logits = net(normalize(split.images[list(indices)]), bits)
    return (logits.argmax(1) == split.labels[list(indices)]).tolist()


def test_run_agent_over_several_batches_matches_the_plain_forward_pass():
    recs = run_agent(FixedAgent(4), "ABN-ResNet-v0", "test", 7, batch_size=3, progress=False)
    assert [r["index"] for r in recs] == list(range(7))
    used = sum(16 * m for m in MACS)
    correct = _plain_correct(range(7), [4] * 18)
    for r, c in zip(recs, correct):
        assert r["bits"] == [4] * 18 and r["bitops"] == used + 64 * FIXED_MACS and r["correct"] == c
        assert r["reward"] == pytest.approx(c - 0.04 * used / MAX_BITOPS, abs=1e-9)
    assert recs == run_agent(FixedAgent(4), "ABN-ResNet-v0", "test", 7, progress=False)


def test_run_agent_indices_and_env_overrides():
    idx = [31, 2, 2, 500]
    recs = run_agent(
        FixedAgent(2), "ABN-ResNet-v0", "test", None, indices=idx, env_overrides={"cost_coef": 0.5}, progress=False
    )
    assert [r["index"] for r in recs] == idx
    used = sum(4 * m for m in MACS)
    for r, c in zip(recs, _plain_correct(idx, [2] * 18)):
        assert r["correct"] == c and r["reward"] == pytest.approx(c - 0.5 * used / MAX_BITOPS, abs=1e-9)
    budget = run_agent(FixedAgent(8), "ABN-ResNet-v0", "test", 2, env_overrides={"budget": 0.3}, progress=False)
    assert all(r["bitops"] <= 0.3 * MAX_BITOPS and r["bits"][0] == 8 for r in budget)


class ShortAgent:
    name = "short"

    def reset(self, num_envs, seed):
        pass

    def act(self, obs, infos):
        return np.zeros(len(obs) - 1, dtype=np.int64)


def test_run_agent_refuses_the_wrong_number_of_actions():
    with pytest.raises(ValueError, match="agent 'short' returned 2 actions for 3 episodes"):
        run_agent(ShortAgent(), "ABN-ResNet-v0", "test", 3, progress=False)


def _bootstrap_iqm_quantiles(scores, qs):
    """Exact quantiles of the IQM over every resample of the seeds with replacement (enumerated)."""
    values = np.sort(
        [metrics.aggregate_iqm(np.asarray(c, dtype=float).reshape(-1, 1)) for c in itertools.product(scores, repeat=4)]
    )
    return [values[int(q * (len(values) - 1))] for q in qs]


def test_leaderboard_multi_seed_iqm_and_interval_against_rliable():
    # Four seeds with hand-set accuracies; every seed has 10 episodes.
    per_seed = {0: 0.9, 1: 0.3, 2: 0.8, 3: 0.7}
    records = []
    for seed, acc in per_seed.items():
        for e in range(10):
            ok = e < round(acc * 10)
            records.append(
                {
                    "agent": "a",
                    "seed": seed,
                    "correct": ok,
                    "reward": float(ok) - 0.1,
                    "bitops": 1.0,
                    "decision_macs": 0,
                }
            )
    row = leaderboard(records, {"a": {}}, max_bitops=4.0).iloc[0]
    scores = np.array(list(per_seed.values()))
    assert row["accuracy"] == pytest.approx(metrics.aggregate_iqm(scores.reshape(-1, 1)))
    assert row["accuracy"] == pytest.approx(0.75)  # by hand: the mean of the middle two of 0.3, 0.7, 0.8, 0.9
    assert row["reward"] == pytest.approx(0.65) and row["seeds"] == 4 and row["episodes"] == 10
    lo_band = _bootstrap_iqm_quantiles(scores, (0.01, 0.04))
    hi_band = _bootstrap_iqm_quantiles(scores, (0.96, 0.99))
    lo, hi = row["accuracy_ci"]
    assert lo_band[0] <= lo <= lo_band[1] and hi_band[0] <= hi <= hi_band[1], (lo, hi, lo_band, hi_band)
    assert row["bitops_fraction"] == 0.25


def test_leaderboard_single_seed_is_the_mean():
    records = [
        {"agent": "b", "seed": 0, "correct": i < 3, "reward": 0.5 * i, "bitops": 2.0, "decision_macs": 0}
        for i in range(8)
    ]
    row = leaderboard(records, {"b": {}}, max_bitops=2.0).iloc[0]
    assert row["accuracy"] == 3 / 8 and row["reward"] == pytest.approx(0.5 * 28 / 8) and row["seeds"] == 1
    # Resampling 8 episodes of which 3 are correct: the bootstrap mean is Binomial(8, 3/8) / 8, exactly.
    cdf = np.cumsum([math.comb(8, k) * (3 / 8) ** k * (5 / 8) ** (8 - k) for k in range(9)])

    def quantile(q):
        return int(np.searchsorted(cdf, q)) / 8

    lo, hi = row["accuracy_ci"]
    assert quantile(0.015) <= lo <= quantile(0.035) and quantile(0.965) <= hi <= quantile(0.985), (lo, hi)


def test_tampering_in_the_very_first_record_is_found(results, tmp_path):
    doc = json.loads(json.dumps(results))
    rec = doc["records"][0]
    rec["correct"] = not rec["correct"]
    report = _check(doc, tmp_path)
    assert not report["ok"]
    assert any(
        e.startswith(f"record 0 ({rec['agent']}, image {rec['index']}): recorded correct=") for e in report["errors"]
    )


def test_a_row_without_episodes_does_not_stop_the_checks_of_later_rows(results, tmp_path):
    doc = json.loads(json.dumps(results))
    doc["records"] = [r for r in doc["records"] if r["agent"] != "fixed-2"]
    _row(doc, "fixed-8")["bitops"] += 1.0e6
    report = _check(doc, tmp_path)
    assert report["errors"] == [
        "row 'fixed-2' has no episodes",
        f"row 'fixed-8': mean BitOps {_row(doc, 'fixed-8')['bitops']:.0f}, its episodes give "
        f"{_row(results, 'fixed-8')['bitops']:.0f}",
        "front row 'fixed-2' has no episodes",
    ]


def test_row_bitops_are_checked_to_the_last_digits_not_to_a_loose_tolerance(results, tmp_path):
    # 200 BitOps (2e-6 relative) is below the default relative tolerance of numpy's isclose.
    doc = json.loads(json.dumps(results))
    _row(doc, "fixed-8")["bitops"] += 200.0
    report = _check(doc, tmp_path)
    assert len(report["errors"]) == 1 and report["errors"][0].startswith("row 'fixed-8': ")


@pytest.mark.parametrize("field,change", [("accuracy", 1 / E), ("bitops", 200.0)])
def test_the_fronts_unlisted_rows_are_checked_against_their_episodes(results, tmp_path, field, change):
    doc = json.loads(json.dumps(results))
    entry = _front(doc, "static-4")
    assert not entry["listed"] and len([r for r in doc["records"] if r["agent"] == "static-4"]) == E
    entry[field] += change
    report = _check(doc, tmp_path)
    true = _front(results, "static-4")
    assert report["errors"] == [
        f"front row 'static-4': accuracy {entry['accuracy']:.6f} at {entry['bitops']:.0f} BitOps, its episodes give "
        f"{true['accuracy']:.6f} at {true['bitops']:.0f}"
    ]
