"""`abn-gym perf`'s sections (g) and (h): measured on small sizes, rendered, and judged against their goals."""

import pytest

from agents.app.cli import main
from agents.app.perf import speedups
from agents.app.perf.episode_cache import train_once
from agents.app.perf.int_kernel_episode import EpisodeArgs
from agents.app.perf.int_kernel_episode import measure as measure_episode
from agents.app.perf.measure import PerfArgs, hardware
from supernets.int_kernels_bench import shape_tables


def test_no_section_is_measured_unless_asked():
    assert speedups.measure(PerfArgs()) == {}
    assert speedups.format_sections({}) == [] and speedups.goals({}) == []


def test_sections_render_and_goals_follow_the_measured_ratios():
    runs = [train_once("ABN-ResNet20Quarter-v1", cache, 2048) for cache in (0, 16)]
    episode = measure_episode(EpisodeArgs(env="ABN-ResNet20Quarter-v1", num_envs=16, runs=1))
    tables = shape_tables(["resnet20"], 8, [4], 1)
    report = {
        "episode_cache": {"hardware": hardware(), "runs": runs},
        "int_kernels": {"hardware": hardware(), "tables": tables, "num_envs": 16, "runs": 1, "episode": episode},
    }
    text = "\n".join(speedups.format_sections(report))
    assert "(g) training with the episode cache" in text and "| ABN-ResNet20Quarter-v1 | 16 MB |" in text
    assert tables[1] in text and "bit-identical: True" in text
    met = {name: (value, ok) for name, _, value, ok in speedups.goals(report)}
    cache_value, cache_ok = met["(g) training images/s with the cache, last quarter, ABN-ResNet20Quarter-v1"]
    assert cache_ok is (float(cache_value.rstrip("x")) >= speedups.CACHE_GOAL)
    ratio = episode["off"] / episode["auto"]
    assert met["(h) env episode at N=256: integer kernels vs today"] == (f"{ratio:.2f}x", ratio >= 1.3)
    assert met["(h) integer kernels bit-identical"] == ("yes", True)


def test_the_perf_command_offers_both_sections(capsys):
    with pytest.raises(SystemExit):
        main(["perf", "--help"])
    out = capsys.readouterr().out
    assert "--cache-timesteps" in out and "--int-kernels" in out
