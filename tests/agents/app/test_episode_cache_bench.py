"""The episode-cache benchmark: its cached and uncached runs train the same policy, and its report renders."""

from agents.app.perf.episode_cache import report, train_once


def test_a_short_run_trains_the_same_policy_with_and_without_the_cache():
    runs = [train_once("ABN-ResNet20Quarter-v1", cache, 2048) for cache in (0, 16)]
    assert runs[0]["policy_sha256"] == runs[1]["policy_sha256"]
    assert runs[0]["cache"] is None and runs[1]["cache"]["hits"] > 0
    text = report(runs, {"cpu": "test", "cores": 1, "torch": "x", "torch_threads": 1})
    assert "| ABN-ResNet20Quarter-v1 | 16 MB |" in text and "| yes |" in text
