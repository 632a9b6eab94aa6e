"""The import contract: `boundary/` (the request path) never imports `training/`, and no
module of the project imports itself through others (no import cycles).

A web process must not pay for torch, peft or the trainers, and the two halves must be able to
change apart. A cycle means two modules cannot be understood (or loaded) apart; one used to
hide behind a lazy import. So any import counts, also one inside a function or under
TYPE_CHECKING.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("boundary", "training", "review", "valence_site")


def forbidden_imports(source: str, forbidden: str) -> list[str]:
    """The modules under `forbidden` that `source` imports, wherever in the file."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [n for n in names if n == forbidden or n.startswith(forbidden + ".")]
    return found


def test_boundary_never_imports_training():
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in sorted((ROOT / "boundary").rglob("*.py"))
        if (found := forbidden_imports(path.read_text(encoding="utf-8"), "training"))
    }
    assert offenders == {}


def test_the_contract_catches_an_import_hidden_in_a_function():
    source = "def train():\n    from training.trainers.generative import TrainConfig\n"
    assert forbidden_imports(source, "training") == ["training.trainers.generative"]


def test_the_contract_catches_a_plain_import_and_ignores_lookalikes():
    assert forbidden_imports("import training.datasets", "training") == ["training.datasets"]
    assert forbidden_imports("import trainingwheels\nfrom . import training", "training") == []


def module_name(path: Path, root: Path = ROOT) -> str:
    """The dotted name Python imports `path` as (a package is its __init__.py)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(source: str, module: str, *, is_package: bool = False) -> Iterator[str]:
    """Every dotted name `source` imports, wherever in the file; relative imports resolved.

    `from a import b` yields both `a.b` (b may be a submodule) and `a`.
    """
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")
                package = package[: len(package) - node.level + int(is_package)]
                base = ".".join([*package, *([node.module] if node.module else [])])
            yield from (f"{base}.{alias.name}" for alias in node.names)
            if base:
                yield base


def import_graph(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """Module → the project modules it imports (the longest project module each name names)."""
    files = {
        module_name(p, root): p for package in packages for p in (root / package).rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        source = path.read_text(encoding="utf-8")
        targets = set()
        for name in imported_names(source, module, is_package=path.name == "__init__.py"):
            while name and name not in files:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None when the graph is acyclic (iterative DFS)."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path: list[str] = [start]
        on_path = {start}
        stack = [iter(sorted(graph.get(start, ())))]
        while stack:
            target = next(stack[-1], None)
            if target is None:
                stack.pop()
                done.add(path[-1])
                on_path.discard(path.pop())
            elif target in on_path:
                return [*path[path.index(target) :], target]
            elif target not in done:
                path.append(target)
                on_path.add(target)
                stack.append(iter(sorted(graph.get(target, ()))))
    return None


def test_the_project_has_no_import_cycles():
    graph = import_graph()
    assert "boundary.cascade" in graph and "training.pipeline" in graph  # the walk found them
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_catches_a_cycle_hidden_in_a_function(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import run\n")
    (package / "b.py").write_text("def run():\n    from . import c\n")
    (package / "c.py").write_text("import pkg.a\n")
    (package / "d.py").write_text("import pkg.a\nimport os\n")

    graph = import_graph(tmp_path, ("pkg",))

    assert graph["pkg.d"] == {"pkg.a"}
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a", "c"}}) is None
