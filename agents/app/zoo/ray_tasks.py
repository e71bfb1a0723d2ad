"""The zoo's runs as Ray tasks: ``abn-gym zoo --ray local`` (or a cluster address)."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

from tqdm import tqdm

from agents.app.zoo.plan import RunSpec
from agents.app.zoo.run import keep_files, train_run
from supernets.foundation.errors import UsageError


def run_on_ray(todo: list[RunSpec], address: str, progress: bool) -> None:
    """Each run as a Ray task with one CPU; the results (and files) come back as they finish.

    Args:
        todo: the runs.
        address: "local" starts Ray on this machine, else a cluster address (ray://host:10001, auto).
        progress: show a progress bar over the runs.
    """
    try:
        # lazy: Ray is an optional extra, and costs seconds at import
        import ray
    except ImportError:
        raise UsageError("--ray needs Ray: pip install 'abn-gym[ray]' (Ray core)") from None
    started = not ray.is_initialized()
    if started:
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        ray.init(address=None if address == "local" else address, **kwargs)
    try:
        task = ray.remote(num_cpus=1)(train_run)
        pending = {task.remote(dataclasses.replace(spec, log_to_file=True)): spec for spec in todo}
        bar = tqdm(total=len(todo), desc="zoo (ray)", unit="run", file=sys.stderr, disable=not progress)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            spec = pending.pop(ready[0])
            out = ray.get(ready[0])
            keep_files(spec, out["files"])
            bar.set_postfix_str(f"{spec.row} {spec.env} seed {spec.seed}", refresh=False)
            bar.update(1)
        bar.close()
    finally:
        if started:
            ray.shutdown()
