"""Encode image stacks as H.264 mp4 files that every browser and OpenCV can play, and decode them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np


class DecodeError(ValueError):
    """A video file that cannot be decoded; the message names the file and the problem."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video before any frame is decoded."""

    width: int
    height: int
    frame_count: int


def _why_unreadable(path: Path) -> str:
    """Say why FFmpeg could not open ``path``, from the file's first bytes (cheap, no decode)."""
    with path.open("rb") as f:
        head = f.read(1 << 20)
    if not head:
        return "empty file"
    if head[4:8] != b"ftyp":
        return "not an mp4 file (no ftyp box at the start)"
    sizes = head.find(b"stsz")
    no_track = b"moov" in head and b"trak" not in head
    if no_track or (sizes >= 0 and int.from_bytes(head[sizes + 12:sizes + 16], "big") == 0):
        return "contains zero frames"
    return "not a readable video (corrupt or truncated mp4)"


class FrameReader:
    """Decode an mp4 frame by frame (OpenCV's FFmpeg backend, in-process, no pipe to a subprocess).

    Use as a context manager; iterating yields ``uint8`` BGR frames ``(H, W, 3)``. A file that
    yields fewer frames than its container announces raises :class:`DecodeError` at the end, so a
    truncated file is never mistaken for a short stack.

    Parameters
    ----------
    path
        The video file.
    threads
        FFmpeg decoding threads. 1 is fastest overall when several worker processes share the
        cores (each worker decodes one file); 0 lets FFmpeg pick (best for a single file).
    """

    def __init__(self, path: str | Path, *, threads: int = 1) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DecodeError(f"{self.path}: no such file")
        self._cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, threads])
        if not self._cap.isOpened():
            raise DecodeError(f"{self.path}: {_why_unreadable(self.path)}")
        self.info = VideoInfo(width=int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                              height=int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                              frame_count=max(int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0))

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the decoder."""
        self._cap.release()

    def __iter__(self) -> Iterator[np.ndarray]:
        decoded = 0
        while True:
            ok, frame = self._cap.read()
            if not ok:
                break
            decoded += 1
            yield frame
        if decoded < self.info.frame_count:
            raise DecodeError(f"{self.path}: truncated or corrupt: decoded {decoded} of "
                              f"{self.info.frame_count} frames")


def iter_frames(path: str | Path, *, threads: int = 1) -> Iterator[np.ndarray]:
    """Yield every frame of ``path`` as a ``uint8`` BGR array ``(H, W, 3)``, one at a time.

    Memory stays at one frame whatever the file's length. Raises :class:`DecodeError` (naming the
    file) for a missing, unreadable or truncated file.
    """
    with FrameReader(path, threads=threads) as reader:
        yield from reader


def write_mp4(path: str | Path, frames: np.ndarray, *, fps: float = 10.0, quality: float = 8.0,
              preset: str = "medium") -> None:
    """Write ``frames`` as an H.264 (libx264, yuv420p) mp4.

    Parameters
    ----------
    path
        Output file; its parent directory must exist.
    frames
        ``uint8`` array ``(D, H, W, 3)`` in RGB order, or ``(D, H, W)`` grey. Odd heights or
        widths are padded by one black row/column, since yuv420p needs even sizes.
    fps, quality
        Frame rate of the file and imageio-ffmpeg's quality (0–10, 10 best).
    preset
        x264 speed preset; ``"ultrafast"`` encodes several times faster, in larger files.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim not in (3, 4) or len(frames) == 0:
        raise ValueError(f"{path}: expected a non-empty uint8 (D, H, W[, 3]) array, got {frames.dtype} {frames.shape}")
    if frames.ndim == 3:
        frames = np.repeat(frames[..., None], 3, axis=-1)
    depth, height, width, _ = frames.shape
    pad = ((0, 0), (0, height % 2), (0, width % 2), (0, 0))
    if any(p[1] for p in pad):
        frames = np.pad(frames, pad)
    writer = imageio_ffmpeg.write_frames(
        str(path), (frames.shape[2], frames.shape[1]), fps=fps, codec="libx264",
        pix_fmt_out="yuv420p", quality=quality, macro_block_size=1,
        output_params=["-preset", preset, "-movflags", "+faststart"],
    )
    writer.send(None)
    try:
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
    finally:
        writer.close()
