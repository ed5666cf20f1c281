"""Draw one synthetic two-photon stack: depth slices of tissue, vessels, blood cells and an outline.

Frames are depth slices (z), not time. The vessel lumen (dye-filled plasma) is bright, red blood
cells are dark shadows inside it. What tells a stall from flow is only how the shadows in the
outlined target segment behave along z (see :mod:`core.synth.vessels` for the cell modes).

Everything else is drawn the same way for both classes, so only the temporal cue carries the
label: tissue texture, other vessels crossing the frame in and out of focus, large vessels,
vessels crossing or running beside the target inside the outline's box (flowing, or now and then
stalled), penetrating vessels seen end-on (round flickering blobs that drift with depth),
brightness, noise, uneven illumination, jitter, black masks and black slices, the orange outline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.synth.nuisance import black_slices, blackout, illumination, jitter, outline_mask, tissue
from core.synth.vessels import (CELL_MODES, bezier, draw_vessel, flow_cells, focus, penetrating, stalled_cells,
                                target_cells, tube)

#: Outline colour in RGB. After H.264 (yuv420p) it stays inside the competition's BGR
#: ``cv2.inRange`` range (9, 13, 104)–(98, 143, 255) even where chroma is averaged with grey.
OUTLINE_RGB = (220, 75, 25)

# A faint cool tint: blue a few levels above red, the same offset at every brightness so the chroma
# planes stay flat and H.264 adds no chroma ringing; the outline is then the only thing that
# ``cv2.inRange`` finds.
_GREY = np.arange(256)
_COOL_RED = np.clip(_GREY - 6, 0, 255).astype(np.uint8)
_COOL_BLUE = np.clip(_GREY + 6, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class StackSpec:
    """Everything needed to draw one stack; drawing it is deterministic given ``render_seed``.

    Sizes are in pixels and slices; intensities in 8-bit grey levels before noise. ``cell_mode``
    is one of :data:`core.synth.vessels.CELL_MODES`; ``target_visible`` is the fraction of the
    depth in which the target is in focus; ``outline_margin`` is the outline's distance from the
    target's wall. The nuisances default to off.
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
    outline_margin: float = 3.0
    n_neighbours: int = 0
    static_neighbour: bool = False
    n_penetrating: int = 0
    penetrating_in_roi: bool = False
    large_vessel: bool = False
    jitter_px: float = 0.0
    blackout: bool = False
    black_slices: int = 0
    blank_ends: float = 0.0
    vignette: float = 0.0
    gradient: float = 0.0
    attenuation: float = 0.0


def _cell_len(rng: np.random.Generator, radius: float) -> float:
    return max(4.0, 1.6 * radius) * rng.uniform(0.85, 1.2)


def _other_vessels(rng: np.random.Generator, vol: np.ndarray, spec: StackSpec) -> None:
    """Vessels crossing the frame at other depths, flowing, passing in and out of focus."""
    d, (h, w) = spec.depth, spec.frame_hw
    for i in range(spec.n_other_vessels + int(spec.large_vessel)):
        large = i == spec.n_other_vessels or rng.random() < 0.1
        radius = spec.vessel_radius * (rng.uniform(2.5, 4.0) if large else rng.uniform(0.7, 1.4))
        ends = [np.array([rng.uniform(0, h), rng.uniform(0, w)]) for _ in range(3)]
        side = rng.integers(2)
        ends[0][side], ends[2][side] = 0.0, float((h, w)[side] - 1)
        pts, arc = bezier(*ends)
        t = tube(pts, arc, radius, spec.frame_hw)
        z_half = d * rng.uniform(0.1, 0.4) * (2.0 if large else 1.0)
        tilt = rng.normal(0, 0.1) * d * (np.arange(t.length) / t.length - 0.5)
        z_center = (rng.uniform(-0.2, 1.2) * d + tilt).astype(np.float32)
        cells = flow_cells(rng, d, t.length, _cell_len(rng, radius), spec.coverage)
        draw_vessel(vol, t, focus(t, d, z_center, z_half), cells, spec.lumen_level * rng.uniform(0.6, 1.1),
                    spec.shadow_strength)


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
    span_y, span_x = max(h - 2 * inset, 1.0), max(w - 2 * inset, 1.0)
    if rng.random() < 0.5:
        p0 = np.array([y0 + inset + a * span_y, x0 + inset])
        p2 = np.array([y0 + inset + b * span_y, x0 + w - inset])
    else:
        p0 = np.array([y0 + inset, x0 + inset + a * span_x])
        p2 = np.array([y0 + h - inset, x0 + inset + b * span_x])
    lo, hi = np.array([y0 + inset, x0 + inset]), np.array([y0 + h - inset, x0 + w - inset])
    p1 = np.clip((p0 + p2) / 2 + rng.normal(0, 0.2, 2) * [span_y, span_x], lo, hi)
    pts, arc = bezier(p0, p1, p2, extend=rng.uniform(0.2, 0.6, 2))
    t_inside = np.flatnonzero(np.all((pts >= lo - 0.5) & (pts <= hi + 0.5), axis=1))
    return pts, arc, slice(int(t_inside[0]), int(t_inside[-1]) + 1)


