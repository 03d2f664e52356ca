"""No module of dawexport imports its importer: the import graph (module level and inside functions,
relative imports resolved, a package's __init__ counted for each of its modules) has no cycle."""
from __future__ import annotations

import ast
from pathlib import Path

import dawexport

PACKAGE = Path(dawexport.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The dawexport modules `name` imports anywhere in its file, function bodies included.

    `from . import base` imports the module `base`; `from . import ENGINES` imports the package itself. An
    import of `a.b.c` also runs the packages `a` and `a.b`, except the packages `name` itself lies in (they
    run before it, whoever imports it)."""
    is_package = path.name == "__init__.py"
    direct: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            direct.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            for alias in node.names:
                direct.add(f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in known else stem)
    own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    found = {m for m in direct if m in known}
    for target in direct:
        parts = target.split(".")
        found.update(p for p in (".".join(parts[:i]) for i in range(1, len(parts))) if p in known and p not in own)
    found.discard(name)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_a_cycle_and_only_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_relative_and_function_level_imports_are_resolved():
    known = set(modules())
    graph = {name: imported(name, path, known) for name, path in modules().items()}
    assert "dawexport.errors" in graph["dawexport.spec.validate"]       # from ..errors import ...
    assert "dawexport.engines" in graph["dawexport.spec.validate"]      # imported inside a function
    assert "dawexport.export.common" in graph["dawexport.export.sfz"]   # absolute import


def test_dawexport_has_no_import_cycle():
    known = set(modules())
    graph = {name: imported(name, path, known) for name, path in modules().items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
