"""The benchmarks are a package: each script runs as ``python -m bench.<name>`` and answers
``--help``; none edits the import path or imports the tests (what they share lives in ``testkit``)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
MODULES = sorted(path.stem for path in BENCH.glob("*.py") if path.stem != "__init__")
SCRIPTS = [name for name in MODULES if 'if __name__ == "__main__":' in (BENCH / f"{name}.py").read_text()]

# One interpreter runs every script as ``python -m bench.<name> --help`` does (runpy, as __main__),
# so the heavy imports (torch, Streamlit) are paid once.
_HELP_ALL = """
import contextlib, io, json, runpy, sys
out = {}
for name in sys.argv[1:]:
    sys.argv = [f"bench.{name}", "--help"]
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            runpy.run_module(f"bench.{name}", run_name="__main__", alter_sys=True)
        code = "returned without exiting"
    except SystemExit as stop:
        code = stop.code
    out[name] = [code, buffer.getvalue()]
print(json.dumps(out))
"""


def test_every_bench_script_answers_help_as_a_module() -> None:
    result = subprocess.run([sys.executable, "-c", _HELP_ALL, *SCRIPTS], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, check=True)
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(answers) == SCRIPTS
    for name, (code, text) in answers.items():
        assert code in (0, None), f"bench.{name} --help exited with {code}"
        assert text.startswith("usage: "), f"bench.{name} --help printed {text[:200]!r}"


def test_one_bench_script_runs_with_python_dash_m() -> None:
    result = subprocess.run([sys.executable, "-m", "bench.learning_curve", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: ")


def test_modules_that_are_not_scripts_are_helpers_of_a_script() -> None:
    helpers = set(MODULES) - set(SCRIPTS)
    sources = "\n".join((BENCH / f"{name}.py").read_text() for name in SCRIPTS)
    assert {name for name in helpers if f"from bench.{name} import" not in sources} == set()


def test_no_bench_file_edits_the_import_path_or_imports_the_tests() -> None:
    offending = {f"{path.name}: {match.group(0)}" for path in BENCH.rglob("*.py")
                 for match in re.finditer(r"sys\.path|^\s*(from tests\b|import tests\b)", path.read_text(), re.M)}
    assert offending == set()


def test_the_shared_helpers_are_installed_with_the_project() -> None:
    result = subprocess.run([sys.executable, "-c", "import json, testkit; print(json.dumps(testkit.__file__))"],
                            cwd=ROOT.parent, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert Path(json.loads(result.stdout)).parent.name == "testkit"
