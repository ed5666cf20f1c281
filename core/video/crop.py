"""Turn one stack file into the region of interest: find the orange outline, crop, keep one channel.

The lab draws the target vessel segment's outline in orange on every frame. The winners of the
Clog Loss competition located it with ``cv2.inRange`` on BGR frames, range (9, 13, 104)–(98, 143,
255), and took the union bounding box over frames; we do the same, made robust to H.264 and
streaming:

* **One decode pass, bounded memory.** Decoding is the cost, so each frame is decoded once. While
  the union box grows, only a window around it (the box plus ``slack`` pixels) is kept per frame,
  already reduced to one channel. If the final box (plus ``margin``) does not fit in some frame's
  window (the outline moved far late in the stack, or no outline was seen for a long time at the
  start), the file is decoded a second time with the final box known. Memory never holds more
  than one full frame plus the windows, whatever the frame size or count.
* **Robust outline.** ``yuv420p`` stores colour at half resolution, so the 1–2 px outline bleeds
  into its neighbours and compression leaves stray orange-ish specks. Connected components smaller
  than ``min_component_px`` are ignored, and a frame needs ``min_outline_px`` outline pixels to
  count; frames without an outline are tolerated, a stack without any is an error.
* **Luma as the plasma channel.** Plasma (the lumen) is bright in a grey two-photon image, so every
  channel carries it; luma (``cv2.COLOR_BGR2GRAY``, BT.601 — the encoder's own Y plane) is the only
  one stored at full resolution, so it carries no chroma halo around the outline. The red channel
  would carry the orange line at ~255 plus a halo, the blue channel a dark halo.
* **No outline in the crop.** The outline's pixels (in any frame, dilated by one pixel) are in-painted with the
  mean of the non-outline pixels in a ``fill_px``-wide neighbourhood (normalised convolution):
  masking to 0 would leave dark lines a network could mistake for red blood cells, bright lines
  would look like lumen, and ``cv2.inpaint`` costs more for the same thin lines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.video.mp4 import DecodeError, FrameReader

log = logging.getLogger(__name__)

ORANGE_LO = np.array([9, 13, 104], dtype=np.uint8)
ORANGE_HI = np.array([98, 143, 255], dtype=np.uint8)

Box = tuple[int, int, int, int]


class StackError(ValueError):
    """A stack that cannot become a volume; the message names the file and the problem."""


@dataclass(frozen=True)
class CropOptions:
    """How to find and crop the outline; the defaults suit the competition files.

    ``margin`` pixels are added around the union box (clipped to the frame). Components under
    ``min_component_px`` (6) pixels are ignored: yuv420p codes colour per 2x2 block, so a stray
    orange chroma block covers about 4 pixels, while outline pieces are long. ``min_frames``
    rejects stacks too short to show flow (a single depth slice cannot tell flicker from a
    plug). ``max_frame_pixels`` and ``max_volume_bytes`` reject inputs that would not fit the
    memory bound.
    """

    margin: int = 3
    min_component_px: int = 6
    min_outline_px: int = 12
    fill_px: int = 7
    slack: int = 24
    min_frames: int = 2
    max_frame_pixels: int = 50_000_000
    max_volume_bytes: int = 1 << 30
    threads: int = 1


@dataclass(frozen=True)
class CroppedStack:
    """The region of interest of one stack.

    ``volume`` is ``uint8 (D, H, W)`` luma; ``mask`` is ``uint8 (H, W)``, 1 on and inside the
    outline; ``roi`` is ``(x0, y0, x1, y1)`` in frame pixels (end exclusive); ``frame_size`` is
    ``(width, height)``; ``frames_with_outline`` counts the frames where the outline was found.
    """

    volume: np.ndarray
    mask: np.ndarray
    roi: Box
    frame_size: tuple[int, int]
    num_frames: int
    frames_with_outline: int

    def meta(self) -> dict:
        """Plain JSON-able metadata for the volume store."""
        return {"roi": list(self.roi), "frame_size": list(self.frame_size),
                "num_frames": self.num_frames, "frames_with_outline": self.frames_with_outline}


def outline_box(frame: np.ndarray, options: CropOptions = CropOptions(), known: Box | None = None
                ) -> tuple[Box | None, np.ndarray]:
    """Find the orange outline in one BGR frame.

    Returns the bounding box ``(x0, y0, x1, y1)`` of the outline's connected components of at
    least ``min_component_px`` pixels (``None`` if they hold fewer than ``min_outline_px``
    pixels) and the raw ``inRange`` mask of the frame. ``known`` is the union box so far: when
    every in-range pixel lies inside it, specks cannot widen the union, so the pixel count alone
    decides and ``known`` itself is returned (that is most frames of a stack, and it skips the
    bounding-box and connected-component passes).
    """
    mask = cv2.inRange(frame, ORANGE_LO, ORANGE_HI)
    if known is not None:
        inside = cv2.countNonZero(mask[known[1]:known[3], known[0]:known[2]])
        if inside == cv2.countNonZero(mask):
            return (known if inside >= options.min_outline_px else None), mask
    x, y, w, h = cv2.boundingRect(mask)
    if w * h == 0:
        return None, mask
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask[y:y + h, x:x + w], connectivity=8)
    stats = stats[1:]
    stats = stats[stats[:, cv2.CC_STAT_AREA] >= options.min_component_px]
    if stats[:, cv2.CC_STAT_AREA].sum() < options.min_outline_px:
        return None, mask
    x0, y0 = stats[:, cv2.CC_STAT_LEFT].min(), stats[:, cv2.CC_STAT_TOP].min()
    x1 = (stats[:, cv2.CC_STAT_LEFT] + stats[:, cv2.CC_STAT_WIDTH]).max()
    y1 = (stats[:, cv2.CC_STAT_TOP] + stats[:, cv2.CC_STAT_HEIGHT]).max()
    return (int(x + x0), int(y + y0), int(x + x1), int(y + y1)), mask


def _union(a: Box | None, b: Box) -> Box:
    return b if a is None else (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _expand(box: Box, pad: int, width: int, height: int) -> Box:
    return max(box[0] - pad, 0), max(box[1] - pad, 0), min(box[2] + pad, width), min(box[3] + pad, height)


def _contains(outer: Box, inner: Box) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and outer[2] >= inner[2] and outer[3] >= inner[3]


def _grey(frame: np.ndarray, box: Box) -> np.ndarray:
    return cv2.cvtColor(frame[box[1]:box[3], box[0]:box[2]], cv2.COLOR_BGR2GRAY)


@dataclass
class _Window:
    """One frame reduced to the window kept around the running union box."""

    box: Box
    grey: np.ndarray
    outline: np.ndarray


def _first_pass(frames: Iterable[np.ndarray], name: str, options: CropOptions
                ) -> tuple[Box | None, list[_Window | None], tuple[int, int], int]:
    """Decode once: union box, and per frame the window around the box seen so far."""
    union: Box | None = None
    windows: list[_Window | None] = []
    kept_bytes = 0
    shape = None
    found = 0
    wbox: Box | None = None
    wbox_of: Box | None = None  # the union ``wbox`` was expanded from (most frames leave it unchanged)
    for index, frame in enumerate(frames):
        if shape is None:
            shape = frame.shape
            if shape[0] * shape[1] > options.max_frame_pixels:
                raise StackError(f"{name}: frames of {shape[1]}x{shape[0]} pixels exceed the limit of "
                                 f"{options.max_frame_pixels} pixels")
        elif frame.shape != shape:
            raise StackError(f"{name}: frame {index} is {frame.shape[1]}x{frame.shape[0]}, "
                             f"frame 0 is {shape[1]}x{shape[0]}: frames of changing size")
        box, mask = outline_box(frame, options, union)
        if box is not None:
            union = union if box is union else _union(union, box)  # outline_box returns ``union`` if unwidened
            found += 1
        window = None
        if union is not None or kept_bytes + 2 * mask.size <= options.max_volume_bytes:
            if wbox is None or union is not wbox_of:
                wbox = _expand(union, options.slack, shape[1], shape[0]) if union else (0, 0, shape[1], shape[0])
                wbox_of = union
            window = _Window(wbox, _grey(frame, wbox), mask[wbox[1]:wbox[3], wbox[0]:wbox[2]].copy())
            kept_bytes += 2 * window.grey.size
        if kept_bytes > options.max_volume_bytes:
            windows = [None] * len(windows)
            kept_bytes = 0
            window = None
        windows.append(window)
    if shape is None:
        raise StackError(f"{name}: contains zero frames")
    return union, windows, (shape[1], shape[0]), found


def _crop_windows(windows: list[_Window | None], roi: Box) -> tuple[np.ndarray, np.ndarray] | None:
    """Cut the final ROI out of the kept windows; ``None`` if some window does not contain it."""
    if not all(w is not None and _contains(w.box, roi) for w in windows):
        return None
    height, width = roi[3] - roi[1], roi[2] - roi[0]
    volume = np.empty((len(windows), height, width), np.uint8)
    outline = np.empty_like(volume)
    for i, w in enumerate(windows):
        y, x = roi[1] - w.box[1], roi[0] - w.box[0]
        volume[i] = w.grey[y:y + height, x:x + width]
        outline[i] = w.outline[y:y + height, x:x + width]
    return volume, outline


def _second_pass(frames: Iterator[np.ndarray], roi: Box, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode again with the final ROI known, keeping only the crop of each frame."""
    volume = np.empty((depth, roi[3] - roi[1], roi[2] - roi[0]), np.uint8)
    outline = np.empty_like(volume)
    for i, frame in enumerate(frames):
        if i < depth:
            volume[i] = _grey(frame, roi)
            outline[i] = cv2.inRange(frame[roi[1]:roi[3], roi[0]:roi[2]], ORANGE_LO, ORANGE_HI)
    return volume, outline


