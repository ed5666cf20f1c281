"""Pages reach the database only through ``triage_app.services``: no page imports a ``db`` module
(``db.errors``, the errors services raise, aside) or opens a session of its own."""

from __future__ import annotations

import ast
from pathlib import Path

import triage_app

PAGES = sorted((Path(triage_app.__file__).parent / "app_pages").glob("*.py"))
OPENS_SESSIONS_STILL = {"review.py"}
"""Known debt (issue 24): the Review page's score and run-directory lookups still open a session."""


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


def test_pages_import_no_db_module() -> None:
    found = set()
    for path in PAGES:
        for node in ast.walk(_tree(path)):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            found |= {f"{path.name}: {name}" for name in names
                      if (name == "db" or name.startswith("db.")) and name != "db.errors"}
    assert found == set()


def test_pages_open_no_session() -> None:
    opening = {path.name for path in PAGES for node in ast.walk(_tree(path))
               if isinstance(node, ast.Attribute) and node.attr == "factory"}
    assert opening <= OPENS_SESSIONS_STILL
    assert len(PAGES) > len(OPENS_SESSIONS_STILL)  # the glob found the pages
