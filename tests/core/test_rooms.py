"""core's sub-packages are rooms: a module may use a sibling room's public names, never its private ones."""

from __future__ import annotations

import ast
from pathlib import Path

import core

CORE = Path(core.__file__).parent


def _private_imports_from_siblings(path: Path) -> set[str]:
    room = path.relative_to(CORE).parts[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("core."):
            other = node.module.split(".")[1]
            if other != room:
                found.update(f"{path.relative_to(CORE)}: {node.module}.{alias.name}"
                             for alias in node.names if alias.name.startswith("_"))
    return found


def test_core_has_rooms() -> None:
    rooms = {p.parent.name for p in CORE.glob("*/__init__.py")}
    assert {"video", "synth", "model", "labels", "policy"} <= rooms


def test_no_module_imports_a_sibling_rooms_private_names() -> None:
    modules = list(CORE.glob("*/*.py"))
    assert modules
    assert set().union(*(_private_imports_from_siblings(path) for path in modules)) == set()
