"""What the microscope and the lab add to a synthetic stack, the same for both classes.

Tissue background, uneven brightness (vignetting, a gradient across the frame, loss of signal with
depth, slices out of the tissue at either end), motion jitter between slices, black masks the lab
drew over part of a run of slices, whole black slices, and the orange outline.
"""

from __future__ import annotations

import cv2
import numpy as np


def tissue(rng: np.random.Generator, shape: tuple[int, int, int], level: float, texture: float) -> np.ndarray:
    """Dark tissue background ``(D, H, W)``: a smooth random texture that drifts slowly with depth."""
    d, h, w = shape
    coarse = rng.standard_normal((d // 4 + 2, h // 10 + 2, w // 10 + 2)).astype(np.float32)
    zpos = np.linspace(0, coarse.shape[0] - 1, d)
    z0 = np.minimum(zpos.astype(int), coarse.shape[0] - 2)
    frac = (zpos - z0)[:, None, None].astype(np.float32)
    coarse = coarse[z0] * (1 - frac) + coarse[z0 + 1] * frac
    vol = np.empty((d, h, w), np.float32)
    for i, sl in enumerate(coarse):
        vol[i] = cv2.resize(sl, (w, h), interpolation=cv2.INTER_CUBIC)
    return level + texture * vol


def illumination(rng: np.random.Generator, vol: np.ndarray, vignette: float, gradient: float,
                 attenuation: float, blank_ends: float) -> None:
    """Scale the volume in place by an uneven brightness field.

    ``vignette`` darkens the corners (fraction lost at the farthest corner), ``gradient`` tilts
    brightness across the frame in a random direction, ``attenuation`` dims deeper slices (fraction
    lost at the last slice), and ``blank_ends`` (a fraction of the depth, split at random between
    both ends) fades slices that lie outside the tissue to almost nothing.
    """
    d, h, w = vol.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = h * rng.uniform(0.3, 0.7), w * rng.uniform(0.3, 0.7)
    r2 = ((yy - cy) ** 2 + (xx - cx) ** 2) / max(((h / 2) ** 2 + (w / 2) ** 2) * 1.6, 1.0)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = ((yy / h - 0.5) * np.sin(angle) + (xx / w - 0.5) * np.cos(angle))
    plane = np.clip(1.0 - vignette * r2 + gradient * ramp, 0.05, None)
    depth_gain = 1.0 - attenuation * np.linspace(0.0, 1.0, d, dtype=np.float32)
    n_blank = int(round(blank_ends * d))
    head = int(rng.integers(0, n_blank + 1))
    tail = n_blank - head
    depth_gain[:head] *= np.linspace(0.05, 0.6, head, dtype=np.float32)
    depth_gain[d - tail:] *= np.linspace(0.6, 0.05, tail, dtype=np.float32)
    vol *= plane[None] * depth_gain[:, None, None]


def jitter(rng: np.random.Generator, vol: np.ndarray, amount: float) -> None:
    """Shift each slice by a random walk of ``amount`` px per slice (bounded to ±3 ``amount``),
    as breathing and heartbeat move the brain; now and then a sudden jump of a few pixels."""
    steps = rng.normal(0, amount, (vol.shape[0], 2))
    jumps = rng.random(vol.shape[0]) < 0.02
    steps[jumps] += rng.normal(0, 3 * amount + 1.0, (int(jumps.sum()), 2))
    walk = np.clip(np.cumsum(steps, axis=0), -3 * amount - 2, 3 * amount + 2)
    for sl, (dy, dx) in zip(vol, walk):
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        cv2.warpAffine(sl, m, (sl.shape[1], sl.shape[0]), dst=sl, borderMode=cv2.BORDER_REFLECT)


def blackout(rng: np.random.Generator, frames: np.ndarray) -> None:
    """Black masks the lab drew over a run of slices (a rectangle covering part of the frame)."""
    d, h, w = frames.shape
    run = max(1, int(d * rng.uniform(0.1, 0.4)))
    start = rng.integers(0, d - run + 1)
    y0, x0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
    y1, x1 = y0 + int(h * rng.uniform(0.3, 0.6)), x0 + int(w * rng.uniform(0.3, 0.6))
    frames[start:start + run, y0:y1, x0:x1] = 0


def black_slices(rng: np.random.Generator, frames: np.ndarray, count: int) -> None:
    """Set ``count`` whole slices to black: a run at one end of the stack, or scattered slices."""
    d = len(frames)
    count = min(count, d - 1)
    if count <= 0:
        return
    if rng.random() < 0.5:
        idx = np.arange(count) if rng.random() < 0.5 else np.arange(d - count, d)
    else:
        idx = rng.choice(d, count, replace=False)
    frames[idx] = 0


def outline_mask(pts: np.ndarray, frame_hw: tuple[int, int], margin: float, thickness: int) -> np.ndarray:
    """Boolean mask of the outline drawn around a centreline at distance ``margin``."""
    band = np.zeros(frame_hw, np.uint8)
    cv2.polylines(band, [np.rint(pts[:, ::-1]).astype(np.int32)], False, 255, thickness=int(2 * margin) + 1)
    contours, _ = cv2.findContours(band, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    line = np.zeros(frame_hw, np.uint8)
    cv2.drawContours(line, contours, -1, 255, thickness=thickness)
    return line > 0