_CROSS = np.ones((3, 3), np.uint8)
_MAX_CHANNELS = 128  # channels per image that OpenCV 5 accepts (4.x: 512)
_CLOSE = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))


def fill_outline(volume: np.ndarray, outline: np.ndarray, fill_px: int = 7) -> np.ndarray:
    """Replace the outline's pixels by the mean of their outline-free neighbours, in place.

    ``volume`` and ``outline`` are ``(D, H, W)``. The pixels filled are those of the outline in
    any frame, dilated by one pixel (one mask for all frames, so each frame costs one box
    filter); the mean is taken over a ``fill_px`` square in-plane, never across depth, so no
    flicker is smeared into the outline's place. A pixel with no outline-free neighbour becomes 0.
    """
    covered = cv2.dilate(outline.max(axis=0), _CROSS) > 0
    if not covered.any():
        return volume
    valid = (~covered).astype(np.uint16)
    size = (fill_px, fill_px)
    weight = cv2.boxFilter(valid, -1, size, normalize=False, borderType=cv2.BORDER_REPLICATE)[covered]
    for start in range(0, len(volume), _MAX_CHANNELS):
        part = volume[start:start + _MAX_CHANNELS]
        masked = np.multiply(part.transpose(1, 2, 0), valid[..., None], order="C")  # frames as channels
        # reshape: OpenCV returns a one-channel (H, W, 1) input as (H, W), e.g. the last frame of 129
        total = cv2.boxFilter(masked, -1, size, normalize=False, borderType=cv2.BORDER_REPLICATE)
        total = total.reshape(masked.shape)[covered]
        mean = (total + weight[:, None] // 2) // np.maximum(weight, 1)[:, None]
        part[:, covered] = np.where(weight[:, None] > 0, mean, 0).T
    return volume


def filled_mask(outline: np.ndarray, roi: Box, frame_size: tuple[int, int]) -> np.ndarray:
    """The region on and inside the outline, ``uint8 (H, W)`` of 0/1, from the per-frame outlines.

    Gaps of a few pixels (compression, frame edges) are closed first. Where the ROI touches the
    frame edge the outline runs off the frame, and the frame edge closes it.
    """
    width, height = frame_size
    pad = 3
    canvas = np.pad((outline.max(axis=0) > 0).astype(np.uint8), pad)
    for touches, edge in ((roi[1] == 0, np.s_[:pad, :]), (roi[3] == height, np.s_[-pad:, :]),
                          (roi[0] == 0, np.s_[:, :pad]), (roi[2] == width, np.s_[:, -pad:])):
        if touches:
            canvas[edge] = 1
    canvas = cv2.morphologyEx(canvas, cv2.MORPH_CLOSE, _CLOSE, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    outside = np.zeros((canvas.shape[0] + 2, canvas.shape[1] + 2), np.uint8)
    outside[1:-1, 1:-1] = canvas
    cv2.floodFill(outside, None, (0, 0), 2)
    return (outside[1 + pad:-1 - pad, 1 + pad:-1 - pad] != 2).astype(np.uint8)


def crop_frames(frames: Iterable[np.ndarray], name: str, options: CropOptions = CropOptions(),
                reread: Callable[[], Iterator[np.ndarray]] | None = None) -> CroppedStack:
    """Crop the ROI from a stream of BGR frames (see the module docstring for the method).

    ``reread`` is a zero-argument way to get the frames again, needed only when the kept windows
    do not cover the final ROI; without it such a stack is an error. Raises :class:`StackError`.
    """
    union, windows, frame_size, found = _first_pass(frames, name, options)
    depth = len(windows)
    if depth < options.min_frames:
        raise StackError(f"{name}: only {depth} frame(s); a stack needs at least {options.min_frames} "
                         "depth slices to show flow")
    if union is None:
        raise StackError(f"{name}: no orange outline found in any of its {depth} frames")
    roi = _expand(union, options.margin, *frame_size)
    volume_bytes = depth * (roi[2] - roi[0]) * (roi[3] - roi[1])
    if volume_bytes > options.max_volume_bytes:
        raise StackError(f"{name}: ROI {roi} over {depth} frames needs {volume_bytes} bytes, over the "
                         f"limit of {options.max_volume_bytes}")
    cropped = _crop_windows(windows, roi)
    del windows
    if cropped is None:
        if reread is None:
            raise StackError(f"{name}: the outline moved outside the kept window; frames cannot be re-read")
        log.debug("%s: second decode pass for ROI %s", name, roi)
        cropped = _second_pass(reread(), roi, depth)
    volume, outline = cropped
    return CroppedStack(volume=fill_outline(volume, outline, options.fill_px), mask=filled_mask(outline, roi, frame_size),
                 roi=roi, frame_size=frame_size, num_frames=depth, frames_with_outline=found)


def read_stack(path: str | Path, options: CropOptions = CropOptions()) -> CroppedStack:
    """Decode an mp4 stack and crop its ROI: ``uint8 (D, H, W)`` plus outline mask and metadata.

    Raises :class:`StackError` naming the file for anything that is not a usable stack: missing,
    unreadable, truncated or non-mp4 files, zero or one frame, frames of changing size, frames
    over ``options.max_frame_pixels``, no orange outline.
    """
    path = Path(path)

    def frames() -> Iterator[np.ndarray]:
        with FrameReader(path, threads=options.threads) as reader:
            yield from reader

    try:
        with FrameReader(path, threads=options.threads) as reader:
            info = reader.info
            if info.width * info.height > options.max_frame_pixels:
                raise StackError(f"{path}: frames of {info.width}x{info.height} pixels exceed the limit of "
                                 f"{options.max_frame_pixels} pixels")
            if info.frame_count == 1 and options.min_frames > 1:
                raise StackError(f"{path}: only 1 frame; a stack needs at least {options.min_frames} depth "
                                 "slices to show flow")
            return crop_frames(reader, str(path), options, reread=frames)
    except DecodeError as err:
        raise StackError(str(err)) from err
