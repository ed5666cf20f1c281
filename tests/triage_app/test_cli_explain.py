"""``stalltriage explain``: a real mp4 of the stack and its heat map, from the database's run."""

from __future__ import annotations

import numpy as np
from sqlalchemy import update

from core.video.mp4 import iter_frames
from db.engine import make_engine
from db.models import ModelRun
from testkit.run_dir import make_run_dir
from triage_app.cli import main


def _common(app_data) -> list[str]:
    return ["--db", app_data.settings.db_url, "--store", str(app_data.settings.store_path)]


def test_explain_writes_the_stack_next_to_its_heat_map(app_data, tmp_path, capsys):
    engine = make_engine(app_data.settings.db_url)
    with engine.begin() as connection:
        connection.execute(update(ModelRun).values(checkpoint_path=str(make_run_dir(tmp_path / "run"))))
    engine.dispose()
    stack = app_data.queue_filenames[0]
    out = tmp_path / "talk" / "explained.mp4"
    assert main(["explain", stack, "--out", str(out), *_common(app_data)]) == 0
    assert f"wrote {out}: 24 slices of {stack[:-4]}" in capsys.readouterr().out
    frames = np.stack(list(iter_frames(out)))
    assert len(frames) == 24 and frames.shape[2] > 2 * frames.shape[1]  # two panels side by side
    left, right = frames[:, :, :frames.shape[2] // 2], frames[:, :, frames.shape[2] // 2:]
    orange = (left[..., 2] > 200) & (left[..., 1] > 90) & (left[..., 1] < 190) & (left[..., 0] < 80)  # BGR
    assert orange.any()  # the outline
    assert (np.abs(right[..., 2].astype(int) - right[..., 0].astype(int)) > 60).any()  # the heat map
    assert main(["explain", stack[:-4], "--out", str(tmp_path / "by-key.mp4"), *_common(app_data)]) == 0


def test_explain_says_what_is_missing(app_data, tmp_path, capsys):
    out = str(tmp_path / "x.mp4")
    assert main(["explain", app_data.queue_filenames[0], "--out", out, *_common(app_data)]) == 1
    assert "no model run whose folder is on this machine: pass --model RUN_DIR" in capsys.readouterr().out
    run = str(make_run_dir(tmp_path / "run"))
    assert main(["explain", "999999.mp4", "--out", out, "--model", run, *_common(app_data)]) == 1
    assert "999999.mp4: not in the volume store" in capsys.readouterr().out
    assert main(["explain", app_data.queue_filenames[0], "--out", str(tmp_path / "x.gif"), *_common(app_data)]) == 1
    assert "must end in .mp4" in capsys.readouterr().out
