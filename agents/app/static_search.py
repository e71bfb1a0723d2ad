"""``abn-gym static-search``: run the static search, save its result, and publish it.

The search itself and the lookup of saved results are the library's
(:mod:`agents.controllers.static_configs`): the ``static-<b>`` agents need them.
"""

from __future__ import annotations

import json
from pathlib import Path

from agents.controllers.static_configs import model_suffix, result_model, shipped_path
from supernets.foundation.errors import UsageError
from supernets.foundation.files import atomic_write_json
from supernets.foundation.files import check_source_checkout as _check_source_checkout
from supernets.registry import get_entry, supernet_name


def default_out(supernet: str) -> Path:
    """Where ``static-search`` writes without --out: beside a card (bench finds it there), else runs/static-search."""
    return get_entry(supernet).card.parent if not get_entry(supernet).shipped else Path("runs/static-search")


def result_suffix(result: dict) -> str:
    """The file-name suffix of a search result's cost model: "" for BitOps (:func:`model_suffix`)."""
    model = str(result_model(result)["model"])
    return model_suffix(model if not model.startswith("table:") else model[len("table:") :])


def save_result(result: dict, out: str | Path, supernet: str, supernet_sha256: str, command: str) -> Path:
    """Write a search result to ``out/static-<name><suffix>.json`` (atomically); returns the path.

    The suffix names the cost model (none for BitOps, ``-bitfusion``, ``-table-<stem>``), so that
    searches under different models sit side by side and bench finds the one it needs.
    """
    name = supernet_name(supernet) + result_suffix(result)
    path = Path(out) / f"static-{name}.json"
    atomic_write_json(path, {**result, "supernet": name, "supernet_sha256": supernet_sha256, "command": command})
    return path


def check_source_checkout(target: Path) -> None:
    """Refuse to publish into an installed package: publishing is a developer step in a source checkout."""
    _check_source_checkout(target, __file__)


def publish_static(result_path: str | Path, supernet: str) -> Path:
    """Developer step: copy a search result over the shipped ``agents/policies/static-<supernet><suffix>.json``."""
    if not get_entry(supernet).shipped:
        raise UsageError(
            f"--publish ships static fronts for the package's own supernets only; {supernet}'s result stays in "
            "your folder (bench finds it beside the card, or with --static-from DIR)"
        )
    result = json.loads(Path(result_path).read_text())
    model = str(result_model(result)["model"])
    if model.startswith("table:"):
        raise UsageError(
            f"--publish ships static fronts for the built-in cost models only; a search under a user's table ({model}) "
            "stays in your folder (bench finds it beside the card, or with --static-from DIR)"
        )
    target = shipped_path(supernet, model)
    check_source_checkout(target)
    atomic_write_json(target, result)
    return target
