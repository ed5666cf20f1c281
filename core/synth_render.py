"""Draw one synthetic two-photon stack: depth slices of tissue, vessels, blood cells and an outline.

Frames are depth slices (z), not time. The vessel lumen (dye-filled plasma) is bright, red blood
cells are dark shadows inside it. What tells a stall from flow is only how the shadows in the
outlined target segment behave along z:

- flowing: each slice shows cells at fresh, uncorrelated places along the segment (flicker);
- slow flow: cells move a little from slice to slice (correlated, yet moving);
- stalled: cells sit still and change smoothly with depth like 3D objects (a plug);
- partial stall: a static plug in part of the segment, flow in the rest.

Everything else (tissue texture, other vessels crossing in and out of focus, brightness, noise,
jitter, blackout masks, the orange outline) is drawn the same way for both classes, so only the
temporal cue carries the label.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import cKDTree

#: Outline colour in RGB. After H.264 (yuv420p) it stays inside the competition's BGR
#: ``cv2.inRange`` range (9, 13, 104)–(98, 143, 255) even where chroma is averaged with grey.
OUTLINE_RGB = (220, 75, 25)

CELL_MODES = ("flow", "slow", "stall", "partial")

# A faint cool tint: blue a few levels above red, the same offset at every brightness so the chroma
# planes stay flat and H.264 adds no chroma ringing; the outline is then the only thing that
# ``cv2.inRange`` finds.
_GREY = np.arange(256)
_COOL_RED = np.clip(_GREY - 6, 0, 255).astype(np.uint8)
_COOL_BLUE = np.clip(_GREY + 6, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class StackSpec:
    """Everything needed to draw one stack; drawing it is deterministic given ``render_seed``.

    Sizes are in pixels and slices; intensities in 8-bit grey levels before noise.
    """

    render_seed: tuple[int, ...]
    depth: int
    frame_hw: tuple[int, int]
    roi_yxhw: tuple[int, int, int, int]
    cell_mode: str
    tissue_level: float
    tissue_texture: float
    lumen_level: float
    shadow_strength: float
    noise_sigma: float
    vessel_radius: float
    coverage: float
    target_visible: float
    n_other_vessels: int
    outline_thickness: int
    jitter_px: float = 0.0
    blackout: bool = False


@dataclass(frozen=True)
class _Tube:
    """A vessel's pixels in one frame: where they are and where they sit along the centreline."""

    ys: np.ndarray
    xs: np.ndarray
    dist: np.ndarray
    s_idx: np.ndarray
    length: int
    radius: float


