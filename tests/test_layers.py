"""The package's layers: every import (at module level or inside a function) goes down,
and no module reaches itself through imports (no cycle)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mlops"

# Lowest first. A module may import its own package and anything in a lower layer;
# packages in one layer are peers and import none of each other.
LAYERS: list[tuple[str, ...]] = [
    ("mlops.errors",),
    ("mlops.core",),
    ("mlops.storage",),
    ("mlops.tables",),
    ("mlops.workspace",),
    ("mlops.checks",),
    ("mlops.remote",),
    ("mlops.pipeline",),
    ("mlops.plots", "mlops.dvcimport"),
    ("mlops.registry",),
    ("mlops.monitor",),
    ("mlops.serve",),
    ("mlops.flows",),
    # The package's own ``load_model`` (a shortcut to the registry's), then the command
    # line: the Git hooks' entry point, the typer commands, ``python -m mlops``.
    ("mlops",),
    ("mlops._githook",),
    ("mlops.cli",),
    ("mlops.__main__",),
]


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path], typing: bool = True) -> set[str]:
    """The mlops modules that ``name`` imports anywhere in its body (``typing``: also
    those imported only for type checking, which never run)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    skipped: set[int] = set()
    if not typing:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and ast.unparse(node.test) in _TYPE_CHECKING:
                skipped.update(id(inner) for inner in ast.walk(node))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            # ``from package import module`` imports the module (and runs the package's
            # __init__ first, as every import of a module in it does).
            names = [f"{base}.{alias.name}" for alias in node.names]
            targets = names if all(n in modules for n in names) else [base, *names]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


_TYPE_CHECKING = ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def _layer(name: str) -> tuple[int, str]:
    best = None
    for rank, layer in enumerate(LAYERS):
        for package in layer:
            if (name == package or name.startswith(package + ".")) and (
                best is None or len(package) > len(best[1])
            ):
                best = (rank, package)
    assert best is not None, f"{name} is in no layer of tests/test_layers.py"
    return best


def test_every_import_goes_down_a_layer_or_stays_in_its_package() -> None:
    modules = _modules()
    upward = []
    for name, path in sorted(modules.items()):
        rank, package = _layer(name)
        for target in sorted(_imports(name, path, modules)):
            target_rank, target_package = _layer(target)
            if target_package != package and target_rank >= rank:
                upward.append(f"{name} imports {target}")
    assert upward == []


def test_no_import_cycle() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules, typing=False) for name, path in modules.items()}
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target)
        path.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert cycles == []
