"""Mean episode return of every uniform configuration: ``python -m abn_gym.tables [--split test]``.

This is the table in the env docstring and the README that shows the default ``cost_coef``
makes the trade-off real (the best uniform configuration is neither all-2 nor all-8).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from abn_gym.vector import ABNVectorEnv


def uniform_returns(split: str = "test", limit: int | None = None, batch: int = 256, **env_kwargs) -> dict:
    """{bits: {"accuracy", "bitops_fraction", "return"}} for every action, on the first ``limit`` images."""
    probe = ABNVectorEnv(1, split=split, **env_kwargs)
    n = len(probe.engine.split) if limit is None else min(limit, len(probe.engine.split))
    out = {}
    for a, bits in enumerate(probe.bit_choices):
        returns, correct, frac = [], [], []
        for start in range(0, n, batch):
            m = min(batch, n - start)
            env = ABNVectorEnv(m, split=split, **env_kwargs)
            env.reset(seed=0, options={"index": np.arange(start, start + m)})
            total = np.zeros(m)
            for _ in range(env.num_layers):
                _, r, _, _, info = env.step(np.full(m, a))
                total += r
            returns.append(total)
            correct.append(info["correct"])
            frac.append(info["bitops_fraction"])
        out[bits] = {
            "accuracy": float(np.concatenate(correct).mean()),
            "bitops_fraction": float(np.concatenate(frac).mean()),
            "return": float(np.concatenate(returns).mean()),
        }
    return out


def main() -> None:
    """Print the table as Markdown (or JSON with --json)."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--cost-coef", type=float, default=None)
    p.add_argument("--json", action="store_true")
    ns = p.parse_args()
    kw = {} if ns.cost_coef is None else {"cost_coef": ns.cost_coef}
    table = uniform_returns(ns.split, ns.limit, **kw)
    if ns.json:
        print(json.dumps(table))
        return
    bits = list(table)
    print("| uniform bits | " + " | ".join(str(b) for b in bits) + " |")
    print("| --- |" + " --- |" * len(bits))
    print("| accuracy % | " + " | ".join(f"{100 * table[b]['accuracy']:.2f}" for b in bits) + " |")
    print("| BitOps / all-8 | " + " | ".join(f"{table[b]['bitops_fraction']:.3f}" for b in bits) + " |")
    print("| mean return | " + " | ".join(f"{table[b]['return']:.4f}" for b in bits) + " |")
    best = max(bits, key=lambda b: table[b]["return"])
    print(f"\nbest uniform configuration under the default reward: {best} bits")


if __name__ == "__main__":
    main()
