"""The database through the command line: db upgrade, user add/list, ingest recording, export."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select

from db.engine import make_engine, make_session_factory
from db.models import CrowdAnswer, Stack
from triage_app.cli import main


def test_db_upgrade_and_users(tmp_path, capsys) -> None:
    db = ["--db", f"sqlite:///{tmp_path / 'cli.db'}"]
    before_upgrade = [["user", "list"], ["export", "--out", str(tmp_path / "labels.csv")],
                      ["train", "--out", str(tmp_path / "run")], ["predict", "--model", str(tmp_path / "run")], ["tune"]]
    for command in before_upgrade:
        assert main([*command, *db]) == 1
    assert capsys.readouterr().out.count(f"no database at {tmp_path / 'cli.db'}") == len(before_upgrade)
    assert not (tmp_path / "cli.db").exists()
    assert main(["db", "upgrade", *db]) == 0
    assert "at revision" in capsys.readouterr().out
    secret, short = tmp_path / "secret", tmp_path / "short"
    secret.write_text("correct horse\n")
    short.write_text("short\n")
    assert main(["user", "add", "ada", "--role", "admin", "--password-file", str(secret), *db]) == 0
    assert main(["user", "add", "ada", "--password-file", str(secret), *db]) == 1
    assert "user 'ada' already exists" in capsys.readouterr().out
    assert main(["user", "add", "bob", "--password-file", str(short), *db]) == 1
    assert "at least 8 characters" in capsys.readouterr().out
    assert main(["user", "role", "nobody", "admin", *db]) == 1
    assert "no active user 'nobody'" in capsys.readouterr().out
    assert main(["user", "list", *db]) == 0
    assert capsys.readouterr().out.splitlines() == ["ada\tadmin\tactive"]


def test_ingest_records_every_stack_and_a_rerun_changes_nothing(synth_data, tmp_path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'st.db'}"
    common = ["--db", url, "--store", str(tmp_path / "store"), "--workers", "1", "--no-progress"]
    train = [str(synth_data / "train"), "--metadata", str(synth_data / "train_metadata.csv"),
             "--labels", str(synth_data / "train_labels.csv")]
    assert main(["ingest", *train, *common]) == 0  # no `db upgrade` first: created on first use
    assert main(["ingest", str(synth_data / "test"), "--metadata", str(synth_data / "test_metadata.csv"), *common]) == 0

    def stored() -> list[tuple]:
        engine = make_engine(url)
        with make_session_factory(engine)() as session:
            rows = [tuple(r) for r in session.execute(
                select(Stack.filename, Stack.split, Stack.status, Stack.roi_width, Stack.depth, CrowdAnswer.label,
                       CrowdAnswer.crowd_score).outerjoin(CrowdAnswer).order_by(Stack.filename))]
        engine.dispose()
        return rows

    first = stored()
    labels = dict(pd.read_csv(synth_data / "train_labels.csv").itertuples(index=False))
    test_files = set(pd.read_csv(synth_data / "test_metadata.csv")["filename"])
    assert {row[0] for row in first} == set(labels) | test_files
    assert all(row[2] == "ok" and row[3] > 0 and row[4] > 0 for row in first)
    assert all(row[5] == labels[row[0]] and row[1] == "train" for row in first if row[0] in labels)
    assert all(row[1] == "test" and row[5] is None and row[6] is None for row in first if row[0] in test_files)
    capsys.readouterr()
    assert main(["ingest", *train, *common]) == 0
    assert "already stored" in capsys.readouterr().out
    assert stored() == first
