"""The throughput benchmark's parts (agents.app.perf.measure, .report) run and report consistent numbers."""

import json

import numpy as np

from agents.app.perf import measure
from agents.app.perf.report import format_report, goals


def test_perf_parts_report_consistent_numbers(tmp_path):
    pair = measure.raw_vs_native(2, reps=2, device="cpu")
    assert pair["raw_s"] > 0 and pair["native_s"] > 0
    assert pair["native_vs_raw"] > 0
    assert pair["uniform_actions_vs_raw"] > 0
    low, high = pair["native_vs_raw_quartiles"]
    assert 0 < low <= high

    single = measure.single_env_overhead(episodes=1, device="cpu", rounds=2)
    # Two timings of a shared machine: which one is larger is the benchmark's finding, not a rule a
    # unit test can hold (under load a bare-layer round can be the slower one).
    assert single["step_us"] > 0 and single["bare_layer_us"] > 0
    assert abs(single["steps_per_s"] * single["step_us"] - 1e6) < 1e-3 * 1e6

    mem = measure.memory(4, vector_steps=8, device="cpu")
    assert mem["env_steps"] == 32 and mem["rss_mb_peak"] >= mem["rss_mb_after_warmup"] > 0

    report = {
        "hardware": measure.hardware(),
        "rows": [{"num_envs": 2, **pair, "native_samples_per_s": 36 / pair["native_s"]}],
        "ratios": {"sb3_native_vs_dummy": 1.0, "native_vs_raw_at_256": pair["native_vs_raw"]},
        "single_env": single,
        "sb3_ppo": {"native": 1.0, "dummy": 1.0, "subproc": 1.0, "num_envs": 2, "subproc_envs": 2},
        "supernet_eval_s": 1.0,
        "memory": mem,
    }
    table = format_report(report)
    assert "| 2 |" in table and "threads" in table
    met = {name: ok for name, _, _, ok in goals(report)}
    assert met["(e) SB3 PPO: native adapter vs DummyVecEnv, 2 sub-envs"] is False  # 1.0x is below the 3x goal
    # The resident size here is the whole pytest process's, so only the rule is checked.
    assert met["memory: N=4 resident"] is (mem["rss_mb_peak"] <= 2048)
    json.dumps(report)  # the --json form is one serialisable object


def test_free_vec_env_trains_ppo_at_the_envs_shapes():
    from stable_baselines3 import PPO

    from abn_gym.sb3 import SB3VecEnv

    like = SB3VecEnv(num_envs=2, seed=0)
    free = measure._FreeVecEnv(2, like.observation_space, like.action_space, 18)
    obs = free.reset()
    assert obs.shape == (2, *like.observation_space.shape) and not obs.any()
    dones = [free.step(np.array([0, 1]))[2][0] for _ in range(36)]
    assert [k for k, d in enumerate(dones) if d] == [17, 35]  # episodes of 18 steps, like the env's
    PPO("MlpPolicy", free, n_steps=18, batch_size=36, n_epochs=1, seed=0, device="cpu").learn(36)


def test_a_written_report_is_rendered_again_without_measuring(tmp_path, capsys):
    from pathlib import Path

    from agents.app.cli import main

    committed = Path(__file__).parents[4] / "docs" / "perf.json"
    assert main(["perf", "--from-json", str(committed), "--out", str(tmp_path)]) == 0
    text = (tmp_path / "perf.md").read_text()
    assert text == format_report(json.loads(committed.read_text())) + "\n"
    assert "\n- (d) single env:" in text and "| goal (CPU) |" in text
    assert not (tmp_path / "perf.json").exists()  # the measurements are not rewritten
    capsys.readouterr()
    (tmp_path / "other.json").write_text('{"not": "a report"}')
    assert main(["perf", "--from-json", str(tmp_path / "other.json")]) == 2
    assert "not a perf report" in capsys.readouterr().err
