"""No import cycles among the modules of daemons/ and regtest/, type-only imports included.

A cycle closed only by an ``if TYPE_CHECKING:`` import does not fail at run time, but it still ties two
modules together (neither can be read, typed or moved alone); the cheap cure is a Protocol declared by the
importing side (daemons/metrics.py MeteredDaemon, daemons/ws_resume.py ResumableClient,
regtest/mempool.py ChainView). Every import statement counts, at module level or inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("daemons", "regtest")


def module_files() -> dict[str, Path]:
    files = {}
    for package in PACKAGES:
        for path in (REPO / package).glob("*.py"):
            files[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return files


def imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The project modules one import statement names; ``from pkg import submodule`` names the submodule
    only (pkg/__init__ is loaded anyway, as the parent of every submodule)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names} & known
    base = node.module or ""
    if node.level:
        package = module if is_package else module.rsplit(".", 1)[0]
        base = f"{package}.{base}" if base else package
    submodules = {f"{base}.{alias.name}" for alias in node.names}
    names_of_base = not submodules <= known
    return (submodules | ({base} if names_of_base else set())) & known


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        targets: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                targets |= imported(node, module, path.stem == "__init__", set(files))
        graph[module] = targets - {module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each cycle once, as the path of modules that leads back to its first one (depth-first search)."""
    found: list[list[str]] = []
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(graph[module]):
            if target in path:
                found.append([*path[path.index(target) :], target])
            elif target not in done:
                visit(target, [*path, target])
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    return found


def test_the_graph_sees_type_only_and_relative_imports() -> None:
    graph = import_graph()
    assert "daemons.events" in graph["daemons.metrics"]  # only under TYPE_CHECKING
    assert "daemons.ws_resume" in graph["daemons.websocket"]  # relative, module level
    assert "daemons.base" in graph["daemons"]  # only under TYPE_CHECKING in daemons/__init__.py
    assert "regtest.kernel" in graph["regtest.chain"]  # inside a function


def test_cycles_are_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_no_import_cycles_in_daemons_and_regtest() -> None:
    assert cycles(import_graph()) == []
