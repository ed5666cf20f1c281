"""What a reviewer watches: the ROI as an upscaled, browser-playable H.264 loop with the orange
outline as volunteers know it, and the full frame with the ROI box for context — prepared ahead of
time.

The stored ROI is the model's input, with the outline in-painted away (see :mod:`core.video.crop`); the
outline is drawn back for people from the stored mask (the region on and inside the outline), as a
transparent image laid over the video at the video's size, so the viewer can toggle it without a
second video.

A stack is prepared once (read from the volume store, upscaled, encoded) and cached; the next
stack in a reviewer's queue is prepared in a background thread while the current one is watched,
so submitting an answer never waits for an encoder.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.video.mp4 import DecodeError, iter_frames, write_mp4

log = logging.getLogger(__name__)

BOX_COLOUR = (0, 255, 255)  # cyan in RGB: stands out next to the orange outline
OUTLINE_COLOUR = (255, 140, 0)  # orange in RGB, as the lab draws it
FPS = 10.0  # slices per second of the review videos


@dataclass(frozen=True)
class StackRef:
    """Enough about a stack to prepare its media (all from the database's vessel row)."""

    filename: str
    key: str
    roi: tuple[int, int, int, int] | None = None
    """(x, y, width, height) of the ROI in full-frame pixels."""
    video_dirs: tuple[str, ...] = ()
    """Folders that may hold the original mp4 (for the context frame)."""


@dataclass(frozen=True)
class ReviewMedia:
    """A prepared stack: ``video`` (mp4 bytes), the native ``volume`` (D, H, W), its display
    ``scale``, the RGB ``context`` frame (None when the original video cannot be found;
    ``context_note`` then says why), the stored outline ``mask`` (H, W) and its ``outline`` overlay
    (RGBA at the video's size); both None when the store holds no mask for the stack."""

    filename: str
    video: bytes
    volume: np.ndarray
    scale: int
    context: np.ndarray | None
    context_note: str = ""
    mask: np.ndarray | None = None
    outline: np.ndarray | None = None

    @property
    def depth(self) -> int:
        """Number of slices."""
        return int(self.volume.shape[0])

    @property
    def video_size(self) -> tuple[int, int]:
        """(width, height) of the encoded video (yuv420p pads odd sizes by one pixel)."""
        return video_size(self.volume.shape[1], self.volume.shape[2], self.scale)


def video_size(height: int, width: int, scale: int) -> tuple[int, int]:
    """(width, height) of an ROI encoded at ``scale``: even sizes, as ``core.video.mp4.write_mp4`` pads them."""
    w, h = width * scale, height * scale
    return w + w % 2, h + h % 2


def outline_overlay(mask: np.ndarray, scale: int, *, thickness: int = 1) -> np.ndarray:
    """The border of a filled ROI mask as an orange line on a transparent RGBA image at video size.

    ``mask`` is ``(H, W)``, non-zero on and inside the outline (what ingest stores). The line runs
    just inside the mask's edge, ``thickness`` video pixels wide; the browser enlarges it with the
    video, to about the lab's 1–2 px outline seen at the same zoom.
    """
    width, height = video_size(mask.shape[0], mask.shape[1], scale)
    big = np.zeros((height, width), np.uint8)
    big[:mask.shape[0] * scale, :mask.shape[1] * scale] = upscale((mask > 0).astype(np.uint8) * 255, scale) > 127
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * thickness + 1, 2 * thickness + 1))
    line = (big > 0) & (cv2.erode(big, kernel) == 0)  # the crop's own edges are not the outline
    overlay = np.zeros((height, width, 4), np.uint8)
    overlay[line] = (*OUTLINE_COLOUR, 255)
    return overlay


def display_scale(height: int, width: int, *, target: int = 160, most: int = 8) -> int:
    """Integer zoom that brings the longer side of an ROI close to ``target`` pixels (1..``most``).

    The browser stretches the video to the page's width; encoding small keeps the file, its
    encoding and its decoding cheap (the wait between two stacks), while the integer bicubic step
    keeps tiny ROIs from being blurred by the browser's bilinear scaling alone.

    Examples
    --------
    >>> display_scale(67, 68), display_scale(30, 40), display_scale(450, 300)
    (2, 4, 1)
    """
    return int(np.clip(round(target / max(height, width, 1)), 1, most))


def upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """Enlarge a 2-D image, or every slice of a (D, H, W) volume, by an integer factor (bicubic)."""
    if scale == 1:
        return image
    if image.ndim == 3:
        return np.stack([upscale(frame, scale) for frame in image])
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)


def encode_loop(volume: np.ndarray, *, scale: int, fps: float = FPS) -> bytes:
    """The volume upscaled and encoded as H.264 mp4 bytes (plays in every browser).

    x264's ``ultrafast`` preset: about 4x faster than ``medium`` for files about 1.4x larger,
    the right trade for a video made on demand and watched once. The browser scales it further.
    """
    with tempfile.TemporaryDirectory(prefix="stalltriage-") as tmp:
        path = Path(tmp) / "roi.mp4"
        write_mp4(path, upscale(volume, scale), fps=fps, preset="ultrafast")
        return path.read_bytes()


