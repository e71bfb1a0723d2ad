"""Mean episode return of every uniform configuration: ``python -m abn_gym.tables [--split test]``.

This is the table in the env docstring and the README that shows the default ``cost_coef``
makes the trade-off real (the best uniform configuration is neither all-2 nor all-8).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

import numpy as np

from abn_gym.config import DEFAULT_COST_COEF
from abn_gym.registration import DEFAULT_ENV_ID
from abn_gym.registration import env_kwargs as registered_kwargs
from abn_gym.vector import ABNVectorEnv
from supernets.data import SPLITS
from supernets.foundation.cliargs import arg, dataclass_from_args, dataclass_parser
from supernets.foundation.errors import ABNGymError


def uniform_returns(split: str = "test", limit: int | None = None, batch: int = 256, **env_kwargs) -> dict:
    """{bits: {"accuracy", "bitops_fraction", "cost_fraction", "return"}} for every action, first ``limit`` images.

    ``cost_fraction`` is in the env's ``cost_model`` (equal to ``bitops_fraction`` under "bitops").
    """
    probe = ABNVectorEnv(1, split=split, **env_kwargs)
    n = len(probe.engine.split) if limit is None else min(limit, len(probe.engine.split))
    out = {}
    for a, bits in enumerate(probe.bit_choices):
        returns, correct, frac, cost = [], [], [], []
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
            cost.append(info["cost_fraction"])
        out[bits] = {
            "accuracy": float(np.concatenate(correct).mean()),
            "bitops_fraction": float(np.concatenate(frac).mean()),
            "cost_fraction": float(np.concatenate(cost).mean()),
            "return": float(np.concatenate(returns).mean()),
        }
    return out


def cost_coef_interval(table: dict, bits: int) -> tuple[float, float]:
    """The range of ``cost_coef`` for which uniform-``bits`` has the highest mean return of ``table``.

    A uniform configuration's return is linear in the coefficient, accuracy - c x cost fraction
    (``cost_fraction``, else ``bitops_fraction``), so the range is exact: each other configuration
    bounds it from below (if it costs more) or from above (if it costs less); one that costs the
    same (BitFusion prices 3 bits as 4) and is more accurate rules every coefficient out.
    ``(nan, nan)`` when no coefficient makes ``bits`` the best.
    """
    acc, frac = table[bits]["accuracy"], _fraction(table[bits])
    lo, hi = 0.0, float("inf")
    for b, row in table.items():
        if b == bits:
            continue
        d_acc, d_frac = row["accuracy"] - acc, _fraction(row) - frac
        if d_frac > 0:
            lo = max(lo, d_acc / d_frac)
        elif d_frac < 0:
            hi = min(hi, d_acc / d_frac)
        elif d_acc > 0:
            lo = float("inf")
    return (lo, hi) if lo <= hi else (float("nan"), float("nan"))


def _fraction(row: dict) -> float:
    """A table row's cost fraction: the cost model's, or BitOps' in tables written before cost models."""
    return float(row.get("cost_fraction", row["bitops_fraction"]))


class NoCostCoefError(ValueError):
    """No ``cost_coef`` makes the middle bit-width the best uniform configuration."""


def _middle(bits: list[int]) -> int:
    """The bit-width nearest the geometric mean of the narrowest and widest."""
    return min(bits, key=lambda b: abs(np.log(b) - 0.5 * np.log(bits[0] * bits[-1])))


def choose_cost_coef(table: dict) -> tuple[int, float, tuple[float, float]]:
    """The rule behind every id's default ``cost_coef``: the middle bit-width is the best uniform one.

    The middle is the bit-width nearest the geometric mean of the narrowest and widest (4 of
    2..8), and the coefficient is the middle of the exact range that makes it the best, rounded
    to one significant digit. Returns (middle bit-width, coefficient, range). Apply it to val.
    """
    middle = _middle(sorted(table))
    lo, hi = cost_coef_interval(table, middle)
    if not np.isfinite(hi):
        raise NoCostCoefError(f"no cost_coef makes uniform-{middle} the best uniform configuration: {table}")
    return middle, float(f"{(lo + hi) / 2:.1g}"), (lo, hi)


@dataclass
class TablesArgs:
    """Arguments of ``python -m abn_gym.tables``."""

    split: str = arg("test", "data split", choices=SPLITS)
    env: str = arg(DEFAULT_ENV_ID, "environment id whose supernet and reward are used")
    supernet: str | None = arg(None, "supernet instead of the env's: a name or a card DIR/NAME.json")
    limit: int | None = arg(None, "first N images of the split (default: all)")
    cost_coef: float | None = arg(None, "price of the returns' cost fraction (default: the env's)")
    cost_model: str | None = arg(None, "cost model instead of the env's: bitops, bitfusion, or a cost table's path")
    json: bool = arg(False, "print the table as one JSON object", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m abn_gym.tables``, generated from :class:`TablesArgs`."""
    return dataclass_parser(TablesArgs, description=__doc__)


def main(argv: list[str] | None = None) -> None:
    """Print the table as Markdown (or JSON with --json); ``argv`` defaults to the command line."""
    p = build_parser()
    args = dataclass_from_args(TablesArgs, p.parse_args(argv))
    try:
        kw = registered_kwargs(args.env)
        kw.pop("split", None)
        if args.supernet is not None:
            kw["supernet"] = args.supernet
        if args.cost_coef is not None:
            kw["cost_coef"] = args.cost_coef
        if args.cost_model is not None:
            kw["cost_model"] = args.cost_model
        table = uniform_returns(args.split, args.limit, **kw)
    except ABNGymError as exc:
        p.exit(2, f"{p.prog}: error: {exc}\n")
    if args.json:
        print(json.dumps(table))
        return
    print(format_report(table, kw.get("cost_coef", DEFAULT_COST_COEF)))


def format_report(table: dict, cost_coef: float) -> str:
    """The Markdown table of :func:`uniform_returns`, the best row at ``cost_coef``, and the rule's coefficient.

    When no coefficient makes the middle bit-width the best, one line says so instead of failing.
    """
    bits = list(table)
    lines = [
        "| uniform bits | " + " | ".join(str(b) for b in bits) + " |",
        "| --- |" + " --- |" * len(bits),
        "| accuracy % | " + " | ".join(f"{100 * table[b]['accuracy']:.2f}" for b in bits) + " |",
        "| BitOps / all-8 | " + " | ".join(f"{table[b]['bitops_fraction']:.3f}" for b in bits) + " |",
        *(
            ["| cost / all-8 | " + " | ".join(f"{_fraction(table[b]):.3f}" for b in bits) + " |"]
            if any(_fraction(table[b]) != table[b]["bitops_fraction"] for b in bits)
            else []
        ),
        "| mean return | " + " | ".join(f"{table[b]['return']:.4f}" for b in bits) + " |",
    ]
    best = max(bits, key=lambda b: table[b]["return"])
    lines.append(f"\nbest uniform configuration at cost_coef={cost_coef:g}: {best} bits")
    try:
        middle, coef, (lo, hi) = choose_cost_coef(table)
    except NoCostCoefError:
        lines.append(
            f"no cost_coef makes uniform-{_middle(sorted(bits))} the best: a cheaper uniform configuration is at least "
            "as accurate, or a dearer one gains more per BitOps than any cheaper one loses"
        )
    else:
        lines.append(
            f"cost_coef making uniform-{middle} the best: {lo:.4f} to {hi:.4f}; rule's choice (middle): {coef}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
