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
