"""The floors import one way and without loops: foundation <- supernets <- abn_gym <- agents.controllers <- agents.app.

The graph is read from the source (the AST), so a test never depends on what happens to be imported
already. Module-level imports (under ``if TYPE_CHECKING`` too) must form no loop; imports inside
functions must not either, and no import at any level may point up a floor.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("supernets", "abn_gym", "agents")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _targets(node: ast.Import | ast.ImportFrom) -> set[str]:
    """The project modules an import statement names (``from pkg import mod`` names ``pkg.mod``)."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in MODULES}
    if node.level or not node.module or node.module not in MODULES:
        return set()
    return {node.module} | {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES}


def _module_level(tree: ast.Module) -> list[ast.stmt]:
    """Statements run at import: the module's body and the bodies of its ifs and trys."""
    out: list[ast.stmt] = []
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        out.append(node)
        if isinstance(node, (ast.If, ast.Try)):
            todo += node.body + node.orelse + getattr(node, "finalbody", [])
            todo += [s for h in getattr(node, "handlers", []) for s in h.body]
    return out


def _graphs() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(module-level imports, every import) of each project module."""
    top: dict[str, set[str]] = {}
    every: dict[str, set[str]] = {}
    imports = (ast.Import, ast.ImportFrom)
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        top[name] = set().union(*(_targets(n) for n in _module_level(tree) if isinstance(n, imports)))
        every[name] = set().union(*(_targets(n) for n in ast.walk(tree) if isinstance(n, imports)))
        top[name].discard(name)
        every[name].discard(name)
    return top, every


def _loop(graph: dict[str, set[str]]) -> list[str] | None:
    """One import loop of ``graph`` (as a path that returns to its start), or None."""
    done: set[str] = set()

    def visit(node: str, path: tuple[str, ...]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for nxt in sorted(graph.get(node, ())):
            found = visit(nxt, (*path, node))
            if found:
                return found
        done.add(node)
        return None

    for module in sorted(graph):
        found = visit(module, ())
        if found:
            return found
    return None


TOP, EVERY = _graphs()


def test_the_walk_sees_plain_imports_from_imports_and_imports_inside_functions():
    assert "abn_gym.observations" in TOP["abn_gym.engine"]
    assert "agents.controllers.static_configs" in TOP["agents.controllers.registry"]
    assert "agents.app.static_search" in TOP["agents.app.cli"] or "agents.app.static_search" in EVERY["agents.app.cli"]
    assert "agents.controllers.sb3_agent" not in TOP["agents.controllers.registry"]  # imported in functions only
    assert "agents.controllers.sb3_agent" in EVERY["agents.controllers.registry"]
    assert _loop({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _loop({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("graph", ["module level", "every import"])
def test_no_import_loop(graph):
    loop = _loop(TOP if graph == "module level" else EVERY)
    assert loop is None, "import loop: " + " -> ".join(loop or [])


FLOORS = [
    ("supernets.foundation", ("supernets.foundation",)),
    ("supernets", ("supernets",)),
    ("abn_gym", ("abn_gym", "supernets")),
    ("agents.controllers", ("agents.controllers", "abn_gym", "supernets")),
    ("agents.app", ("agents", "abn_gym", "supernets")),
    ("agents", ("agents.controllers",)),  # the package itself re-exports the library only
]
"""Each floor (by module prefix, most specific first) and the prefixes it may import."""


def _floor(module: str) -> tuple[str, tuple[str, ...]]:
    return next(f for f in FLOORS if module == f[0] or module.startswith(f[0] + "."))


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("floor", [f[0] for f in FLOORS])
def test_no_floor_imports_a_floor_above_it(floor):
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in EVERY.items()
        if _floor(module)[0] == floor
        for target in targets
        if not _within(target, _floor(module)[1])
    )
    assert not wrong, wrong


def test_the_agents_package_reexports_only_the_library():
    import agents

    assert agents.__all__ and all(m.startswith("agents.controllers.") for m in agents._EXPORTS.values())
    for name in agents.__all__:
        assert getattr(agents, name).__module__ == agents._EXPORTS[name]


def test_engine_imports_neither_config_nor_render():
    assert TOP["abn_gym.engine"].isdisjoint({"abn_gym.config", "abn_gym.render", "abn_gym.core"})
    assert len(MODULES["abn_gym.engine"].read_text().splitlines()) < 500


def _function_level_imports(path: Path) -> list[ast.Import | ast.ImportFrom]:
    tree = ast.parse(path.read_text())
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    found = {id(i): i for f in functions for i in ast.walk(f) if isinstance(i, (ast.Import, ast.ImportFrom))}
    return sorted(found.values(), key=lambda i: i.lineno)


def test_every_import_inside_a_function_says_why():
    # An import inside a function is kept only where it saves real import time (or needs an optional
    # package); a comment on the line above, or at the end of the statement, says which.
    silent = []
    for path in sorted(MODULES.values()):
        rel = path.relative_to(ROOT).as_posix()
        lines = path.read_text().splitlines()
        for node in _function_level_imports(path):
            above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
            ends = lines[node.lineno - 1 : node.end_lineno]
            if not above.startswith("#") and not any("#" in line for line in ends):
                silent.append(f"{rel}:{node.lineno}")
    assert not silent, "imports inside functions without a comment saying why: " + ", ".join(silent)


def test_the_lazy_imports_keep_the_heavy_packages_out_of_the_library_import():
    import subprocess
    import sys

    code = (
        "import sys, agents, abn_gym, supernets, agents.controllers.registry; "
        "print(sorted(m for m in ('stable_baselines3', 'matplotlib', 'torchvision', 'pandas') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "[]"
