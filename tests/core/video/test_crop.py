"""core.video.crop: ROI from the orange outline, luma crop without the outline, and every bad stack."""

from __future__ import annotations

import tracemalloc

import cv2
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from core.video.crop import CropOptions, StackError, crop_frames, fill_outline, read_stack
from core.video.mp4 import iter_frames, write_mp4
from tests.core.video.stackfiles import stack_frames, write_changing_size, write_stack, write_zero_frames

BOX = (30, 20, 90, 70)
ROI = (27, 17, 94, 74)  # outline's pixels (x1, y1 inclusive) plus the 3-pixel margin
ORANGE_BGR = (40, 120, 230)  # as a decoder returns the outline: inside the inRange bounds


def luma_crop(path, roi) -> np.ndarray:
    return np.stack([cv2.cvtColor(f, cv2.COLOR_BGR2GRAY)[roi[1]:roi[3], roi[0]:roi[2]] for f in iter_frames(path)])


def test_roi_volume_mask_and_metadata(tmp_path):
    stack = read_stack(write_stack(tmp_path / "s.mp4", depth=12, box=BOX))
    assert stack.roi == ROI
    assert stack.volume.shape == (12, ROI[3] - ROI[1], ROI[2] - ROI[0]) and stack.volume.dtype == np.uint8
    assert (stack.frame_size, stack.num_frames, stack.frames_with_outline) == ((128, 96), 12, 12)
    mask = stack.mask
    assert mask.shape == stack.volume.shape[1:]
    assert mask[:3].sum() == 0 and mask[:, :3].sum() == 0 and mask[-3:].sum() == 0
    assert mask[3:-3, 3:-3].mean() > 0.99 and mask[6:-6, 6:-6].all()
    assert stack.meta() == {"roi": list(ROI), "frame_size": [128, 96], "num_frames": 12, "frames_with_outline": 12}


def test_lumen_is_bright_and_outline_does_not_leak(tmp_path):
    with_outline = write_stack(tmp_path / "with.mp4", box=BOX, seed=3)
    without = write_stack(tmp_path / "without.mp4", box=None, seed=3)
    stack = read_stack(with_outline)
    raw = luma_crop(with_outline, stack.roi).astype(int)
    clean = luma_crop(without, stack.roi).astype(int)
    on_line = np.zeros(stack.volume.shape[1:], bool)
    cv2.rectangle(on_line.view(np.uint8), (BOX[0] - ROI[0], BOX[1] - ROI[1]), (BOX[2] - ROI[0], BOX[3] - ROI[1]), 1, 1)
    assert np.abs(raw - clean)[:, on_line].mean() > 60  # the outline is a bright line in luma...
    assert np.abs(stack.volume.astype(int) - clean)[:, on_line].mean() < 15  # ...and gone after filling
    assert np.abs(stack.volume.astype(int) - clean)[:, ~on_line].mean() < 3
    vessel = clean > 150
    assert vessel.any() and stack.volume[vessel].mean() > 150 and stack.volume[~vessel].mean() < 60


def test_frames_without_outline_are_tolerated(tmp_path):
    frames = stack_frames(depth=10, box=BOX)
    frames[2:5] = stack_frames(depth=3, box=None, seed=1)
    write_mp4(tmp_path / "gaps.mp4", frames)
    stack = read_stack(tmp_path / "gaps.mp4")
    assert stack.roi == ROI and stack.num_frames == 10 and stack.frames_with_outline == 7


def test_stray_orange_specks_do_not_widen_the_roi(tmp_path):
    frames = stack_frames(depth=6, box=BOX)
    frames[:, 5:7, 110:112] = (255, 128, 0)  # a 2x2 speck far from the outline
    write_mp4(tmp_path / "speck.mp4", frames)
    assert read_stack(tmp_path / "speck.mp4").roi == ROI


