"""The zoo's learning curves: val return against env steps, mean and interval over seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def seed_interval(
    values: np.ndarray, reps: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds (rows) and a percentile-bootstrap interval over seeds, per column.

    Args:
        values: one row per seed, one column per point.
        reps: bootstrap resamples.
        level: the interval's coverage.
        seed: the resampling's seed.
    """
    values = np.asarray(values, dtype=np.float64)
    mean = values.mean(axis=0)
    if len(values) < 2:
        return mean, mean.copy(), mean.copy()
    rng = np.random.default_rng(seed)
    boot = values[rng.integers(0, len(values), (reps, len(values)))].mean(axis=1)
    lo, hi = np.percentile(boot, [100 * (1 - level) / 2, 100 * (1 + level) / 2], axis=0)
    return mean, lo, hi


def curve_table(results: list[dict]) -> list[dict]:
    """One row per (env, algo, seed, point) of the val curves (the rows of curves.csv).

    Args:
        results: the runs' result.json documents, each with its row (``agent``) and ``normalize_obs``.
    """
    rows = []
    for r in results:
        run = {"env": r["env"], "algo": r["algo"], "seed": r["seed"]}
        rows += [{**run, **p, "agent": r["agent"], "normalize_obs": r["normalize_obs"]} for p in r["curve"]]
    return rows


def curves_plot(results: list[dict], env_id: str, path: Path, references: dict[str, float] | None = None) -> Path:
    """Val return against env steps on one task: per algorithm the mean over seeds and its 95% interval.

    Args:
        results: the runs' result.json documents, each with its row (``agent``) and ``normalize_obs`` (every
            task's; only ``env_id``'s are drawn).
        env_id: the task.
        path: the PNG to write (atomically).
        references: horizontal lines to draw, name -> val return (e.g. the best fixed bit-width).
    """
    # lazy: matplotlib costs a few tenths of a second at import, and only the report draws
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy, as matplotlib above

    fig, ax = plt.subplots(figsize=(7, 4.5))
    mine = [r for r in results if r["env"] == env_id]
    algos = sorted({r["algo"] for r in mine})
    colours = {algo: f"C{i % 10}" for i, algo in enumerate(algos)}  # an algorithm's variants share its colour
    for agent in sorted({r["agent"] for r in mine}):
        runs = [r for r in mine if r["agent"] == agent]
        grid = np.array([p["timesteps"] for p in runs[0]["curve"]], dtype=float)
        ys = np.stack(
            [np.interp(grid, [p["timesteps"] for p in r["curve"]], [p["reward"] for p in r["curve"]]) for r in runs]
        )
        mean, lo, hi = seed_interval(ys)
        norm = runs[0]["normalize_obs"]
        colour = colours[runs[0]["algo"]]
        label = f"{agent}{' (obs normalised)' if norm and not agent.endswith('+norm') else ''} ({len(runs)} seeds)"
        ax.plot(grid, mean, color=colour, ls="--" if norm else "-", label=label)
        ax.fill_between(grid, lo, hi, color=colour, alpha=0.15)
    for name, value in (references or {}).items():
        ax.axhline(value, ls="--", lw=1, color="grey")
        ax.annotate(name, (0, value), fontsize=7, color="grey", xytext=(2, 2), textcoords="offset points")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("val return per episode (deterministic policy)")
    ax.set_title(f"{env_id}: learning curves (mean and 95% bootstrap interval over seeds; dashed: obs normalised)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=130, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path
