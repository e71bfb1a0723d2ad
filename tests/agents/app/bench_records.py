"""Per-image benchmark records built by hand, for the leaderboard's tests."""

from __future__ import annotations

from collections.abc import Sequence


def bench_records(
    name: str,
    correct: Sequence,
    bitops: float,
    seed: int = 0,
    reward: Sequence | None = None,
    decision_macs_per_index: int = 0,
) -> list[dict]:
    """One record per entry of ``correct``, as :func:`agents.app.bench.run_agent` writes them.

    Args:
        name: the agent's name.
        correct: whether each image's prediction is right.
        bitops: every image's BitOps (the all-8 cost is taken as 10).
        seed: the records' seed.
        reward: each image's reward (default: its correctness).
        decision_macs_per_index: image i's decision MACs are this times i.
    """
    return [
        {
            "agent": name,
            "seed": seed,
            "index": i,
            "bits": [2],
            "bitops": bitops,
            "bitops_fraction": bitops / 10,
            "correct": bool(c),
            "reward": float(c) if reward is None else float(reward[i]),
            "decision_macs": decision_macs_per_index * i,
        }
        for i, c in enumerate(correct)
    ]
