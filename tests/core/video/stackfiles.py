"""Small real mp4 stacks for the ingest tests: noisy tissue, a bright vessel, an orange outline."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

from core.video.mp4 import write_mp4

ORANGE_RGB = (255, 128, 0)


def stack_frames(*, depth: int = 12, size: tuple[int, int] = (96, 128), box: tuple[int, int, int, int] | None = (30, 20, 90, 70),
                 seed: int = 0, thickness: int = 1) -> np.ndarray:
    """RGB frames ``(D, H, W, 3)``: dark noisy tissue, a bright diagonal vessel, the outline ``box``.

    ``size`` is ``(height, width)``; ``box`` is ``(x0, y0, x1, y1)`` inclusive corners of the
    rectangle drawn in orange (``None``: no outline).
    """
    rng = np.random.default_rng(seed)
    height, width = size
    frames = np.empty((depth, height, width, 3), np.uint8)
    for i in range(depth):
        grey = rng.integers(5, 40, size=(height, width), dtype=np.uint8)
        cv2.line(grey, (0, height // 4), (width - 1, 3 * height // 4), 200, 6)
        frame = np.repeat(grey[..., None], 3, axis=-1)
        if box is not None:
            cv2.rectangle(frame, box[:2], box[2:], ORANGE_RGB, thickness)
        frames[i] = frame
    return frames


def write_stack(path: Path, *, preset: str = "ultrafast", **kwargs) -> Path:
    """Write :func:`stack_frames` (same keyword arguments) as an H.264 mp4 at ``path``."""
    write_mp4(path, stack_frames(**kwargs), preset=preset)
    return path


def ffmpeg(*args: str) -> None:
    """Run the ffmpeg bundled with imageio-ffmpeg quietly; raise if it fails."""
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", *args], check=True)


def write_zero_frames(path: Path, tmp: Path) -> Path:
    """An mp4 container holding no frames (ffmpeg keeps 0 frames of a real stack)."""
    source = write_stack(tmp / "zero-source.mp4", depth=2)
    ffmpeg("-i", str(source), "-frames:v", "0", "-c", "copy", str(path))
    return path


def write_changing_size(path: Path, tmp: Path) -> Path:
    """One H.264 stream whose frames change size half-way (two stacks concatenated, no re-encode)."""
    first = write_stack(tmp / "part1.mp4", depth=4, size=(96, 128))
    second = write_stack(tmp / "part2.mp4", depth=4, size=(64, 80), box=(10, 10, 50, 40))
    listing = tmp / "parts.txt"
    listing.write_text(f"file '{first}'\nfile '{second}'\n")
    ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(path))
    return path
