"""The throughput benchmark's parts run and report consistent numbers (speed itself is not asserted)."""

import json

from agents import perf


def test_perf_parts_report_consistent_numbers(tmp_path):
    pair = perf.raw_vs_native(2, reps=2, device="cpu")
    assert pair["raw_s"] > 0 and pair["native_s"] > 0
    assert pair["native_vs_raw"] > 0

    single = perf.single_env_overhead(episodes=1, device="cpu", rounds=2)
    assert single["step_us"] > single["bare_layer_us"] > 0
    assert abs(single["steps_per_s"] * single["step_us"] - 1e6) < 1e-3 * 1e6

    mem = perf.memory(4, vector_steps=8, device="cpu")
    assert mem["env_steps"] == 32 and mem["rss_mb_peak"] >= mem["rss_mb_after_warmup"] > 0

    report = {
        "hardware": perf.hardware(),
        "rows": [{"num_envs": 2, **pair, "native_samples_per_s": 36 / pair["native_s"]}],
        "ratios": {"sb3_native_vs_dummy": 1.0, "native_vs_raw_at_256": pair["native_vs_raw"]},
        "single_env": single,
        "sb3_ppo": {"native": 1.0, "dummy": 1.0, "subproc": 1.0, "num_envs": 2, "subproc_envs": 2},
        "supernet_eval_s": 1.0,
        "memory": mem,
    }
    table = perf.format_report(report)
    assert "| 2 |" in table and "threads" in table
    met = {name: ok for name, _, _, ok in perf.goals(report)}
    assert met["(e) SB3 PPO: native adapter vs DummyVecEnv"] is False  # 1.0x is below the 3x goal
    # The resident size here is the whole pytest process's, so only the rule is checked.
    assert met["memory: N=4 resident"] is (mem["rss_mb_peak"] <= 2048)
    json.dumps(report)  # the --json form is one serialisable object
