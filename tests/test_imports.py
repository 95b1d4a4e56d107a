"""The package's import graph, read with ``ast``, has no cycle (issue 14).

Every ``import`` of a ``dropout_lab`` module counts, at module level and inside functions,
except those under ``if TYPE_CHECKING:`` (annotations only, never run). Importing
``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``, so those are edges too (except a
module's own parent packages, which are always initialising before it)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import dropout_lab

PACKAGE = Path(dropout_lab.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Dotted names this module imports (absolute, project-only candidates unfiltered)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{a.name}" for a in node.names)  # maybe submodules
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules (and parent packages) its imports run."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for target in _imports(ast.parse(path.read_text()), name, path.name == "__init__.py"):
            parts = target.split(".")
            for i in range(1, len(parts) + 1):  # a.b.c runs a, a.b and a.b.c
                prefix = ".".join(parts[:i])
                # A module's own parent packages are already importing when it runs (or ran
                # before it, when it is imported first): not an edge that can close a cycle.
                if prefix in modules and not (name == prefix or name.startswith(prefix + ".")):
                    edges.add(prefix)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 finished
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = dfs(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = dfs(node)
            if found:
                return found
    return None


def test_the_walker_finds_a_cycle():
    # The detector itself can fail: a two-module cycle and a three-module one.
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_walker_sees_imports_inside_functions_and_relative_ones():
    tree = ast.parse("def f():\n    from dropout_lab.sweep import expand\n"
                     "from .files import x\nif TYPE_CHECKING:\n    import dropout_lab.trial\n")
    found = _imports(tree, "dropout_lab.data.mnist", is_package=False)
    assert "dropout_lab.sweep" in found and "dropout_lab.data.files" in found
    assert "dropout_lab.trial" not in found


def test_config_data_and_sweep_are_no_longer_a_cycle():
    graph = import_graph()
    assert "dropout_lab.data.registry" in graph["dropout_lab.config.models"]
    assert "dropout_lab.config" in graph["dropout_lab.sweep"]
    assert "dropout_lab.sweep" not in graph["dropout_lab.config"]
    assert "dropout_lab.config" not in graph["dropout_lab.data"]


def test_the_package_import_graph_has_no_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("module", ["dropout_lab.config", "dropout_lab.data",
                                    "dropout_lab.sweep", "dropout_lab.store"])
def test_each_module_imports_first_in_a_fresh_interpreter(module):
    # A partially initialised module shows up only when it is the first one imported.
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