def test_outline_touching_the_frame_edge(tmp_path):
    stack = read_stack(write_stack(tmp_path / "edge.mp4", box=(-5, 10, 60, 50)))
    assert stack.roi == (0, 7, 64, 54)
    assert stack.mask[5:-5, :5].all() and stack.mask[5:-5, -6:-4].all() and stack.mask[:2].sum() == 0


def test_outline_moving_late_takes_a_second_pass_with_the_same_result(tmp_path):
    frames = stack_frames(depth=10, box=BOX)
    frames[7:] = stack_frames(depth=3, box=(5, 5, 50, 40), seed=2)
    path = tmp_path / "moves.mp4"
    write_mp4(path, frames)
    two_pass = read_stack(path, CropOptions(slack=4))
    one_pass = read_stack(path, CropOptions(slack=1000))
    assert two_pass.roi == one_pass.roi == (2, 2, 94, 74)
    np.testing.assert_array_equal(two_pass.volume, one_pass.volume)
    np.testing.assert_array_equal(two_pass.mask, one_pass.mask)


@pytest.mark.parametrize("case, problem", [
    ("text", "not an mp4 file"),
    ("truncated", "truncated"),
    ("zero", "zero frames"),
    ("one", "only 1 frame"),
    ("no_outline", "no orange outline found in any of its 8 frames"),
])
def test_bad_stacks_raise_stack_error_naming_file_and_problem(tmp_path, case, problem):
    path = tmp_path / f"{case}.mp4"
    if case == "text":
        path.write_text("this is not a video\n")
    elif case == "truncated":
        whole = write_stack(tmp_path / "whole.mp4", depth=20).read_bytes()
        path.write_bytes(whole[: len(whole) * 2 // 3])
    elif case == "zero":
        write_zero_frames(path, tmp_path)
    elif case == "one":
        write_stack(path, depth=1)
    else:
        write_stack(path, depth=8, box=None)
    with pytest.raises(StackError, match=problem) as info:
        read_stack(path)
    assert str(path) in str(info.value)


def test_frames_of_changing_size_are_rejected():
    frames = [*stack_frames(depth=3, size=(96, 128)), *stack_frames(depth=2, size=(64, 80))]
    with pytest.raises(StackError, match="frame 3 is 80x64, frame 0 is 128x96: frames of changing size"):
        crop_frames(iter(frames), "mixed.mp4")


def test_stream_changing_size_is_scaled_by_the_decoder(tmp_path):
    """FFmpeg scales a mid-stream size change to the container's size; the stack stays consistent."""
    stack = read_stack(write_changing_size(tmp_path / "mixed.mp4", tmp_path))
    assert stack.frame_size == (128, 96) and stack.num_frames == 8 and stack.frames_with_outline == 8


@pytest.mark.slow
def test_giant_frames_stream_in_bounded_memory(tmp_path):
    size, depth = 4000, 3
    frames = np.zeros((depth, size, size, 3), np.uint8)
    frames[:, 1000:3000, 1500:1520] = 200
    for frame in frames:
        cv2.rectangle(frame, (1400, 1900), (1600, 2100), (255, 128, 0), 2)
    path = tmp_path / "giant.mp4"
    write_mp4(path, frames)
    del frames
    tracemalloc.start()
    try:
        stack = read_stack(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert stack.roi == (1396, 1896, 1605, 2105) and stack.volume.shape == (depth, 209, 209)
    assert peak < 4 * size * size * 3  # a few frames' worth, never the whole stack at full size
    with pytest.raises(StackError, match=r"frames of 4000x4000 pixels exceed the limit of 10000000 pixels"):
        read_stack(path, CropOptions(max_frame_pixels=10_000_000))


def fill_frame_by_frame(volume: np.ndarray, outline: np.ndarray, fill_px: int = 7) -> np.ndarray:
    """The fill computed one 2-D frame at a time: the reference for the chunked version."""
    covered = cv2.dilate(outline.max(axis=0), np.ones((3, 3), np.uint8)) > 0
    valid = (~covered).astype(np.uint16)
    box = {"ddepth": -1, "ksize": (fill_px, fill_px), "normalize": False, "borderType": cv2.BORDER_REPLICATE}
    weight = cv2.boxFilter(valid, **box)[covered].astype(np.int64)
    out = volume.copy()
    for frame in out:
        total = cv2.boxFilter(frame * valid, **box)[covered].astype(np.int64)
        frame[covered] = np.where(weight > 0, (total + weight // 2) // np.maximum(weight, 1), 0)
    return out


@settings(max_examples=60, deadline=None)
@given(depth=st.integers(1, 300), height=st.integers(1, 40), width=st.integers(1, 40),
       fill_px=st.sampled_from([3, 7]), data=st.data())
def test_fill_matches_the_frame_by_frame_fill_at_every_depth(depth, height, width, fill_px, data):
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    volume = rng.integers(0, 256, (depth, height, width), dtype=np.uint8)
    outline = np.zeros_like(volume)
    y, x = data.draw(st.integers(0, height - 1), label="y"), data.draw(st.integers(0, width - 1), label="x")
    outline[rng.integers(0, depth), y, x:] = 255
    expected = fill_frame_by_frame(volume, outline, fill_px)
    np.testing.assert_array_equal(fill_outline(volume.copy(), outline, fill_px), expected)


@pytest.mark.parametrize("depth", [127, 128, 129, 130, 255, 256, 257])
def test_fill_around_the_channel_chunk(depth):
    """129 frames crashed ingest: the chunk of one frame came back from OpenCV without its channel axis."""
    rng = np.random.default_rng(depth)
    volume = rng.integers(0, 256, (depth, 30, 25), dtype=np.uint8)
    outline = np.zeros_like(volume)
    outline[:, 10, 3:20] = 255
    np.testing.assert_array_equal(fill_outline(volume.copy(), outline), fill_frame_by_frame(volume, outline))


@settings(max_examples=25, deadline=None)
@given(depth=st.integers(2, 300), height=st.integers(24, 90), width=st.integers(24, 90), data=st.data())
def test_crop_frames_at_every_depth_and_outline_position(depth, height, width, data):
    x0 = data.draw(st.integers(-4, width - 8), label="x0")
    y0 = data.draw(st.integers(-4, height - 8), label="y0")
    x1 = data.draw(st.integers(x0 + 6, width + 4), label="x1")
    y1 = data.draw(st.integers(y0 + 6, height + 4), label="y1")
    drawn = np.zeros((height, width), np.uint8)
    cv2.rectangle(drawn, (x0, y0), (x1, y1), 255, 1)
    ys, xs = np.nonzero(drawn)  # the part of the outline inside the frame
    assume(len(ys) >= CropOptions().min_outline_px)  # less is "no outline", tested elsewhere
    frames = stack_frames(depth=depth, size=(height, width), box=None)
    for frame in frames:
        cv2.rectangle(frame, (x0, y0), (x1, y1), ORANGE_BGR, 1)
    stack = crop_frames(iter(frames), "s.mp4")
    roi = (max(xs.min() - 3, 0), max(ys.min() - 3, 0), min(xs.max() + 4, width), min(ys.max() + 4, height))
    assert stack.roi == roi and stack.num_frames == stack.frames_with_outline == depth
    assert stack.volume.shape == (depth, roi[3] - roi[1], roi[2] - roi[0]) == (depth, *stack.mask.shape)


def test_129_frame_mp4_is_read(tmp_path):
    stack = read_stack(write_stack(tmp_path / "deep.mp4", depth=129, box=BOX))
    assert stack.roi == ROI and stack.volume.shape[0] == stack.num_frames == stack.frames_with_outline == 129


def test_fill_covers_deep_stacks_in_parts():
    volume = np.full((300, 24, 24), 50, np.uint8)
    outline = np.zeros_like(volume)
    outline[:, 12, 4:20] = 255
    volume[outline > 0] = 250
    filled = fill_outline(volume, outline)
    assert (filled == 50).all()
