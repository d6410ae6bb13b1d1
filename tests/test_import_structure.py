"""The shape of the imports, read from the source with ``ast`` (nothing is imported):

* the core (``mila/``) imports no plugin (``mila_*``) and no boto3/botocore, not even lazily
  inside a function: plugins depend on the core, never the other way round, and the core
  starts without the AWS SDK;
* no built-in plugin package has an import cycle among its own modules at module level (the
  statements run on import, ``if TYPE_CHECKING:`` blocks included): the module owning a concept
  holds its constants, and ``plugin.py`` only registers.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "mila"
PLUGINS = sorted(p for p in (REPO / "plugins").glob("mila_*") if (p / "__init__.py").is_file())
FORBIDDEN_IN_CORE = ("mila_", "boto3", "botocore")


def imported_names(node: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """``(line, absolute module name)`` of each import in ``node`` (relative ones resolved
    against ``module``); ``from a import b`` yields ``a`` and ``a.b`` (``b`` may be a module)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield node.lineno, alias.name
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = module.split(".")
            parts = parts if is_package else parts[:-1]
            parts = parts[:len(parts) - (node.level - 1)]
            base = ".".join([*parts, base] if base else parts)
        yield node.lineno, base
        for alias in node.names:
            yield node.lineno, f"{base}.{alias.name}"


def module_name(path: Path, root: Path) -> tuple[str, bool]:
    rel = path.relative_to(root).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts), rel.name == "__init__"


def module_level(tree: ast.Module) -> Iterator[ast.AST]:
    """The import statements that run when the module is imported: top level, and inside
    top-level ``if``/``try``/``with`` blocks — not in functions or classes."""
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        stmt = pending.pop()
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            yield stmt
        elif isinstance(stmt, (ast.If, ast.Try, ast.With)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                for child in getattr(stmt, field, []):
                    pending.extend(child.body if isinstance(child, ast.ExceptHandler)
                                   else [child])


def test_the_core_imports_no_plugin_and_no_aws_sdk() -> None:
    found: list[str] = []
    for path in sorted(CORE.rglob("*.py")):
        module, is_package = module_name(path, REPO)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            tops = {name.split(".")[0] for _, name in imported_names(node, module, is_package)}
            found += [f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)} imports {top}"
                      for top in sorted(tops) if top.startswith(FORBIDDEN_IN_CORE)]
    assert not found, "the core must not import plugins or boto3:\n" + "\n".join(found)


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports at module level."""
    root = package.parent
    modules = {module_name(p, root)[0]: p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[module] = {name for node in module_level(tree)
                         for _, name in imported_names(node, module, is_package)
                         if name in modules and name != module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (``[a, b, a]``), or ``None``."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"b"}}) is None


@pytest.mark.parametrize("package", PLUGINS, ids=lambda p: p.name)
def test_no_import_cycle_within_a_plugin(package: Path) -> None:
    cycle = find_cycle(import_graph(package))
    assert cycle is None, f"import cycle in {package.name}: {' -> '.join(cycle or [])}"
