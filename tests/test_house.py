"""The house: one folder per family of ideas, and every import pointing down.

Every import of every module is read with ``ast`` (lazy ones inside functions and
``TYPE_CHECKING`` ones included), so that an import that only runs late still
counts. The faces (the command line, the report, the framework adapters, the JSON
contract) import the core; the core never imports a face, and no modules import
each other in a circle. docs/development.md draws the same map in words.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "rnngrad"

#: Modules that present the core: they may import anything below them, nothing imports them
#: but other faces (and ``rnngrad/__init__.py``, the public face, and ``__main__``).
FACES = ("rnngrad.cli", "rnngrad.report", "rnngrad.integrations", "rnngrad.jsonout")
TOP = ("rnngrad", "rnngrad.__main__")

MAX_FLAT_MODULES = 16
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, path: Path) -> Iterator[str]:
    """The rnngrad modules that ``name`` imports, wherever in the file the import stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "rnngrad":
                    yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            if base.split(".")[0] != "rnngrad":
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield full if full in MODULES else base


def arrows() -> dict[str, set[str]]:
    return {
        name: {target for target in imported(name, path) if target != name}
        for name, path in MODULES.items()
    }


def is_face(name: str) -> bool:
    return any(name == face or name.startswith(face + ".") for face in FACES)


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_module_is_read() -> None:
    """The walk sees the folders (a moved file would otherwise escape every check)."""
    for family in ("theory", "profile", "lyapunov", "modern", "io", "monitor", "show", "lab"):
        assert any(name.startswith(f"rnngrad.{family}.") for name in MODULES), family
    assert sum(len(targets) for targets in arrows().values()) > 200


def test_no_modules_import_each_other_in_a_circle() -> None:
    assert circles(arrows()) == []


def test_the_circle_finder_finds_a_circle() -> None:
    """The check above can fail: a three-module loop and a two-module loop are found."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    assert sorted(circles(graph)) == [["a", "b", "c"], ["d", "e"]]


def test_the_core_never_imports_a_face() -> None:
    upward = sorted(
        f"{name} -> {target}"
        for name, targets in arrows().items()
        if not is_face(name) and name not in TOP
        for target in targets
        if is_face(target) or target in TOP
    )
    assert upward == []


@pytest.mark.parametrize("name", ["rnngrad.jsonout", "rnngrad.report.page", "rnngrad.cli"])
def test_faces_are_recognised(name: str) -> None:
    assert is_face(name)
    assert not is_face("rnngrad.profile.front")


def test_few_flat_modules_and_none_too_long() -> None:
    flat = [path.name for path in PACKAGE.glob("*.py")]
    assert len(flat) <= MAX_FLAT_MODULES, sorted(flat)
    long = {
        name: lines
        for name, path in MODULES.items()
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_each_shared_type_alias_is_defined_once() -> None:
    """A module-level alias of a subscripted type (``FloatArray = NDArray[np.float64]``)
    lives in one module; the others import it."""
    where: dict[str, list[str]] = {}
    for name, path in MODULES.items():
        for node in ast.parse(path.read_text()).body:
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Subscript)
            ):
                where.setdefault(node.targets[0].id, []).append(name)
    assert {alias: found for alias, found in where.items() if len(found) > 1} == {}


DOCUMENTS = [PACKAGE.parents[1] / "README.md", *sorted((PACKAGE.parents[1] / "docs").rglob("*.md"))]


def documented_imports() -> list[tuple[str, str]]:
    """``(module, name)`` for each ``from rnngrad... import name`` and each ``::: rnngrad...``
    reference of the README and the documentation site."""
    found: list[tuple[str, str]] = []
    for path in DOCUMENTS:
        for line in path.read_text().splitlines():
            line = line.strip()
            if line.startswith("from rnngrad") and " import " in line:
                module, _, names = line[len("from ") :].partition(" import ")
                found += [(module, n.strip()) for n in names.split(",") if n.strip()]
            elif line.startswith("::: rnngrad"):
                found.append((line[len("::: ") :], ""))
    return found


def test_every_public_name_imports_from_where_the_docs_show_it() -> None:
    """``rnngrad.NAME`` for every name of the public face, and every import and API
    reference the documents show (``rnngrad.monitor``, ``rnngrad.integrations.lightning``,
    ...): a move of code must not break what a reader copies."""
    import importlib

    import rnngrad

    for name in rnngrad.__all__:
        assert getattr(rnngrad, name) is not None, name
    shown = documented_imports()
    assert len(shown) >= 10 and ("rnngrad.integrations.lightning", "") in shown
    for module, name in shown:
        imported_module = importlib.import_module(module)
        if name:
            assert hasattr(imported_module, name), f"from {module} import {name}"
    monitor = importlib.import_module("rnngrad.monitor")
    old_home = importlib.import_module("rnngrad.monitor.monitor")  # warning filters name it
    for name in ("GradientWarning", "MonitorDisabledWarning", "MonitorEvent", "MonitorRecord"):
        assert getattr(old_home, name) is getattr(monitor, name), name


def test_the_public_face_is_one_list() -> None:
    """``__init__.pyi`` imports each public name once, and its ``__all__`` (which type
    checkers and the documentation read) names exactly those; at run time ``rnngrad``
    offers the same names (``lazy_loader`` reads the same imports)."""
    import rnngrad

    stub = ast.parse((PACKAGE / "__init__.pyi").read_text())
    imported_names = [
        alias.name for node in stub.body if isinstance(node, ast.ImportFrom) for alias in node.names
    ]
    listed = next(
        ast.literal_eval(node.value)
        for node in stub.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__all__"
    )
    assert len(imported_names) == len(set(imported_names))
    assert sorted(listed) == sorted([*imported_names, "__version__"])
    assert sorted(rnngrad.__all__) == sorted(listed) == sorted(dir(rnngrad))