def _bezier(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray,
            extend: tuple[float, float] = (0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """Points along a quadratic Bézier curve about 0.5 px apart and their arc length.

    ``extend`` continues the curve beyond its end points along their tangents, as a fraction of
    the curve's chord on each side.
    """
    approx = np.linalg.norm(p1 - p0) + np.linalg.norm(p2 - p1)
    t = np.linspace(0.0, 1.0, max(int(approx * 2), 4))[:, None]
    pts = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
    chord = np.linalg.norm(p2 - p0)
    head = [p0 - (p1 - p0) / max(np.linalg.norm(p1 - p0), 1e-6) * chord * f
            for f in np.linspace(extend[0], 0, int(extend[0] * chord * 2), endpoint=False)]
    tail = [p2 + (p2 - p1) / max(np.linalg.norm(p2 - p1), 1e-6) * chord * f
            for f in np.linspace(0, extend[1], int(extend[1] * chord * 2) + 1)[1:]]
    pts = np.concatenate([np.reshape(head, (-1, 2)), pts, np.reshape(tail, (-1, 2))])
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    return pts, arc


def _tube(pts: np.ndarray, arc: np.ndarray, radius: float, frame_hw: tuple[int, int]) -> _Tube:
    """Rasterise the pixels within ``radius`` of a centreline, with their arc position."""
    h, w = frame_hw
    lo = np.clip(np.floor(pts.min(axis=0) - radius - 1), 0, None).astype(int)
    hi = np.minimum(np.ceil(pts.max(axis=0) + radius + 2).astype(int), [h, w])
    yy, xx = np.mgrid[lo[0]:hi[0], lo[1]:hi[1]]
    grid = np.stack([yy.ravel(), xx.ravel()], axis=1).astype(np.float32)
    dist, idx = cKDTree(pts).query(grid, distance_upper_bound=radius + 0.5)
    keep = np.isfinite(dist)
    return _Tube(ys=yy.ravel()[keep], xs=xx.ravel()[keep], dist=dist[keep].astype(np.float32),
                 s_idx=np.rint(arc[idx[keep]]).astype(int), length=int(np.ceil(arc[-1])) + 1,
                 radius=radius)


def _focus(tube: _Tube, depth: int, z_center: np.ndarray, z_half: float) -> np.ndarray:
    """Lumen brightness ``(D, n)``: the tube's cross-section in each depth slice (an ellipsoid)."""
    z = np.arange(depth, dtype=np.float32)[:, None]
    inside = 1.0 - (tube.dist / tube.radius) ** 2 - ((z - z_center[tube.s_idx]) / z_half) ** 2
    return np.sqrt(np.clip(inside, 0.0, 1.0))


def _bumps(positions: np.ndarray, amplitude: np.ndarray, half_len: np.ndarray, length: int) -> np.ndarray:
    """Sum of Gaussian cells along the segment: ``(D, K)`` positions → ``(D, length)`` shadow."""
    s = np.arange(length, dtype=np.float32)[None, None, :]
    g = amplitude[..., None] * np.exp(-(((s - positions[..., None]) / half_len[..., None]) ** 2))
    return np.clip(np.nansum(g, axis=1), 0.0, 1.0)


def _one_inside(rng: np.random.Generator, pos: np.ndarray, segment: tuple[float, float] | None) -> None:
    """Move the first cell of every row of ``pos`` that has none inside ``segment`` into it, in place.

    Both classes get at least one cell in the outlined segment (in every slice when flowing,
    once when stalled), so that an empty segment says nothing about the label.
    """
    if segment is None:
        return
    empty = ~np.any((pos >= segment[0]) & (pos <= segment[1]), axis=-1)
    pos[..., 0] = np.where(empty, rng.uniform(*segment, empty.shape), pos[..., 0])


def _flow_cells(rng: np.random.Generator, depth: int, length: int, cell_len: float, coverage: float,
                speed: float = 0.0, segment: tuple[float, float] | None = None) -> np.ndarray:
    """Shadows of moving cells; ``speed == 0`` means fresh uncorrelated places every slice."""
    if speed == 0.0:
        lam = coverage * length / cell_len
        k = int(lam * 2 + 6)
        pos = rng.uniform(0, length, (depth, k))
        pos[np.arange(k)[None, :] >= rng.poisson(lam, (depth, 1))] = np.nan
        _one_inside(rng, pos, segment)
    else:
        span = length + abs(speed) * depth
        k = max(rng.poisson(coverage * span / cell_len), 1)
        start = rng.uniform(-abs(speed) * depth if speed > 0 else 0, span, k)
        z = np.arange(depth)[:, None]
        pos = start[None, :] + speed * z + rng.normal(0, 0.3, (depth, k))
    amp = np.ones_like(pos)
    return _bumps(pos, amp, np.full_like(pos, cell_len / 2), length)


def _stalled_cells(rng: np.random.Generator, depth: int, length: int, cell_len: float, coverage: float,
                   z_center: np.ndarray, z_half: float, s_range: tuple[float, float],
                   segment: tuple[float, float] | None = None) -> np.ndarray:
    """Shadows of cells that stay put: each a 3D blob whose section grows and shrinks with depth."""
    lo, hi = s_range
    k = max(rng.poisson(coverage * (hi - lo) / cell_len), 1)
    pos = rng.uniform(lo, hi, k)
    _one_inside(rng, pos[None], segment)
    zk = z_center[np.clip(pos.astype(int), 0, length - 1)] + rng.normal(0, 0.2 * z_half, k)
    zr = z_half * rng.uniform(0.8, 1.4, k)
    z = np.arange(depth, dtype=np.float32)[:, None]
    amp = np.sqrt(np.clip(1.0 - ((z - zk) / zr) ** 2, 0.0, 1.0))
    half_len = cell_len / 2 * rng.uniform(0.9, 1.5, k) * (0.5 + 0.5 * amp)
    return _bumps(np.broadcast_to(pos, amp.shape), amp, np.maximum(half_len, 0.5), length)


def _target_cells(rng: np.random.Generator, spec: StackSpec, length: int, z_center: np.ndarray,
                  z_half: float, segment: tuple[float, float]) -> np.ndarray:
    """Cell shadows ``(D, length)`` along the target vessel for the spec's cell mode.

    ``segment`` is the arc range of the outlined part; a partial stall's plug lies inside it.
    """
    cell_len = max(4.0, 1.6 * spec.vessel_radius) * rng.uniform(0.85, 1.2)
    d = spec.depth
    if spec.cell_mode == "flow":
        return _flow_cells(rng, d, length, cell_len, spec.coverage, segment=segment)
    if spec.cell_mode == "slow":
        speed = rng.choice([-1, 1]) * rng.uniform(0.6, 1.5)
        return _flow_cells(rng, d, length, cell_len, spec.coverage, speed)
    if spec.cell_mode == "stall":
        return _stalled_cells(rng, d, length, cell_len, spec.coverage, z_center, z_half, (0, length), segment)
    if spec.cell_mode == "partial":
        part = rng.uniform(0.3, 0.6) * (segment[1] - segment[0])
        lo = rng.uniform(segment[0], segment[1] - part)
        static = _stalled_cells(rng, d, length, cell_len, spec.coverage, z_center, z_half, (lo, lo + part))
        moving = _flow_cells(rng, d, length, cell_len, spec.coverage)
        s = np.arange(length)
        moving[:, (s >= lo - cell_len / 2) & (s <= lo + part + cell_len / 2)] = 0.0
        return np.maximum(static, moving)
    raise ValueError(f"unknown cell mode {spec.cell_mode!r}; expected one of {CELL_MODES}")


def _target_centreline(rng: np.random.Generator, roi: tuple[int, int, int, int],
                       inset: float) -> tuple[np.ndarray, np.ndarray, slice]:
    """A gently curved vessel crossing the ROI box from one side to the opposite one.

    Returns the centreline points (extended beyond the box, since the vessel goes on outside the
    outlined segment), their arc length, and the slice of points that lie inside the segment.
    """
    y0, x0, h, w = roi
    a, b = rng.uniform(0.0, 0.3), rng.uniform(0.7, 1.0)
    if rng.random() < 0.5:
        a, b = b, a
    span_y, span_x = h - 2 * inset, w - 2 * inset
    if rng.random() < 0.5:
        p0 = np.array([y0 + inset + a * span_y, x0 + inset])
        p2 = np.array([y0 + inset + b * span_y, x0 + w - inset])
    else:
        p0 = np.array([y0 + inset, x0 + inset + a * span_x])
        p2 = np.array([y0 + h - inset, x0 + inset + b * span_x])
    lo, hi = np.array([y0 + inset, x0 + inset]), np.array([y0 + h - inset, x0 + w - inset])
    p1 = np.clip((p0 + p2) / 2 + rng.normal(0, 0.2, 2) * [span_y, span_x], lo, hi)
    pts, arc = _bezier(p0, p1, p2, extend=rng.uniform(0.2, 0.6, 2))
    t_inside = np.flatnonzero(np.all((pts >= lo - 0.5) & (pts <= hi + 0.5), axis=1))
    return pts, arc, slice(int(t_inside[0]), int(t_inside[-1]) + 1)


def _draw_vessel(vol: np.ndarray, tube: _Tube, lumen: np.ndarray, shadow: np.ndarray,
                 level: float, strength: float) -> None:
    """Add a vessel's lumen, darkened by its cell shadows, to the volume in place."""
    lateral = 1.0 - 0.3 * (tube.dist / tube.radius) ** 2
    vol[:, tube.ys, tube.xs] += level * lumen * (1.0 - strength * shadow[:, tube.s_idx] * lateral)


def _other_vessels(rng: np.random.Generator, vol: np.ndarray, spec: StackSpec) -> None:
    """Vessels crossing the frame at other depths, flowing, passing in and out of focus."""
    d, (h, w) = spec.depth, spec.frame_hw
    for _ in range(spec.n_other_vessels):
        radius = spec.vessel_radius * (rng.uniform(2.0, 3.5) if rng.random() < 0.2 else rng.uniform(0.7, 1.4))
        ends = [np.array([rng.uniform(0, h), rng.uniform(0, w)]) for _ in range(3)]
        side = rng.integers(2)
        ends[0][side], ends[2][side] = 0.0, float((h, w)[side] - 1)
        pts, arc = _bezier(*ends)
        tube = _tube(pts, arc, radius, spec.frame_hw)
        z_half = d * rng.uniform(0.1, 0.4)
        z_center = rng.uniform(-0.2, 1.2) * d + rng.normal(0, 0.1) * d * (np.arange(tube.length) / tube.length - 0.5)
        lumen = _focus(tube, d, z_center.astype(np.float32), z_half)
        cells = _flow_cells(rng, d, tube.length, max(4.0, 1.6 * radius), spec.coverage)
        _draw_vessel(vol, tube, lumen, cells, spec.lumen_level * rng.uniform(0.6, 1.1), spec.shadow_strength)


def _tissue(rng: np.random.Generator, spec: StackSpec) -> np.ndarray:
    """Dark tissue background: a smooth random texture that drifts slowly with depth."""
    d, (h, w) = spec.depth, spec.frame_hw
    coarse = rng.standard_normal((d // 4 + 2, h // 10 + 2, w // 10 + 2)).astype(np.float32)
    zpos = np.linspace(0, coarse.shape[0] - 1, d)
    z0 = np.minimum(zpos.astype(int), coarse.shape[0] - 2)
    frac = (zpos - z0)[:, None, None].astype(np.float32)
    coarse = coarse[z0] * (1 - frac) + coarse[z0 + 1] * frac
    vol = np.empty((d, h, w), np.float32)
    for i, sl in enumerate(coarse):
        vol[i] = cv2.resize(sl, (w, h), interpolation=cv2.INTER_CUBIC)
    return spec.tissue_level + spec.tissue_texture * vol


def _jitter(rng: np.random.Generator, vol: np.ndarray, amount: float) -> None:
    """Shift each slice by a small random walk, as breathing and heartbeat move the brain."""
    steps = np.clip(np.cumsum(rng.normal(0, amount, (vol.shape[0], 2)), axis=0), -3 * amount, 3 * amount)
    for sl, (dy, dx) in zip(vol, steps):
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        cv2.warpAffine(sl, m, (sl.shape[1], sl.shape[0]), dst=sl, borderMode=cv2.BORDER_REFLECT)


def _blackout(rng: np.random.Generator, frames: np.ndarray) -> None:
    """Black masks the lab drew over a run of slices (a rectangle covering part of the frame)."""
    d, h, w = frames.shape
    run = max(1, int(d * rng.uniform(0.1, 0.4)))
    start = rng.integers(0, d - run + 1)
    y0, x0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
    y1, x1 = y0 + int(h * rng.uniform(0.3, 0.6)), x0 + int(w * rng.uniform(0.3, 0.6))
    frames[start:start + run, y0:y1, x0:x1] = 0


def outline_mask(pts: np.ndarray, frame_hw: tuple[int, int], margin: float, thickness: int) -> np.ndarray:
    """Boolean mask of the outline drawn around a centreline at distance ``margin``."""
    band = np.zeros(frame_hw, np.uint8)
    cv2.polylines(band, [np.rint(pts[:, ::-1]).astype(np.int32)], False, 255, thickness=int(2 * margin) + 1)
    contours, _ = cv2.findContours(band, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    line = np.zeros(frame_hw, np.uint8)
    cv2.drawContours(line, contours, -1, 255, thickness=thickness)
    return line > 0


def render_stack(spec: StackSpec) -> np.ndarray:
    """Draw the stack described by ``spec``.

    Returns
    -------
    numpy.ndarray
        ``uint8`` RGB frames ``(D, H, W, 3)`` with the target segment outlined in orange on every
        frame, ready for :func:`core.mp4.write_mp4`.
    """
    rng = np.random.default_rng(list(spec.render_seed))
    d = spec.depth
    vol = _tissue(rng, spec)
    _other_vessels(rng, vol, spec)
    margin = spec.vessel_radius + 3
    pts, arc, inside = _target_centreline(rng, spec.roi_yxhw, margin)
    segment = (float(arc[inside.start]), float(arc[inside.stop - 1]))
    tube = _tube(pts, arc, spec.vessel_radius, spec.frame_hw)
    z_half = max(2.0, spec.target_visible * d / 2)
    s = np.arange(tube.length) - sum(segment) / 2
    tilt = rng.normal(0, 0.15) * z_half * s / max(segment[1] - segment[0], 1.0)
    z_center = (d * rng.uniform(0.35, 0.65) + tilt).astype(np.float32)
    cells = _target_cells(rng, spec, tube.length, z_center, z_half, segment)
    _draw_vessel(vol, tube, _focus(tube, d, z_center, z_half), cells, spec.lumen_level, spec.shadow_strength)
    if spec.jitter_px > 0:
        _jitter(rng, vol, spec.jitter_px)
    sigma = np.sqrt(spec.noise_sigma**2 + 0.4 * np.maximum(vol, 0.0))
    vol += sigma * rng.standard_normal(vol.shape, dtype=np.float32)
    grey = np.clip(vol, 0, 255).astype(np.uint8)
    if spec.blackout:
        _blackout(rng, grey)
    frames = np.stack([_COOL_RED[grey], grey, _COOL_BLUE[grey]], axis=-1)
    frames[:, outline_mask(pts[inside], spec.frame_hw, margin, spec.outline_thickness)] = OUTLINE_RGB
    return frames
