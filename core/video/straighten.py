"""The outlined vessel, straightened: every slice resampled along the vessel's centreline.

Physiologists read red-cell flow from a kymograph: grey level along the vessel against time. Our
slices are taken one after another, so the same picture tells the classes apart: in a stalled
segment a shadow stays at one place along the vessel (a vertical streak), in slow flow it drifts
(a slanted streak), in normal flow it is somewhere new in every slice. In the ROI the vessel may
curve, run diagonally, be a few pixels wide and share the box with other vessels; resampled along
its centreline it becomes a straight band of fixed orientation, at the ROI's own resolution, with
the neighbours left out.

The centreline is the longest path through the skeleton of the filled outline mask, smoothed and
extended at both ends to the mask's edge; the band's half-width is the outline's typical
half-width. A mask too small or too round for a path (a vessel seen end-on) gets a straight line
through its centre along its longest axis instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import distance_transform_edt, uniform_filter1d
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from skimage.morphology import skeletonize

MIN_HALF_WIDTH = 3.0  # a filled outline reaches this far inside; a bare outline line (1-4 px) does not
_NEIGHBOURS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


@dataclass(frozen=True)
class Band:
    """Where each pixel of the straightened band is taken from in the ROI: ``float32 (length, width)``
    row (``y``) and column (``x``) coordinates; along the vessel by rows, across it by columns."""

    y: np.ndarray
    x: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.y.shape

    def sample(self, image: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """``image`` ``(H, W)`` (or ``(D, H, W)``: every slice) resampled onto the band."""
        if image.ndim == 3:
            return np.stack([self.sample(s, interpolation) for s in image])
        return cv2.remap(image, self.x, self.y, interpolation, borderMode=cv2.BORDER_REPLICATE)

    def paint(self, values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """Values on the band ``(length, width)`` put back where they were sampled in an ``(H, W)``
        ROI (``float32``; 0 off the band): the inverse of :meth:`sample`, for maps such as Grad-CAM."""
        total = np.zeros(shape, np.float32)
        count = np.zeros(shape, np.float32)
        y = np.clip(np.rint(self.y).astype(int), 0, shape[0] - 1)
        x = np.clip(np.rint(self.x).astype(int), 0, shape[1] - 1)
        np.add.at(total, (y, x), values.astype(np.float32))
        np.add.at(count, (y, x), 1.0)
        # fill the pixels rounding skipped from their neighbours (normalised convolution)
        total, count = cv2.blur(total, (3, 3)), cv2.blur(count, (3, 3))
        return np.where(count > 0, total / np.maximum(count, 1e-9), 0.0).astype(np.float32)


def _longest_path(skeleton: np.ndarray) -> np.ndarray:
    """Pixel coordinates ``(n, 2)`` of the longest shortest path through an 8-connected skeleton."""
    pts = np.argwhere(skeleton)
    index = -np.ones(skeleton.shape, np.int64)
    index[tuple(pts.T)] = np.arange(len(pts))
    rows, cols, weights = [], [], []
    h, w = skeleton.shape
    for dy, dx in _NEIGHBOURS:
        y, x = pts[:, 0] + dy, pts[:, 1] + dx
        ok = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        other = np.full(len(pts), -1)
        other[ok] = index[y[ok], x[ok]]
        hit = other >= 0
        rows.append(np.flatnonzero(hit))
        cols.append(other[hit])
        weights.append(np.full(int(hit.sum()), np.hypot(dy, dx)))
    graph = coo_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
                       shape=(len(pts), len(pts))).tocsr()
    far = dijkstra(graph, indices=0)
    start = int(np.argmax(np.where(np.isfinite(far), far, -1)))
    dist, pred = dijkstra(graph, indices=start, return_predecessors=True)
    node = int(np.argmax(np.where(np.isfinite(dist), dist, -1)))
    path = [node]
    while pred[node] >= 0:
        node = int(pred[node])
        path.append(node)
    return pts[path].astype(np.float64)


def _resample(path: np.ndarray, step: float = 1.0) -> np.ndarray:
    """Points every ``step`` pixels of arc length along a polyline ``(n, 2)``."""
    seg = np.hypot(*np.diff(path, axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    at = np.arange(0.0, arc[-1] + 1e-9, step)
    return np.stack([np.interp(at, arc, path[:, 0]), np.interp(at, arc, path[:, 1])], axis=1)


def _axis_line(region: np.ndarray) -> np.ndarray:
    """Two points: the region's longest axis through its centre, end to end."""
    pts = np.argwhere(region).astype(np.float64)
    centre = pts.mean(axis=0)
    _, _, vt = np.linalg.svd(pts - centre, full_matrices=False)
    proj = (pts - centre) @ vt[0]
    return np.stack([centre + proj.min() * vt[0], centre + proj.max() * vt[0]])


def vessel_band(mask: np.ndarray) -> Band | None:
    """The straightened band of the vessel a filled outline ``mask`` ``(H, W)`` encloses, or ``None``
    when the mask encloses nothing: empty, the whole ROI (no outline to go by), or only the outline's
    line itself, no pixel ``MIN_HALF_WIDTH`` or more from its edge (an outline that could not be
    closed and filled). Such stacks keep the ROI view."""
    region = mask.astype(bool)
    if not region.any() or region.all():
        return None
    depth_in = distance_transform_edt(region)
    if depth_in.max() < MIN_HALF_WIDTH:
        return None
    skeleton = skeletonize(region)  # never empty: some pixel lies MIN_HALF_WIDTH inside
    half = float(np.median(depth_in[skeleton]))
    path = _longest_path(skeleton)
    if len(path) < 2 or np.hypot(*(path[-1] - path[0])) < half:
        path = _axis_line(region)
    else:
        path = _resample(path)
        path = np.stack([uniform_filter1d(path[:, i], size=min(len(path), 9), mode="nearest") for i in (0, 1)], 1)
        # the skeleton stops about a half-width short of the outline's ends: reach them
        head, tail = path[0] - path[min(3, len(path) - 1)], path[-1] - path[max(0, len(path) - 4)]
        head /= max(np.hypot(*head), 1e-9)
        tail /= max(np.hypot(*tail), 1e-9)
        path = np.concatenate([[path[0] + half * head], path, [path[-1] + half * tail]])
    centre = _resample(path)  # several points: a region MIN_HALF_WIDTH thick spans several pixels
    tangent = np.gradient(centre, axis=0)
    tangent /= np.maximum(np.hypot(*tangent.T), 1e-9)[:, None]
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    across = np.arange(-np.ceil(half), np.ceil(half) + 1)
    coords = centre[:, None, :] + across[None, :, None] * normal[:, None, :]
    return Band(coords[..., 0].astype(np.float32), coords[..., 1].astype(np.float32))
