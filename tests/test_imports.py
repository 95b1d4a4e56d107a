"""The package's import graph, read with ``ast``, has no cycle (issues 14 and 24).

Every ``import`` of a ``dropout_lab`` module counts, at module level and inside functions.
Importing ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``, so those are edges too
(except a module's own parent packages, which are always initialising before it).

Two graphs: modules (what runs: imports under ``if TYPE_CHECKING:`` are left out, they never
run) and packages (each module mapped to its top-level part, ``dropout_lab.data.mnist`` ->
``data``, ``dropout_lab.trial`` -> ``trial``). The package graph counts ``TYPE_CHECKING``
imports too: a layer that names a type of a layer above it depends on it as much as one
that imports it at run time, and a cycle kept running only by ``TYPE_CHECKING`` and lazy
imports is still a cycle (issue 24, item 4). The registries' ``"module:function"`` strings
are not imports: each is resolved by its own package (``backends.registry.create``,
``data.registry.function``), never by the leaf that lists the names (``dropout_lab/specs/``).
"""

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


def _imports(tree: ast.AST, module: str, is_package: bool,
             type_checking: bool = False) -> set[str]:
    """Dotted names this module imports (absolute, project-only candidates unfiltered);
    ``type_checking``: those under ``if TYPE_CHECKING:`` as well."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test) and not type_checking:
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


def import_graph(type_checking: bool = False) -> dict[str, set[str]]:
    """module -> the project modules (and parent packages) its imports run."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for target in _imports(ast.parse(path.read_text()), name, path.name == "__init__.py",
                               type_checking):
            parts = target.split(".")
            for i in range(1, len(parts) + 1):  # a.b.c runs a, a.b and a.b.c
                prefix = ".".join(parts[:i])
                # A module's own parent packages are already importing when it runs (or ran
                # before it, when it is imported first): not an edge that can close a cycle.
                if prefix in modules and not (name == prefix or name.startswith(prefix + ".")):
                    edges.add(prefix)
        graph[name] = edges
    return graph


def part(module: str) -> str:
    """The top-level part of the package a module belongs to: ``dropout_lab.data.mnist`` ->
    ``data``, ``dropout_lab.trial`` -> ``trial``, ``dropout_lab`` -> ``dropout_lab``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def package_graph() -> dict[str, set[str]]:
    """part -> the parts its modules import, ``TYPE_CHECKING`` imports included. Edges into
    ``dropout_lab/__init__`` are left out: every module runs it first, and it imports its
    API lazily (on first use)."""
    graph: dict[str, set[str]] = {}
    for module, targets in import_graph(type_checking=True).items():
        edges = graph.setdefault(part(module), set())
        edges.update(part(t) for t in targets if t != "dropout_lab")
        edges.discard(part(module))
    return graph


def package_edge_reasons(a: str, b: str) -> list[str]:
    """The module imports behind the package edge a -> b (for the failure message)."""
    return sorted(f"{m} -> {t}" for m, ts in import_graph(type_checking=True).items()
                  for t in ts if part(m) == a and part(t) == b and t != "dropout_lab")


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
    assert "dropout_lab.specs.datasets" in graph["dropout_lab.config.models"]
    assert "dropout_lab.config" in graph["dropout_lab.sweep"]
    assert "dropout_lab.sweep" not in graph["dropout_lab.config"]
    assert "dropout_lab.config" not in graph["dropout_lab.data"]


def test_the_package_graph_counts_type_checking_imports_and_maps_to_parts():
    # the walker sees a TYPE_CHECKING import when asked (the package graph asks)
    tree = ast.parse("if TYPE_CHECKING:\n    from dropout_lab.trial import Prepared\n")
    assert "dropout_lab.trial" in _imports(tree, "dropout_lab.training", False, True)
    assert part("dropout_lab.data.mnist") == "data" and part("dropout_lab.trial") == "trial"
    graph = package_graph()
    assert "config" in graph["sweep"] and "specs" in graph["config"]
    assert "dropout_lab" not in graph["cli"]


def test_the_package_import_graph_has_no_cycle():
    graph = package_graph()
    cycle = find_cycle(graph)
    if cycle is not None:
        why = "; ".join(f"{a} -> {b}: {', '.join(package_edge_reasons(a, b)[:3])}"
                        for a, b in zip(cycle, cycle[1:], strict=False))
        pytest.fail("package import cycle: " + " -> ".join(cycle) + f" ({why})")


def test_config_reads_the_names_without_the_backends_or_the_data_modules():
    # config validates `backend:` and `dataset.name` against the leaf registries only
    graph = package_graph()
    assert not graph["config"] & {"backends", "data"}, graph["config"]
    assert not graph["backends"] & {"config", "executors"}, graph["backends"]
    assert "config" not in graph["data"], graph["data"]
    # the leaves import nothing of the package but errors
    assert graph["specs"] <= {"errors"}, graph["specs"]


def test_no_module_outside_config_imports_a_config_internal():
    # the config package's face is dropout_lab.config (its __init__ re-exports the names)
    graph = import_graph(type_checking=True)
    inside = {m: sorted(t for t in ts if t.startswith("dropout_lab.config."))
              for m, ts in graph.items() if not m.startswith("dropout_lab.config")}
    assert {m: ts for m, ts in inside.items() if ts} == {}


def test_the_module_import_graph_has_no_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("module", ["dropout_lab.config", "dropout_lab.data",
                                    "dropout_lab.sweep", "dropout_lab.store",
                                    "dropout_lab.specs.backends", "dropout_lab.trial"])
def test_each_module_imports_first_in_a_fresh_interpreter(module):
    # A partially initialised module shows up only when it is the first one imported.
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
