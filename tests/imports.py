"""A probe of what a code path imports, for tests that keep start-up paths light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def libraries_imported_by(code: str) -> set[str]:
    """The top-level packages a fresh interpreter has imported after running ``code`` from the project root."""
    probe = f"{code}\nimport sys; print(' '.join(sorted({{name.split('.')[0] for name in sys.modules}})))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(done.stdout.split())
