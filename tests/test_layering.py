"""The import contract: `boundary/` (the request path) never imports `training/`.

A web process must not pay for torch, peft or the trainers, and the two halves must be able to
change apart. Any import counts, also one inside a function or under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
