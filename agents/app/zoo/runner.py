"""The zoo from start to end: check the arguments, plan the table, train what is not finished, report."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from agents.app.zoo.hyperparams import load_hyperparams
from agents.app.zoo.plan import ZooArgs, finished, plan
from agents.app.zoo.ray_tasks import run_on_ray
from agents.app.zoo.report import write_report
from agents.app.zoo.run import records_name, run_local, train_run
from supernets.foundation.errors import UsageError


def zoo(args: ZooArgs) -> dict[str, Any]:
    """Train every run of the table that is not finished, then write the report into ``args.out``.

    Args:
        args: the zoo's arguments.
    """
    t0 = time.perf_counter()
    if args.curve_points < 1 or args.eval_episodes < 1:
        raise UsageError("--curve-points and --eval-episodes must be at least 1")
    if args.timesteps is not None and args.timesteps < 1:
        raise UsageError(
            f"--timesteps {args.timesteps}: give a positive number of env steps per run, or leave it out to use "
            "each section's n_timesteps"
        )
    if args.reference not in args.baselines:
        raise UsageError(
            f"--reference {args.reference!r} must be one of the --baselines: {', '.join(args.baselines) or 'none'}"
        )
    conf = load_hyperparams(args.conf)
    specs = plan(args, conf)
    todo = [s for s in specs if finished(s) is None]
    out = Path(args.out)
    print(
        f"zoo: {len(specs)} runs ({len(specs) - len(todo)} finished, {len(todo)} to train) into {out}"
        + (f" as Ray tasks on {args.ray}" if args.ray and todo else ""),
        file=sys.stderr,
        flush=True,
    )
    if args.ray:
        run_on_ray(todo, args.ray, args.progress)
    else:
        run_local(todo, args.progress)
    for spec in specs:  # finished runs whose scored episodes on this split are missing
        if not (Path(spec.run_dir) / records_name(args.split, args.episodes)).is_file():
            train_run(spec)
    print("zoo: scoring baselines and writing the report", file=sys.stderr, flush=True)
    return write_report(args, specs, out, time.perf_counter() - t0)
