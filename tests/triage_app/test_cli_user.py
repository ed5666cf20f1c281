"""``stalltriage user``: passwords come from a file, the environment or a prompt, never from argv."""

from __future__ import annotations

import getpass

import pytest

from tests.triage_app.helpers import can_log_in
from triage_app.cli import main
from triage_app.settings import PASSWORD_ENV


@pytest.fixture()
def db(tmp_path, monkeypatch):
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    url = f"sqlite:///{tmp_path / 'users.db'}"
    assert main(["db", "upgrade", "--db", url]) == 0
    return url


def test_password_on_the_command_line_is_refused(db, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["user", "add", "ada", "--password", "correct horse", "--db", db])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "a password is never taken on the command line" in err
    assert "correct horse" not in err


def test_password_from_a_file_the_environment_or_the_prompt(db, tmp_path, monkeypatch, capsys):
    secret = tmp_path / "secret"
    secret.write_text("correct horse\r\nsecond line ignored\n")
    assert main(["user", "add", "ada", "--role", "admin", "--password-file", str(secret), "--db", db]) == 0
    monkeypatch.setenv(PASSWORD_ENV, "battery staple")
    assert main(["user", "add", "bob", "--db", db]) == 0
    monkeypatch.delenv(PASSWORD_ENV)
    answers = iter(["tr0ub4dor&3", "tr0ub4dor&3"])
    prompts = []
    monkeypatch.setattr(getpass, "getpass", lambda prompt: prompts.append(prompt) or next(answers))
    assert main(["user", "passwd", "ada", "--db", db]) == 0
    assert prompts == ["password for ada: ", "again: "]
    assert capsys.readouterr().out.splitlines() == ["added admin ada", "added reviewer bob", "passwd: ada done"]
    assert can_log_in(db, "ada", "tr0ub4dor&3") and can_log_in(db, "bob", "battery staple")
    assert not can_log_in(db, "ada", "correct horse")


def test_unusable_passwords_change_nothing(db, tmp_path, monkeypatch, capsys):
    empty, missing = tmp_path / "empty", tmp_path / "missing"
    empty.write_text("\n")
    assert main(["user", "add", "ada", "--password-file", str(empty), "--db", db]) == 1
    assert main(["user", "add", "ada", "--password-file", str(missing), "--db", db]) == 1
    answers = iter(["first try!", "second try"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt: next(answers))
    assert main(["user", "add", "ada", "--db", db]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"error: {empty}: the first line (the password) is empty"
    assert lines[1].startswith(f"error: {missing}: cannot read the password file: ")
    assert lines[2] == "error: the two passwords differ; nothing changed"
    assert main(["user", "list", "--db", db]) == 0
    assert capsys.readouterr().out == ""
