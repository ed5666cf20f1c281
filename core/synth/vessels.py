"""Vessels and blood cells of a synthetic stack: geometry, lumen in focus, cell shadows.

A vessel is a centreline (a quadratic Bézier curve) rasterised into a :class:`Tube`: its pixels,
their distance to the centreline and their position along it (arc length). Its lumen is bright
where it is in focus (an ellipsoid in depth) and darkened by cell shadows ``(D, length)``. How
the shadows behave along depth is what tells stalled from flowing:

- flowing: fresh, uncorrelated places in every slice (flicker); ``slow`` drifts a little per
  slice, ``sparse`` has so few cells that the segment is empty in most slices;
- stalled: cells stay put and grow and shrink smoothly with depth like 3D objects; ``partial``
  only in part of the segment, ``stall_depth`` only in part of the depth (flow in the rest),
  ``plug`` one long static occlusion in an otherwise empty lumen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

FLOWING_MODES = ("flow", "slow", "sparse")
STALLED_MODES = ("stall", "partial", "stall_depth", "plug")
CELL_MODES = FLOWING_MODES + STALLED_MODES


@dataclass(frozen=True)
class Tube:
    """A vessel's pixels in one frame: where they are and where they sit along the centreline."""

    ys: np.ndarray
    xs: np.ndarray
    dist: np.ndarray
    s_idx: np.ndarray
    length: int
    radius: float


