"""`stalltriage demo --no-app` on a tiny synthetic set: every step runs and the app has what it needs."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import func, select

from db.engine import make_engine
from db.models import ModelRun, Prediction, User, Stack
from triage_app.commands.demo import read_logins


@pytest.mark.slow
def test_demo_prepares_everything(tmp_path):
    # A fresh process, as a user runs it (its process pools must not fork this busy test process).
    result = subprocess.run([sys.executable, "-m", "triage_app.cli", "demo", "--data-dir", str(tmp_path),
                             "--n-train", "60", "--n-test", "6", "--time-budget", "0.2", "--profile", "tiny",
                             "--no-app", "--sensitivity", "0.5", "--specificity", "0.5", "--confidence", "0.5"],
                            capture_output=True, text=True, timeout=600)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    for step in ("synthetic data", "database", "ingest training stacks", "ingest test stacks", "train", "predict",
                 "tune"):
        assert f"== {step}: stalltriage" in out, step
    assert "== user admin: added as admin" in out and "== user reviewer: added as reviewer" in out
    logins = tmp_path / "demo-logins.txt"
    assert f"logins: admin (admin), reviewer (reviewer); passwords in {logins} (readable by you only)" in out
    assert "start the app with: stalltriage app" in out
    passwords = read_logins(logins)
    assert set(passwords) == {"admin", "reviewer"} and not any(password in out for password in passwords.values())
    engine = make_engine(f"sqlite:///{tmp_path / 'stalltriage.db'}")
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Stack).where(Stack.status == "ok")) == 66
        assert connection.scalar(select(func.count()).select_from(ModelRun)) == 1
        assert connection.scalar(select(func.count()).select_from(Prediction)) == 66
        assert set(connection.scalars(select(User.name))) == {"admin", "reviewer"}
    engine.dispose()
