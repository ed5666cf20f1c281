"""The ``stalltriage`` command line as a whole: help in workflow order, no database made by mistake."""

from __future__ import annotations

import re

import pytest

from triage_app.cli import main


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
