"""The zoo's report: intervals over seeds, and the baselines' cache keyed by what their episodes depend on."""

import numpy as np

from agents.app.zoo.curves import seed_interval


def test_seed_interval_brackets_the_mean():
    values = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]])
    mean, lo, hi = seed_interval(values)
    assert mean.tolist() == [1.0, 1.0] and lo[0] < 1.0 < hi[0] and lo[1] == hi[1] == 1.0


def test_baseline_cache_is_keyed_by_what_the_episodes_depend_on(monkeypatch):
    from agents.app.zoo import report
    from agents.app.zoo.report import _fingerprint
    from agents.controllers.registry import BenchContext

    ctx = BenchContext("ABN-ResNet-v0", "resnet20-fashionmnist", (2, 3, 4, 5, 6, 7, 8))
    base = _fingerprint("ABN-ResNet-v0", ctx, "fixed-4")
    assert base == _fingerprint("ABN-ResNet-v0", ctx, "fixed-4")
    assert base != _fingerprint("ABN-ResNet-Budget-v0", ctx, "fixed-4")  # other env arguments
    assert base != _fingerprint("ABN-ResNet-v0", ctx, "static-4")  # the static search is part of the key
    real = report.env_kwargs
    monkeypatch.setattr(report, "env_kwargs", lambda env_id: {**real(env_id), "cost_coef": 0.08})
    assert base != _fingerprint("ABN-ResNet-v0", ctx, "fixed-4")  # a new cost_coef is never served from cache


def test_leaderboard_markdown_has_a_normalisation_column_only_for_the_zoo():
    """yes / no for learned rows, - for a baseline; bench's tables (no such column) keep their header."""
    import pandas as pd

    from agents.app.bench import format_markdown

    row = {
        "accuracy": 0.9,
        "accuracy_ci": [0.89, 0.91],
        "bitops": 3e7,
        "decision_macs": 0.0,
        "bitops_fraction": 0.1,
        "reward": 0.8,
        "reward_ci": [0.79, 0.81],
        "episodes": 10,
        "seeds": 1,
        "wall_s": 1.0,
    }
    table = pd.DataFrame([{**row, "agent": a} for a in ("fixed-4", "ppo", "ppo+norm")])
    assert "obs normalised" not in format_markdown(table)
    table["normalize_obs"] = [None, False, True]
    lines = format_markdown(table).splitlines()
    assert lines[0].startswith("| agent | obs normalised | accuracy")
    assert [line.split(" | ")[1] for line in lines[2:]] == ["-", "no", "yes"]
    assert len({line.count("|") for line in lines}) == 1  # every row has the header's cells
