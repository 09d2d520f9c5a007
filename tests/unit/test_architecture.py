"""The architecture, checked by parsing every import of the repository's packages.

Layers (a folder may import only the folders listed for it): ``tradeflow/`` is the shared
core and imports nothing above it; ``simulator/`` stands alone; ``models/`` builds on the core;
``trader/`` on the core and ``models/``; ``tasks/`` wrap plain functions of those; ``flows/``
wire tasks (a flow may run another flow as a subflow); ``cli/`` is the composition root, the
only place that wires the core, models, the trader and the simulator together. Nothing imports
``flows/`` but flows, nothing imports ``cli/`` but itself. Besides: no import cycle between
files or between folders, one module imports ccxt, no class over 250 lines, no file over 500.

Imports inside functions and under ``TYPE_CHECKING`` count like any other: a lazy import is
still a dependency.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED: dict[str, set[str]] = {
    "tradeflow": {"tradeflow"},
    "simulator": {"simulator"},
    "models": {"tradeflow", "models"},
    "trader": {"tradeflow", "models", "trader"},
    "tasks": {"tradeflow", "models", "trader", "tasks"},
    "flows": {"tradeflow", "models", "trader", "tasks", "flows"},
    "cli": {"tradeflow", "models", "trader", "simulator", "cli"},
}
CCXT_MODULE = "tradeflow.exchange.ccxt_client"
MAX_CLASS_LINES = 250
MAX_FILE_LINES = 500


@dataclass(frozen=True)
class Import:
    source: str  # importing module, e.g. tradeflow.config
    target: str  # imported module, e.g. tradeflow.timeframes (or a third-party name)
    line: int


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_files(root: Path) -> dict[str, Path]:
    """Module name -> file of every first-party package module."""
    return {module_name(p, root): p for top in ALLOWED for p in sorted((root / top).rglob("*.py"))
            if "__pycache__" not in p.parts}


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> Iterator[Import]:
    """Every import statement of one file, resolved to modules where they are ours."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                # `from pkg import mod` imports the module pkg.mod; `from mod import name` mod.
                sub = f"{base}.{alias.name}"
                yield Import(module, sub if sub in modules else base, node.lineno)


@functools.cache
def first_party_imports(root: Path = ROOT) -> tuple[dict[str, Path], list[Import]]:
    modules = package_files(root)
    found = [imp for name, path in modules.items() for imp in imports_of(name, path, modules)]
    return modules, found


def layer_violations(found: list[Import], modules: dict[str, Path], root: Path) -> list[str]:
    out = []
    for imp in found:
        source, target = imp.source.split(".")[0], imp.target.split(".")[0]
        if target in ALLOWED and target not in ALLOWED[source]:
            where = modules[imp.source].relative_to(root)
            out.append(f"{where}:{imp.line} imports {imp.target} ({source}/ may import only "
                       f"{', '.join(sorted(ALLOWED[source]))})")
    return out


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of a directed graph as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def module_edges(found: list[Import], modules: dict[str, Path]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for imp in found:
        if imp.target in modules and imp.target != imp.source:
            edges.setdefault(imp.source, set()).add(imp.target)
    return edges


def folder_edges(found: list[Import], modules: dict[str, Path], root: Path
                 ) -> dict[str, set[str]]:
    def folder(module: str) -> str:
        return str(modules[module].parent.relative_to(root))

    edges: dict[str, set[str]] = {}
    for source, targets in module_edges(found, modules).items():
        for target in targets:
            if folder(source) != folder(target):
                edges.setdefault(folder(source), set()).add(folder(target))
    return edges


def oversized(root: Path) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        if {".venv", "__pycache__", "build"} & set(path.relative_to(root).parts):
            continue
        text = path.read_text()
        where = path.relative_to(root)
        if len(text.splitlines()) > MAX_FILE_LINES:
            out.append(f"{where}: {len(text.splitlines())} lines (at most {MAX_FILE_LINES})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > MAX_CLASS_LINES:
                    out.append(f"{where}:{node.lineno} class {node.name}: {size} lines "
                               f"(at most {MAX_CLASS_LINES})")
    return out


# -- the rules ---------------------------------------------------------------------------------

def test_imports_point_down_the_layers() -> None:
    modules, found = first_party_imports()
    violations = layer_violations(found, modules, ROOT)
    assert not violations, "upward or sideways imports:\n" + "\n".join(violations)


def test_no_import_cycle_between_files() -> None:
    modules, found = first_party_imports()
    cycle = find_cycle(module_edges(found, modules))
    assert cycle is None, "import cycle between files: " + " -> ".join(cycle or [])


def test_no_import_cycle_between_folders() -> None:
    modules, found = first_party_imports()
    cycle = find_cycle(folder_edges(found, modules, ROOT))
    assert cycle is None, "import cycle between folders: " + " -> ".join(cycle or [])


def test_exactly_one_module_imports_ccxt() -> None:
    _, found = first_party_imports()
    importers = sorted({i.source for i in found if i.target.split(".")[0] == "ccxt"})
    assert importers == [CCXT_MODULE]


def test_no_class_or_file_is_oversized() -> None:
    problems = oversized(ROOT)
    assert not problems, "\n".join(problems)


# -- the checker itself: each rule fails on a planted breach -------------------------------------

def plant(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for top in ALLOWED:
        (tmp_path / top).mkdir(exist_ok=True)
    return tmp_path


def test_the_checker_sees_an_upward_import_even_inside_a_function(tmp_path: Path) -> None:
    root = plant(tmp_path, {
        "tradeflow/__init__.py": "",
        "tradeflow/config.py": "def f():\n    from models.registry import champion\n",
        "models/__init__.py": "", "models/registry.py": "champion = 1\n",
    })
    modules, found = first_party_imports(root)
    assert layer_violations(found, modules, root) == [
        "tradeflow/config.py:2 imports models.registry (tradeflow/ may import only tradeflow)"]


def test_the_checker_sees_file_and_folder_cycles(tmp_path: Path) -> None:
    root = plant(tmp_path, {
        "tradeflow/__init__.py": "",
        "tradeflow/a.py": "from tradeflow import b\n",
        "tradeflow/b.py": "from tradeflow.a import x\n",
        "tradeflow/market/__init__.py": "",
        "tradeflow/market/store.py": "from tradeflow.validation import rules\n",
        "tradeflow/validation/__init__.py": "",
        "tradeflow/validation/rules.py": "from tradeflow.market.store import y\n",
    })
    modules, found = first_party_imports(root)
    assert find_cycle(module_edges(found, modules)) == ["tradeflow.a", "tradeflow.b", "tradeflow.a"]
    assert find_cycle(folder_edges(found, modules, root)) == [
        "tradeflow/market", "tradeflow/validation", "tradeflow/market"]


def test_the_checker_resolves_relative_imports_and_sees_big_classes(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_CLASS_LINES))
    root = plant(tmp_path, {
        "trader/__init__.py": "",
        "trader/big.py": f"from .small import y\n\n\nclass Big:\n{body}\n",
        "trader/small.py": "y = 1\n",
    })
    modules, found = first_party_imports(root)
    assert ("trader.big", "trader.small") in {(i.source, i.target) for i in found}
    assert oversized(root) == [f"trader/big.py:4 class Big: {MAX_CLASS_LINES + 1} lines "
                               f"(at most {MAX_CLASS_LINES})"]
