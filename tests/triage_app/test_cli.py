"""The ``stalltriage`` command line as a whole: help in workflow order, no database made by mistake."""

from __future__ import annotations

import argparse
import re

import pytest

from tests.imports import libraries_imported_by
from triage_app import commands
from triage_app.cli import build_parser, main, named_command


def test_help_lists_the_commands_in_workflow_order(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = re.findall(r"^    (\w+) ", capsys.readouterr().out, flags=re.MULTILINE)
    assert listed == ["synth", "db", "ingest", "train", "predict", "tune", "user", "app", "retrain", "export", "explain", "demo"]


@pytest.mark.parametrize("command", [["train", "--out", "{tmp}/run"], ["predict", "--model", "{tmp}/run"], ["tune"],
                                     ["export", "--out", "{tmp}/labels.csv"], ["user", "list"], ["app"]])
def test_a_missing_database_file_is_reported_not_created(tmp_path, capsys, command):
    path = tmp_path / "typo.db"
    assert main([*(part.format(tmp=tmp_path) for part in command), "--db", f"sqlite:///{path}"]) == 1
    assert f"no database at {path}; run `stalltriage db upgrade` first" in capsys.readouterr().out
    assert not path.exists()


@pytest.mark.parametrize("argv, module", [(["ingest", "dir"], "ingest"), (["-v", "crowd-errors"], "crowd_errors"),
                                          (["crowd_errors"], None), (["--help"], None), ([], None), (["nope"], None)])
def test_the_named_command_is_found_so_only_its_parser_is_built(argv, module):
    assert named_command(argv) == module


def test_every_command_module_registers_the_command_named_after_it():
    for module in commands.names():
        subparsers = next(a for a in build_parser(module)._actions if isinstance(a, argparse._SubParsersAction))
        assert list(subparsers.choices) == [module.replace("_", "-")]


@pytest.mark.parametrize("module", commands.names())
def test_a_commands_help_imports_no_heavy_library(module):
    """`stalltriage CMD --help` builds only that command's parser; pandas, scikit-learn, torch and the
    like take a second or more to import and belong where the command runs, not where it is described."""
    heavy = {"pandas", "sklearn", "scipy", "torch", "monai", "streamlit", "cleanlab", "plotly"}
    loaded = libraries_imported_by(f"from triage_app.cli import build_parser; build_parser({module!r})")
    assert not loaded & heavy, sorted(loaded & heavy)