def _neighbours(rng: np.random.Generator, vol: np.ndarray, spec: StackSpec, pts: np.ndarray,
                inside: slice, z_mid: float, z_half: float) -> None:
    """Vessels inside the outline's box, in focus with the target: one crossing it, or running
    beside it; flowing, except a stalled one when ``spec.static_neighbour``."""
    d = spec.depth
    seg = pts[inside]
    for i in range(spec.n_neighbours + int(spec.static_neighbour)):
        radius = spec.vessel_radius * rng.uniform(0.7, 1.3)
        if rng.random() < 0.5:  # beside: the target's centreline shifted sideways
            tangent = seg[-1] - seg[0]
            normal = np.array([-tangent[1], tangent[0]]) / max(np.linalg.norm(tangent), 1e-6)
            offset = rng.choice([-1, 1]) * (spec.vessel_radius + radius + spec.outline_margin + rng.uniform(1, 6))
            shifted = seg[::max(len(seg) // 3, 1)] + offset * normal
            ends = [shifted[0], shifted[len(shifted) // 2], shifted[-1]]
        else:  # crossing: through a point of the segment at a random angle
            centre = seg[int(rng.integers(len(seg)))]
            angle = rng.uniform(0, np.pi)
            reach = rng.uniform(0.4, 0.8) * max(spec.roi_yxhw[2:])
            direction = np.array([np.sin(angle), np.cos(angle)]) * reach
            ends = [centre - direction, centre + rng.normal(0, 0.1, 2) * reach, centre + direction]
        pts_n, arc_n = bezier(*ends)
        t = tube(pts_n, arc_n, radius, spec.frame_hw)
        z_center = np.full(t.length, z_mid + rng.normal(0, 0.5) * z_half, np.float32)
        zh = z_half * rng.uniform(0.7, 1.5)
        cell_len = _cell_len(rng, radius)
        if i == spec.n_neighbours:
            cells = stalled_cells(rng, d, t.length, cell_len, spec.coverage, z_center, zh, (0, t.length))
        else:
            cells = flow_cells(rng, d, t.length, cell_len, spec.coverage)
        draw_vessel(vol, t, focus(t, d, z_center, zh), cells, spec.lumen_level * rng.uniform(0.6, 1.1),
                    spec.shadow_strength)


def _penetrating_vessels(rng: np.random.Generator, vol: np.ndarray, spec: StackSpec) -> None:
    """Penetrating vessels seen end-on, anywhere in the frame, one inside the ROI box if asked."""
    (h, w), (y0, x0, rh, rw) = spec.frame_hw, spec.roi_yxhw
    for i in range(spec.n_penetrating):
        if i == 0 and spec.penetrating_in_roi:
            centre = np.array([y0 + rng.uniform(0.15, 0.85) * rh, x0 + rng.uniform(0.15, 0.85) * rw])
        else:
            centre = np.array([rng.uniform(0, h), rng.uniform(0, w)])
        radius = spec.vessel_radius * rng.uniform(1.0, 2.5)
        penetrating(rng, vol, centre, radius, spec.lumen_level * rng.uniform(0.7, 1.1), spec.shadow_strength)


def render_stack(spec: StackSpec) -> np.ndarray:
    """Draw the stack described by ``spec``.

    Returns
    -------
    numpy.ndarray
        ``uint8`` RGB frames ``(D, H, W, 3)`` with the target segment outlined in orange on every
        frame, ready for :func:`core.video.mp4.write_mp4`.
    """
    if spec.cell_mode not in CELL_MODES:
        raise ValueError(f"unknown cell mode {spec.cell_mode!r}; expected one of {CELL_MODES}")
    rng = np.random.default_rng(list(spec.render_seed))
    d = spec.depth
    vol = tissue(rng, (d, *spec.frame_hw), spec.tissue_level, spec.tissue_texture)
    _other_vessels(rng, vol, spec)
    margin = spec.vessel_radius + spec.outline_margin
    pts, arc, inside = _target_centreline(rng, spec.roi_yxhw, margin)
    segment = (float(arc[inside.start]), float(arc[inside.stop - 1]))
    target = tube(pts, arc, spec.vessel_radius, spec.frame_hw)
    z_half = max(2.0, spec.target_visible * d / 2)
    s = np.arange(target.length) - sum(segment) / 2
    tilt = rng.normal(0, 0.15) * z_half * s / max(segment[1] - segment[0], 1.0)
    z_mid = d * rng.uniform(0.35, 0.65)
    z_center = (z_mid + tilt).astype(np.float32)
    _neighbours(rng, vol, spec, pts, inside, z_mid, z_half)
    _penetrating_vessels(rng, vol, spec)
    cells = target_cells(rng, spec.cell_mode, d, target.length, _cell_len(rng, spec.vessel_radius),
                         spec.coverage, z_center, z_half, segment)
    draw_vessel(vol, target, focus(target, d, z_center, z_half), cells, spec.lumen_level, spec.shadow_strength)
    illumination(rng, vol, spec.vignette, spec.gradient, spec.attenuation, spec.blank_ends)
    if spec.jitter_px > 0:
        jitter(rng, vol, spec.jitter_px)
    sigma = np.sqrt(spec.noise_sigma**2 + 0.4 * np.maximum(vol, 0.0))
    vol += sigma * rng.standard_normal(vol.shape, dtype=np.float32)
    grey = np.clip(vol, 0, 255).astype(np.uint8)
    if spec.blackout:
        blackout(rng, grey)
    black_slices(rng, grey, spec.black_slices)
    frames = np.stack([_COOL_RED[grey], grey, _COOL_BLUE[grey]], axis=-1)
    frames[:, outline_mask(pts[inside], spec.frame_hw, margin, spec.outline_thickness)] = OUTLINE_RGB
    return frames