def find_video(filename: str, dirs: Iterable[str | Path]) -> Path | None:
    """The first ``dir/filename`` that exists; None if none does.

    ``filename`` must be a bare file name (it comes from the database, but a name with a folder
    part or ``..`` is never turned into a path).
    """
    if not filename or Path(filename).name != filename or filename in (".", ".."):
        return None
    for folder in dirs:
        candidate = Path(folder) / filename
        if candidate.is_file():
            return candidate
    return None


def context_frame(path: Path, roi: tuple[int, int, int, int] | None) -> np.ndarray:
    """The first frame of the original video as RGB, with the ROI box drawn on it."""
    frame = next(iter(iter_frames(path)), None)
    if frame is None:
        raise DecodeError(f"{path}: no frames")
    frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    if roi is not None:
        x, y, width, height = roi
        thickness = max(1, round(max(frame.shape[:2]) / 300))
        cv2.rectangle(frame, (x - 2, y - 2), (x + width + 1, y + height + 1), BOX_COLOUR, thickness)
    return frame


def encode_frames(frames: np.ndarray, *, scale: int, fps: float = FPS) -> bytes:
    """RGB frames ``(D, H, W, 3)`` upscaled and encoded like :func:`encode_loop` (the model's view)."""
    with tempfile.TemporaryDirectory(prefix="stalltriage-") as tmp:
        path = Path(tmp) / "frames.mp4"
        big = [cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC) for frame in frames]
        write_mp4(path, np.stack(big), fps=fps, preset="ultrafast")
        return path.read_bytes()


def review_media(ref: StackRef, load_stack: Callable[[str], tuple[np.ndarray, np.ndarray | None]], *,
                 target: int = 160, fps: float = FPS) -> ReviewMedia:
    """Read one stack's ROI volume and mask, encode its review video, draw its outline and find its
    context frame."""
    volume, mask = load_stack(ref.key)
    volume = np.asarray(volume)
    if volume.dtype != np.uint8 or volume.ndim != 3 or volume.shape[0] == 0:
        raise ValueError(f"{ref.filename}: stored volume is {volume.dtype} {volume.shape}, expected uint8 (D, H, W)")
    scale = display_scale(volume.shape[1], volume.shape[2], target=target)
    video = encode_loop(volume, scale=scale, fps=fps)
    if mask is not None and mask.shape != volume.shape[1:]:
        mask = None
    outline = None if mask is None else outline_overlay(mask, scale)
    context, note = None, ""
    path = find_video(ref.filename, ref.video_dirs)
    if path is None:
        note = "original video not found (start the app with --video-dir to show the full frame)"
    else:
        try:
            context = context_frame(path, ref.roi)
        except DecodeError as error:
            note = str(error)
    return ReviewMedia(filename=ref.filename, video=video, volume=volume, scale=scale, context=context,
                       context_note=note, mask=mask, outline=outline)


class MediaCache:
    """Prepared media by filename, least recently used dropped first, filled by background threads.

    ``get`` returns a stack's media (waiting for a preparation already under way, or preparing
    it); ``prefetch`` starts preparing a stack without waiting. Thread-safe: one cache serves every
    reviewer of an app process. A failed preparation is not cached (``get`` re-raises its error).

    Parameters
    ----------
    prepare_media
        ``StackRef -> ReviewMedia`` (e.g. :func:`review_media` bound to a volume store).
    capacity
        Stacks kept.
    workers
        Background threads.
    """

    def __init__(self, prepare_media: Callable[[StackRef], ReviewMedia], *, capacity: int = 64, workers: int = 2) -> None:
        self._prepare = prepare_media
        self._capacity = capacity
        self._entries: OrderedDict[str, Future[ReviewMedia]] = OrderedDict()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="media")

    def _future(self, ref: StackRef) -> Future[ReviewMedia]:
        with self._lock:
            future = self._entries.get(ref.filename)
            if future is None:
                future = self._pool.submit(self._prepare, ref)
                self._entries[ref.filename] = future
                while len(self._entries) > self._capacity:
                    self._entries.popitem(last=False)
            self._entries.move_to_end(ref.filename)
            return future

    def prefetch(self, refs: StackRef | Sequence[StackRef]) -> None:
        """Start preparing stacks in the background."""
        for ref in [refs] if isinstance(refs, StackRef) else refs:
            self._future(ref)

    def get(self, ref: StackRef, *, timeout: float | None = 120) -> ReviewMedia:
        """The prepared media of ``ref`` (prepared now if no one asked before)."""
        future = self._future(ref)
        try:
            return future.result(timeout=timeout)
        except Exception:
            with self._lock:
                if self._entries.get(ref.filename) is future:
                    del self._entries[ref.filename]
            raise

    def ready(self, ref: StackRef) -> bool:
        """True when ``ref``'s media is prepared (a ``get`` would not wait)."""
        with self._lock:
            future = self._entries.get(ref.filename)
        return future is not None and future.done() and future.exception() is None

    def close(self) -> None:
        """Stop the background threads (pending preparations are cancelled)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
