"""abn_gym's modules import one another without a loop, type-checking imports included."""

from __future__ import annotations

import ast
from pathlib import Path

import abn_gym

PACKAGE = Path(abn_gym.__file__).parent


def _imports(path: Path) -> set[str]:
    """The abn_gym modules that ``path`` imports at module level (under ``if TYPE_CHECKING`` too)."""
    names: set[str] = set()
    tree = ast.parse(path.read_text())
    # Module level and the bodies of module-level ifs; imports inside functions are deliberate deferrals.
    nodes = list(tree.body)
    for node in tree.body:
        if isinstance(node, ast.If):
            nodes += node.body + node.orelse
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "abn_gym":
                names |= {f"abn_gym.{a.name}" for a in node.names if (PACKAGE / f"{a.name}.py").exists()}
            elif node.module.startswith("abn_gym."):
                names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("abn_gym.")}
    return names


def _graph() -> dict[str, set[str]]:
    return {f"abn_gym.{p.stem}": _imports(p) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}


def test_no_import_loop_inside_abn_gym():
    graph = _graph()
    assert "abn_gym.observations" in graph["abn_gym.engine"], "the walk must see plain module-level imports"
    done: set[str] = set()

    def visit(node: str, path: tuple[str, ...]) -> None:
        if node in path:
            raise AssertionError("import loop: " + " -> ".join((*path[path.index(node) :], node)))
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, (*path, node))
        done.add(node)

    for module in sorted(graph):
        visit(module, ())


def test_engine_imports_neither_config_nor_render():
    graph = _graph()
    assert graph["abn_gym.engine"].isdisjoint({"abn_gym.config", "abn_gym.render", "abn_gym.core"})
    assert len((PACKAGE / "engine.py").read_text().splitlines()) < 500