def bezier(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray,
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


def tube(pts: np.ndarray, arc: np.ndarray, radius: float, frame_hw: tuple[int, int]) -> Tube:
    """Rasterise the pixels within ``radius`` of a centreline, with their arc position."""
    h, w = frame_hw
    lo = np.clip(np.floor(pts.min(axis=0) - radius - 1), 0, [h, w]).astype(int)
    hi = np.clip(np.ceil(pts.max(axis=0) + radius + 2), 0, [h, w]).astype(int)
    yy, xx = np.mgrid[lo[0]:hi[0], lo[1]:hi[1]]
    grid = np.stack([yy.ravel(), xx.ravel()], axis=1).astype(np.float32)
    dist, idx = cKDTree(pts).query(grid, distance_upper_bound=radius + 0.5)
    keep = np.isfinite(dist)
    return Tube(ys=yy.ravel()[keep], xs=xx.ravel()[keep], dist=dist[keep].astype(np.float32),
                s_idx=np.rint(arc[idx[keep]]).astype(int), length=int(np.ceil(arc[-1])) + 1,
                radius=radius)


def focus(t: Tube, depth: int, z_center: np.ndarray, z_half: float) -> np.ndarray:
    """Lumen brightness ``(D, n)``: the tube's cross-section in each depth slice (an ellipsoid)."""
    z = np.arange(depth, dtype=np.float32)[:, None]
    inside = 1.0 - (t.dist / t.radius) ** 2 - ((z - z_center[t.s_idx]) / z_half) ** 2
    return np.sqrt(np.clip(inside, 0.0, 1.0))


def draw_vessel(vol: np.ndarray, t: Tube, lumen: np.ndarray, shadow: np.ndarray,
                level: float, strength: float) -> None:
    """Add a vessel's lumen, darkened by its cell shadows, to the volume in place."""
    lateral = 1.0 - 0.3 * (t.dist / t.radius) ** 2
    vol[:, t.ys, t.xs] += level * lumen * (1.0 - strength * shadow[:, t.s_idx] * lateral)


def _bumps(positions: np.ndarray, amplitude: np.ndarray, half_len: np.ndarray, length: int) -> np.ndarray:
    """Sum of Gaussian cells along the segment: ``(D, K)`` positions → ``(D, length)`` shadow."""
    s = np.arange(length, dtype=np.float32)[None, None, :]
    g = amplitude[..., None] * np.exp(-(((s - positions[..., None]) / half_len[..., None]) ** 2))
    return np.clip(np.nansum(g, axis=1), 0.0, 1.0)


def _one_inside(rng: np.random.Generator, pos: np.ndarray, segment: tuple[float, float] | None) -> None:
    """Move the first cell of every row of ``pos`` that has none inside ``segment`` into it, in place.

    Both classes usually have a cell in the outlined segment (in every slice when flowing, once
    when stalled), so that an empty segment says little about the label.
    """
    if segment is None:
        return
    empty = ~np.any((pos >= segment[0]) & (pos <= segment[1]), axis=-1)
    pos[..., 0] = np.where(empty, rng.uniform(*segment, empty.shape), pos[..., 0])


def flow_cells(rng: np.random.Generator, depth: int, length: int, cell_len: float, coverage: float,
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
    return _bumps(pos, np.ones_like(pos), np.full_like(pos, cell_len / 2), length)


def stalled_cells(rng: np.random.Generator, depth: int, length: int, cell_len: float, coverage: float,
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


def _plug(rng: np.random.Generator, depth: int, length: int, cell_len: float, z_center: np.ndarray,
          z_half: float, segment: tuple[float, float]) -> np.ndarray:
    """One long static occlusion (a white cell or a clot) inside the segment, lumen empty elsewhere."""
    plug_len = min(cell_len * rng.uniform(2.0, 4.0), 0.8 * (segment[1] - segment[0]) + 1.0)
    centre = rng.uniform(segment[0] + plug_len / 2, max(segment[1] - plug_len / 2, segment[0] + plug_len / 2))
    s = np.arange(length, dtype=np.float32)
    along = np.clip(1.0 - ((s - centre) / (plug_len / 2)) ** 4, 0.0, 1.0)
    z = np.arange(depth, dtype=np.float32)[:, None]
    zc = z_center[int(np.clip(centre, 0, length - 1))]
    amp = np.sqrt(np.clip(1.0 - ((z - zc) / (1.2 * z_half)) ** 2, 0.0, 1.0))
    sparse = stalled_cells(rng, depth, length, cell_len, 0.08, z_center, z_half, (0, length))
    return np.maximum(0.9 * amp * along[None, :], sparse)


def target_cells(rng: np.random.Generator, mode: str, depth: int, length: int, cell_len: float,
                 coverage: float, z_center: np.ndarray, z_half: float,
                 segment: tuple[float, float]) -> np.ndarray:
    """Cell shadows ``(D, length)`` along the target vessel for one of :data:`CELL_MODES`.

    ``segment`` is the arc range of the outlined part; partial stalls and plugs lie inside it.
    """
    if mode == "flow":
        return flow_cells(rng, depth, length, cell_len, coverage, segment=segment)
    if mode == "slow":
        speed = rng.choice([-1, 1]) * rng.uniform(0.35, 1.2)
        return flow_cells(rng, depth, length, cell_len, coverage, speed)
    if mode == "sparse":
        return flow_cells(rng, depth, length, cell_len, coverage * rng.uniform(0.05, 0.15))
    if mode == "stall":
        return stalled_cells(rng, depth, length, cell_len, coverage, z_center, z_half, (0, length), segment)
    if mode == "partial":
        part = rng.uniform(0.3, 0.6) * (segment[1] - segment[0])
        lo = rng.uniform(segment[0], segment[1] - part)
        static = stalled_cells(rng, depth, length, cell_len, coverage, z_center, z_half, (lo, lo + part))
        moving = flow_cells(rng, depth, length, cell_len, coverage)
        s = np.arange(length)
        moving[:, (s >= lo - cell_len / 2) & (s <= lo + part + cell_len / 2)] = 0.0
        return np.maximum(static, moving)
    if mode == "stall_depth":
        static = stalled_cells(rng, depth, length, cell_len, coverage, z_center, z_half, (0, length), segment)
        moving = flow_cells(rng, depth, length, cell_len, coverage, segment=segment)
        lo_z = float(np.min(z_center)) - z_half
        cut = int(np.clip(lo_z + rng.uniform(0.35, 0.65) * 2 * z_half, 1, depth - 1))
        if rng.random() < 0.5:
            static[:cut], moving[cut:] = 0.0, 0.0  # flow, then the cells stop
        else:
            static[cut:], moving[:cut] = 0.0, 0.0  # stalled, then flow resumes
        return static + moving
    if mode == "plug":
        return _plug(rng, depth, length, cell_len, z_center, z_half, segment)
    raise ValueError(f"unknown cell mode {mode!r}; expected one of {CELL_MODES}")


def penetrating(rng: np.random.Generator, vol: np.ndarray, centre: np.ndarray, radius: float,
                level: float, strength: float) -> None:
    """A vessel seen nearly end-on: a round bright blob that drifts a little with depth, its
    cells passing through the slice plane at random (flowing) so the blob flickers."""
    d, h, w = vol.shape
    drift = rng.normal(0, 0.08, 2)  # px per slice
    z = np.arange(d, dtype=np.float32)
    cy, cx = centre[0] + drift[0] * (z - d / 2), centre[1] + drift[1] * (z - d / 2)
    half = int(np.ceil(radius + 3 + np.abs(drift).max() * d / 2))
    y0, x0 = int(centre[0]) - half, int(centre[1]) - half
    ys, xs = np.mgrid[max(y0, 0):min(y0 + 2 * half + 1, h), max(x0, 0):min(x0 + 2 * half + 1, w)]
    if ys.size == 0:
        return
    r2 = ((ys[None] - cy[:, None, None]) ** 2 + (xs[None] - cx[:, None, None]) ** 2) / radius**2
    lumen = np.sqrt(np.clip(1.0 - r2, 0.0, 1.0))
    k = 3
    cell_y = cy[:, None] + rng.uniform(-0.7, 0.7, (d, k)) * radius
    cell_x = cx[:, None] + rng.uniform(-0.7, 0.7, (d, k)) * radius
    present = rng.random((d, k)) < 0.5
    shadow = np.zeros_like(lumen)
    for j in range(k):
        g = np.exp(-((ys[None] - cell_y[:, j, None, None]) ** 2 + (xs[None] - cell_x[:, j, None, None]) ** 2)
                   / (0.4 * radius) ** 2)
        shadow += present[:, j, None, None] * g
    vol[:, ys, xs] += level * lumen * (1.0 - strength * np.clip(shadow, 0.0, 1.0))
