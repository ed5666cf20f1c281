"""The README's quick start, checked command by command against what it names, so it cannot drift.

Running the quick start for real takes minutes and a network; what can drift is cheaper to check:
every ``stalltriage`` command the README shows must parse with the real command line, every
``pip install`` must name a torch pin the package accepts and extras it defines, the virtual
environment must be the one git ignores, and ``.ci/run`` must install what the README installs
and run exactly its test command.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from triage_app.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CI = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def commands(line: str) -> list[list[str]]:
    """The commands of one shell line: split at ``&&``, without the comment, each as argv."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    parts: list[list[str]] = [[]]
    for token in lexer:
        if token == "&&":
            parts.append([])
        else:
            parts[-1].append(token)
    return [part for part in parts if part]


def bash_lines(text: str) -> list[list[str]]:
    """Each non-empty line of each ```bash block, in order."""
    blocks = re.findall(r"^```bash\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def readme_commands() -> list[list[str]]:
    """Every command of every bash block, after stripping a ``sudo``."""
    found = [argv for line in bash_lines(README) for argv in commands(line)]
    return [argv[1:] if argv[0] == "sudo" else argv for argv in found]


def quick_start() -> list[str]:
    """The first bash block's lines: the quick start."""
    return bash_lines(README.split("## Quick start", 1)[1])[:3]


def pip_installs(text_commands: list[list[str]]) -> list[list[str]]:
    """The arguments of every ``pip install`` (also ``python3 -m pip install``) command."""
    found = []
    for argv in text_commands:
        words = [word for word in argv if word != "-q"]
        if words[:2] == ["pip", "install"]:
            found.append(words[2:])
        elif words[1:4] == ["-m", "pip", "install"]:
            found.append(words[4:])
    return found


def test_the_quick_start_is_a_venv_then_install_and_demo_then_the_tests():
    venv, install, tests = (commands(line) for line in quick_start())
    assert venv[0][:3] == ["python3", "-m", "venv"]
    folder = venv[0][3]
    assert venv[1] == [".", f"{folder}/bin/activate"]
    assert f"{folder}/" in (ROOT / ".gitignore").read_text().splitlines()
    assert [argv[0] for argv in install] == ["pip", "pip", "stalltriage"]
    assert tests == [["python3", "-m", "pytest"]]


def test_the_readme_names_the_python_it_needs():
    needed = PYPROJECT["project"]["requires-python"].removeprefix(">=")
    assert f"Python ≥ {needed}" in README


@pytest.mark.parametrize("args", pip_installs(readme_commands()), ids=shlex.join)
def test_every_pip_install_names_a_torch_pin_or_extras_the_package_has(args):
    torch = next(Requirement(r) for r in PYPROJECT["project"]["dependencies"] if r.startswith("torch"))
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    for word in args:
        if word.startswith("torch=="):
            assert torch.specifier.contains(word.removeprefix("torch==")), f"{word} outside {torch}"
        elif word.startswith(".["):
            assert set(word[2:-1].split(",")) <= extras
        elif word.startswith("http"):
            assert word == CPU_INDEX
        else:
            assert word in {"-e", "--index-url"}, f"unexpected pip argument {word!r}"


def test_ci_installs_what_the_readme_installs_and_runs_its_test_command():
    readme_pins = {w for args in pip_installs(readme_commands()) for w in args if w.startswith(("torch==", ".["))}
    ci_commands = [argv for line in CI.splitlines() for argv in commands(line)]
    ci_pins = {w for args in pip_installs(ci_commands) for w in args if w.startswith(("torch==", ".["))}
    assert ci_pins == readme_pins
    last = [line for line in CI.splitlines() if line.strip() and not line.lstrip().startswith("#")][-1]
    assert commands(line=last) == commands(quick_start()[2])


def test_the_readme_asks_apt_for_what_ci_installs():
    apt = next(argv for argv in readme_commands() if argv[:2] == ["apt-get", "install"])
    ci_packages = {name for group in re.findall(r"need_apt\+=\(([^)]*)\)", CI) for name in group.split()}
    assert {"chromium", "postgresql"} <= {word for word in apt[2:] if not word.startswith("-")} <= ci_packages


def stalltriage_commands() -> list[str]:
    """Every ``stalltriage ...`` command the README shows, in bash blocks or as inline code."""
    inline = re.findall(r"`(stalltriage [^`]*)`", README)
    blocks = [shlex.join(argv) for argv in readme_commands() if argv[0] == "stalltriage"]
    return sorted(set(inline + blocks))


def test_the_readme_shows_the_demo_and_how_to_skip_the_app():
    assert {"stalltriage demo", "stalltriage demo --no-app"} <= set(stalltriage_commands())


@pytest.mark.parametrize("command", stalltriage_commands())
def test_every_stalltriage_command_in_the_readme_parses(command):
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert callable(args.func)
