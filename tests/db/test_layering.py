"""The db package stays a layer: no arrow from db into run directories, ingest, torch or the app."""

from __future__ import annotations

import ast
from pathlib import Path

import db

FORBIDDEN = ("core.model.rundir", "core.video.ingest", "torch", "triage_app", "training")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_db_modules_import_nothing_from_run_directories_ingest_torch_or_the_app() -> None:
    found = {f"{path.name}: {name}" for path in Path(db.__file__).parent.glob("*.py") for name in _imports(path)
             if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)}
    assert found == set()
