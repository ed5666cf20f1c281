"""The demo's users: passwords generated or taken from the environment, kept in a private file."""

from __future__ import annotations

import os
import stat

from tests.triage_app.helpers import can_log_in
from triage_app.cli import main
from triage_app.commands.demo import LOGINS_FILE, add_demo_users, password_variable, read_logins
from triage_app.settings import PASSWORD_ENV, Settings


def test_demo_passwords_are_generated_or_from_the_environment_and_kept_private(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    settings = Settings(data_dir=tmp_path, db_url=url, store_path=tmp_path / "store")
    assert main(["db", "upgrade", "--db", url]) == 0
    monkeypatch.setenv(password_variable("admin"), "admin secret from env")
    monkeypatch.delenv(password_variable("reviewer"), raising=False)
    monkeypatch.setenv(PASSWORD_ENV, "a password the demo must not use")

    assert add_demo_users(settings) == 0

    path = tmp_path / LOGINS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    logins = read_logins(path)
    assert logins["admin"] == "admin secret from env" and len(logins["reviewer"]) >= 16
    assert can_log_in(url, "admin", logins["admin"]) and can_log_in(url, "reviewer", logins["reviewer"])
    out = capsys.readouterr().out
    assert "== user reviewer: added as reviewer" in out and "== user admin: added as admin" in out
    assert logins["reviewer"] not in out and logins["admin"] not in out
    assert os.environ[PASSWORD_ENV] == "a password the demo must not use"  # left alone

    path.chmod(0o644)
    assert add_demo_users(settings) == 0  # a rerun: users exist, the file keeps their passwords
    assert read_logins(path) == logins and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "== user" not in capsys.readouterr().out
