"""core.video.mp4: frames written with write_mp4 decode back; broken files raise DecodeError naming the file."""

from __future__ import annotations

import numpy as np
import pytest

from core.video.mp4 import DecodeError, FrameReader, iter_frames
from tests.core.video.stackfiles import stack_frames, write_stack, write_zero_frames


def test_round_trip_keeps_count_size_and_content(tmp_path):
    frames = stack_frames(depth=7, size=(50, 66))
    path = write_stack(tmp_path / "s.mp4", depth=7, size=(50, 66))
    decoded = list(iter_frames(path))
    assert len(decoded) == 7
    assert all(f.shape == (50, 66, 3) and f.dtype == np.uint8 for f in decoded)
    rgb = np.stack(decoded)[..., ::-1].astype(int)
    assert np.abs(rgb - frames.astype(int)).mean() < 8


def test_reader_reports_container_info(tmp_path):
    path = write_stack(tmp_path / "s.mp4", depth=5, size=(40, 60))
    with FrameReader(path) as reader:
        assert (reader.info.width, reader.info.height, reader.info.frame_count) == (60, 40, 5)


@pytest.mark.parametrize("case, problem", [
    ("missing", "no such file"),
    ("text", "not an mp4 file"),
    ("empty", "empty file"),
    ("zero", "zero frames"),
    ("truncated", "truncated"),
])
def test_broken_files_raise_with_file_and_problem(tmp_path, case, problem):
    path = tmp_path / f"{case}.mp4"
    if case == "text":
        path.write_text("filename,stalled\n100109.mp4,0\n")
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "zero":
        write_zero_frames(path, tmp_path)
    elif case == "truncated":
        whole = write_stack(tmp_path / "whole.mp4", depth=20).read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DecodeError, match=problem) as info:
        list(iter_frames(path))
    assert str(path) in str(info.value)
