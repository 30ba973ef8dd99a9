"""The package's import layers: each unit imports only from the layers below it.

A unit is a top-level module or subpackage of `langchain_tokencal`. Imports are
read from the source (including imports inside functions and under
``TYPE_CHECKING``), so a lazy import cannot hide an upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import langchain_tokencal

PACKAGE = Path(langchain_tokencal.__file__).parent

# Bottom to top. A unit may import units of its own layer (without a cycle) and
# of every layer below it, never above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors",),
    ("config", "_providers", "_reasons", "_cache", "events"),
    ("_usage", "_features"),
    ("_counting",),
    ("_calibration",),
    ("_reporting", "storage"),
    ("_callbacks",),
    ("testing", "demo", "cli", "__main__", "__init__", "middleware", "otel"),
)

# These define counters that `trim_messages` calls; it inspects the annotation
# of their first parameter, which `from __future__ import annotations` would
# turn into a string it cannot recognise.
NO_POSTPONED_ANNOTATIONS: tuple[str, ...] = (
    "_counting/local.py",
    "_calibration/counter.py",
    "_callbacks/bound.py",
    "middleware.py",
)

MAX_LINES = 500

LAYER_OF = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def unit_of(module: str) -> str:
    """The unit of a dotted module name inside the package."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        found[".".join(["langchain_tokencal", *parts])] = path
    return found


def imports_of(module: str, path: Path) -> set[str]:
    """Every `langchain_tokencal` module this module imports, by dotted name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            names.add(target)
    return {
        n
        for n in names
        if n == "langchain_tokencal" or n.startswith("langchain_tokencal.")
    }


GRAPH = {m: imports_of(m, p) for m, p in modules().items()}


class TestLayers:
    """The layer contract of the package's imports."""

    def test_every_unit_has_a_layer(self):
        """A new module or subpackage must be placed in a layer."""
        units = {unit_of(m) for m in GRAPH}
        assert units <= set(LAYER_OF), sorted(units - set(LAYER_OF))

    @pytest.mark.parametrize("module", sorted(GRAPH))
    def test_no_upward_import(self, module):
        """No module imports a unit of a higher layer."""
        mine = LAYER_OF[unit_of(module)]
        upward = sorted(
            t
            for t in GRAPH[module]
            if LAYER_OF[unit_of(t)] > mine and unit_of(t) != unit_of(module)
        )
        assert not upward, f"{module} imports upward: {upward}"

    def test_no_import_cycle(self):
        """The module graph has no cycle (package __init__ re-exports excepted)."""
        # An __init__ that re-exports its own submodules is not a cycle.
        graph = {
            m: {t for t in ts if t in GRAPH and not m.startswith(t + ".") and t != m}
            for m, ts in GRAPH.items()
        }
        state: dict[str, int] = {}
        path: list[str] = []

        def visit(node: str) -> None:
            state[node] = 1
            path.append(node)
            for nxt in graph[node]:
                if state.get(nxt) == 1:
                    cycle = [*path[path.index(nxt) :], nxt]
                    pytest.fail("import cycle: " + " -> ".join(cycle))
                if nxt not in state:
                    visit(nxt)
            path.pop()
            state[node] = 2

        for node in sorted(graph):
            if node not in state:
                visit(node)

    @pytest.mark.parametrize("relative", NO_POSTPONED_ANNOTATIONS)
    def test_counter_modules_keep_real_annotations(self, relative):
        """Counter modules do not postpone annotations (trim_messages reads them)."""
        tree = ast.parse((PACKAGE / relative).read_text(encoding="utf-8"))
        postponed = [
            n
            for n in tree.body
            if isinstance(n, ast.ImportFrom)
            and n.module == "__future__"
            and any(a.name == "annotations" for a in n.names)
        ]
        assert not postponed

    @pytest.mark.parametrize("module", sorted(GRAPH))
    def test_module_size(self, module):
        """No module is over 500 lines: one concept per module."""
        lines = modules()[module].read_text(encoding="utf-8").count("\n")
        assert lines <= MAX_LINES, f"{module}: {lines} lines"
