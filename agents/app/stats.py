"""Aggregate scores with confidence intervals, the way careful RL papers report them.

Across several seeds: rliable's interquartile mean with a percentile bootstrap over seeds.
With one seed: the mean with a percentile bootstrap over episodes. Bootstraps are seeded so
tables are reproducible.
"""

from __future__ import annotations

import numpy as np

BOOTSTRAP_REPS = 2000


def iqm(values: np.ndarray) -> float:
    """rliable's interquartile mean of per-seed scores."""
    # lazy: rliable imports scipy.stats, most of a second that every command line would pay
    from rliable import metrics

    return float(metrics.aggregate_iqm(np.asarray(values, dtype=np.float64).reshape(-1, 1)))


def interval(
    per_seed: list[np.ndarray], reps: int = BOOTSTRAP_REPS, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(point estimate, low, high) of a score given its per-episode values for each seed."""
    rng = np.random.default_rng(seed)
    lo_q, hi_q = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    if len(per_seed) == 1:
        x = np.asarray(per_seed[0], dtype=np.float64)
        if x.size == 0:
            return float("nan"), float("nan"), float("nan")
        # Resample episodes in chunks to bound memory on 10k-episode splits.
        means = np.empty(reps)
        for start in range(0, reps, 250):
            k = min(250, reps - start)
            means[start : start + k] = x[rng.integers(0, x.size, (k, x.size))].mean(axis=1)
        return float(x.mean()), float(np.percentile(means, lo_q)), float(np.percentile(means, hi_q))
    scores = np.array([np.mean(s) for s in per_seed])
    boot = np.array([iqm(scores[rng.integers(0, scores.size, scores.size)]) for _ in range(reps)])
    return iqm(scores), float(np.percentile(boot, lo_q)), float(np.percentile(boot, hi_q))


def paired_bootstrap(
    deltas: np.ndarray, reps: int = BOOTSTRAP_REPS, level: float = 0.95, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and percentile-bootstrap interval of each row of per-image differences ``deltas`` (k, n).

    Every row is resampled with the same image indices, so all comparisons of one leaderboard
    see the same bootstrap draws. Resampling the per-image *differences* keeps the pairing:
    images that every agent finds easy or hard cancel out, which makes the interval far tighter
    than comparing two agents' separate intervals.
    """
    d = np.atleast_2d(np.asarray(deltas, dtype=np.float64))
    k, n = d.shape
    if n == 0:
        nan = np.full(k, np.nan)
        return nan, nan.copy(), nan.copy()
    means = resampled_means(d, reps, seed)
    lo_q, hi_q = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    return d.mean(axis=1), np.percentile(means, lo_q, axis=1), np.percentile(means, hi_q, axis=1)


def resampled_means(values: np.ndarray, reps: int = BOOTSTRAP_REPS, seed: int = 0) -> np.ndarray:
    """The mean of each row of ``values`` (k, n) in each of ``reps`` bootstrap resamples of its n columns: (k, reps).

    Every row sees the same resamples (the draws :func:`paired_bootstrap` makes with the same ``seed``),
    so a statistic of several rows computed per resample (a hypervolume, say) stays paired.

    Args:
        values: per-image values, one row per quantity; at least one column.
        reps: the number of resamples.
        seed: the bootstrap's seed.
    """
    d = np.atleast_2d(np.asarray(values, dtype=np.float64))
    k, n = d.shape
    rng = np.random.default_rng(seed)
    means = np.empty((k, reps))
    for start in range(0, reps, 250):
        m = min(250, reps - start)
        idx = rng.integers(0, n, (m, n))
        # How often each image is drawn in each resample: one matrix product then gives every mean.
        counts = np.zeros((m, n))
        np.add.at(counts, (np.repeat(np.arange(m), n), idx.reshape(-1)), 1.0)
        means[:, start : start + m] = d @ counts.T / n
    return means
